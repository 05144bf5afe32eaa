"""The model map: the modules (and special parameters) of a real model, and where each lab works in it.

The rows come from ``named_modules()`` and ``named_parameters()`` of the model you pass, never from a typed list;
``LAB_AREAS`` says, by module type and parameter name, which parts each lab takes apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from torch import nn

from xtlab._checks import check_module
from xtlab.model import Block, Decoder, LayerNorm, RMSNorm, ScaleNorm, SelfAttention, TiedLinear, TransformerWrapper
from xtlab.model.rotary import RotaryEmbedding
from xtlab.seeding import seed_everything
from xtlab.widgets.figures import new_figure

SPECIAL_PARAMETERS = ("memory_tokens", "mem_k", "mem_v")  # parameters a lab is about, shown as rows of their own
SKIPPED_TYPES = (nn.Dropout, nn.GELU, nn.ModuleList, nn.Sequential)  # plumbing no lab is about

Rule = Callable[[str, str, object], bool]  # (name, kind, module or parameter) -> whether the lab works there


def _is_output_head(name: str, kind: str, obj: object) -> bool:
    return name.rsplit(".", 1)[-1] == "to_logits"


def _is_embedding(name: str, kind: str, obj: object) -> bool:
    return isinstance(obj, nn.Embedding)


def _is_norm(name: str, kind: str, obj: object) -> bool:
    return isinstance(obj, (LayerNorm, RMSNorm, ScaleNorm, nn.LayerNorm))


# lab number -> (where it works, in words; rule)
LAB_AREAS: dict[int, tuple[str, Rule]] = {
    1: ("blocks that layer dropout skips", lambda name, kind, obj: isinstance(obj, Block)),
    2: ("the embedding and the output head it is tied to",
        lambda name, kind, obj: _is_embedding(name, kind, obj) or _is_output_head(name, kind, obj)),
    3: ("attention over XL memories, rotary positions",
        lambda name, kind, obj: isinstance(obj, (SelfAttention, RotaryEmbedding)) or name.endswith("attn_layers")),
    4: ("parameters that must not get weight decay",
        lambda name, kind, obj: _is_norm(name, kind, obj) or _is_embedding(name, kind, obj)
        or name.rsplit(".", 1)[-1] in SPECIAL_PARAMETERS),
    5: ("an output head that forward must use (unused under DDP)", _is_output_head),
}


@dataclass(frozen=True)
class MapRow:
    """One row of the map: a module or a special parameter.

    Attributes:
        name: its name in the model (``""`` for the model itself).
        kind: the module's class name, or ``"parameter (shape)"``.
        depth: how many rows of the map it sits under (0 for the model itself).
        numel: parameters it holds directly (not counting submodules).
        labs: the labs that work on it.
    """

    name: str
    kind: str
    depth: int
    numel: int
    labs: tuple[int, ...]


def course_model(seed: int = 0) -> TransformerWrapper:
    """The small decoder the map is drawn from: rotary, memory key/values, memory tokens, XL memories, a tie."""
    seed_everything(seed)
    layers = Decoder(dim=32, depth=2, heads=2, rotary_pos_emb=True, attn_num_mem_kv=2)
    return TransformerWrapper(num_tokens=32, max_seq_len=16, attn_layers=layers, num_memory_tokens=2,
                              tie_embedding=True, max_mem_len=8)


def model_map(model: nn.Module) -> list[MapRow]:
    """Every module of ``model`` (plumbing such as dropout and containers left out) and its special parameters,
    in ``named_modules()`` order, each with the labs that work on it."""
    check_module("model", model)
    rows = []
    for name, module in model.named_modules():
        if isinstance(module, SKIPPED_TYPES):
            continue
        kind = type(module).__name__
        own = sum(p.numel() for _, p in module.named_parameters(recurse=False))
        if isinstance(module, TiedLinear):
            kind = "TiedLinear (reads token_emb.weight)"
        rows.append(MapRow(name, kind, 0, own, _labs(name, kind, module)))
        for leaf, parameter in module.named_parameters(recurse=False):
            if leaf in SPECIAL_PARAMETERS:
                full = f"{name}.{leaf}" if name else leaf
                kind = f"parameter {tuple(parameter.shape)}"
                rows.append(MapRow(full, kind, 0, parameter.numel(), _labs(full, kind, parameter)))
    names = [row.name for row in rows]
    return [MapRow(row.name, row.kind, _depth(row.name, names), row.numel, row.labs) for row in rows]


def _depth(name: str, names: list[str]) -> int:
    """How many of the map's rows are ancestors of ``name`` (the model itself, named ``""``, is everyone's)."""
    return sum(1 for other in names if other != name and (other == "" or name.startswith(other + ".")))


def _labs(name: str, kind: str, obj: object) -> tuple[int, ...]:
    return tuple(number for number, (_, rule) in LAB_AREAS.items() if rule(name, kind, obj))


def plot_model_map(rows: list[MapRow]) -> Figure:
    """The module tree on the left, one column per lab on the right; a dot where the lab works."""
    if not rows:
        raise ValueError("rows must hold at least one MapRow, but got none")
    labs = sorted(LAB_AREAS)
    fig = new_figure(9, 0.24 * len(rows) + 1.2)
    tree, dots = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    for y, row in enumerate(rows):
        label = f"{row.name.rsplit('.', 1)[-1] or 'model'}  [{row.kind}]"
        tree.text(0.03 * row.depth, y, label, va="center", fontsize=8, family="monospace")
    tree.set_axis_off()
    grid = np.array([[number in row.labs for number in labs] for row in rows])
    ys, xs = np.nonzero(grid)
    dots.scatter(xs, ys, s=60, color="#0072B2")  # Okabe-Ito blue: colour-blind safe
    dots.set_xticks(range(len(labs)), [f"lab {number:02d}" for number in labs])
    dots.xaxis.tick_top()
    dots.tick_params(axis="y", left=False, labelleft=False)
    dots.set_ylim(len(rows) - 0.5, -0.5)
    dots.set_xlim(-0.5, len(labs) - 0.5)
    dots.grid(True, axis="x", color="#dddddd")
    fig.suptitle("Where each lab works in the model (a dot: the lab takes this part apart)", fontsize=10)
    return fig


def lab_area_lines() -> list[str]:
    """``"lab 01: blocks that layer dropout skips"``, one line per lab of the map."""
    return [f"lab {number:02d}: {words}" for number, (words, _) in LAB_AREAS.items()]
