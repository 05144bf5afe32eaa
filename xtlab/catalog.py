"""The map of the labs: one entry per notebook, used by the tour notebook and the tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lab:
    number: int
    notebook: str
    title: str
    shows: str


LABS: tuple[Lab, ...] = (
    Lab(0, "00_start_here.ipynb", "Start here", "device, versions, the map of the labs, how widgets work"),
    Lab(1, "01_layer_dropout.ipynb", "Layer dropout", "skipped blocks get no gradient, step by step"),
    Lab(2, "02_weight_tying.ipynb", "Weight tying", "where naive tying silently unties through save/load"),
    Lab(3, "03_xl_rotary.ipynb", "XL memories and rotary", "positions arange(-M, T), memory masks, exact equality"),
    Lab(4, "04_optimizer_groups.ipynb", "Optimizer groups", "which parameters get weight decay, and why"),
    Lab(5, "05_encoder_decoder_ddp.ipynb", "Encoder-decoder and DDP", "an unused to_logits breaks real DDP"),
)


def lab_table() -> str:
    """The labs as an aligned plain-text table."""
    rows = [f"{lab.number:>2}  {lab.title:<24} {lab.notebook:<30} {lab.shows}" for lab in LABS]
    return "\n".join(rows)
