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
    Lab(1, "layer_dropout", "Layer dropout",
        "write the layer-dropout stack, a gradient-arrival recorder and a skip plan every DDP rank agrees on, "
        "prove the missing gradients are exactly the skipped blocks, and audit article 001", 70),
    Lab(2, "weight_tying", "Weight tying",
        "keep a tie through save, load, init and FSDP: write TiedLinear, a checkpoint loader that refuses a "
        "broken tie and an FSDP grouping that keeps the tie on two real ranks", 80),
    Lab(3, "xl_rotary", "XL memories and rotary",
        "prove XL memories exactly: positions, recording stage, masks per stream; write the segmented pass and "
        "the memory routing under layer dropout", 55),
    Lab(4, "optimizer_groups", "Optimizer groups",
        "build AdamW's parameter groups by one decay rule, write its step, choose its implementation as torch "
        "allows, and audit the recipe", 70),
    Lab(5, "encoder_decoder_ddp", "Encoder-decoder and DDP",
        "find unused parameters, write DDP's gradient reducer on two real ranks, fix the model and load its old "
        "checkpoints, tell when DDP errors, hangs or trains, and run it all under torchrun", 70),
    Lab(6, "audit", "Capstone: audit a model",
        "audit models you did not write, one you have never seen included: every row holds, fails or could not "
        "run, the model left as found, from a notebook or the shell", 55),
)


def lab_table() -> str:
    """The labs as an aligned plain-text table."""
    rows = [f"{lab.number:>2}  {lab.title:<24} {lab.notebook:<30} {lab.minutes:>3} min  {lab.objective}"
            for lab in LABS]
    return "\n".join(rows)
