"""The one list of labs: number, package, notebook, title, objective, time. The tour, the README and the tests
read it from here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lab:
    """One lab of the course.

    Attributes:
        number: its place in the order to take the labs.
        package: its package under ``xtlab.labs``.
        title: a few words.
        objective: what a learner can do after it, in one line.
        minutes: an estimate of the time it takes.
    """

    number: int
    package: str
    title: str
    objective: str
    minutes: int

    @property
    def stem(self) -> str:
        """The notebook's name without extension, e.g. ``01_layer_dropout``."""
        return f"{self.number:02d}_{'start_here' if self.package == 'tour' else self.package}"

    @property
    def notebook(self) -> str:
        return f"{self.stem}.ipynb"


LABS: tuple[Lab, ...] = (
    Lab(0, "tour", "Start here", "find your way: device, versions, the labs, panels, predictions, exercises", 10),
    Lab(1, "layer_dropout", "Layer dropout", "write the skip, prove where the gradients go, measure whether it helps",
        45),
    Lab(2, "weight_tying", "Weight tying", "keep a tie through save, load, init and FSDP, and prove it", 50),
    Lab(3, "xl_rotary", "XL memories and rotary", "record, position and mask XL memories, and prove it exactly",
        40),
    Lab(4, "optimizer_groups", "Optimizer groups", "decide which parameters get weight decay, and check the groups",
        35),
    Lab(5, "encoder_decoder_ddp", "Encoder-decoder and DDP", "find the unused parameters that break real DDP", 40),
    Lab(6, "audit", "Capstone: audit a model", "run every instrument of the course on models you did not write",
        45),
)


def lab_table() -> str:
    """The labs as an aligned plain-text table."""
    rows = [f"{lab.number:>2}  {lab.title:<24} {lab.notebook:<30} {lab.minutes:>3} min  {lab.objective}"
            for lab in LABS]
    return "\n".join(rows)
