"""One model under one grouping, parameter by parameter, against the lab's decay rule: what the panel shows."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from torch import nn

from xtlab._checks import check_choice
from xtlab.diagnostics.optimizer_groups import DECAY, NO_DECAY, param_groups
from xtlab.labs.optimizer_groups.models import MODELS, build_model
from xtlab.labs.optimizer_groups.recipe import recipe_decisions, reference_rows
from xtlab.labs.optimizer_groups.rule import rule_rows

GROUPINGS = ("article recipe", "by ndim", "lab rule")


@dataclass(frozen=True)
class ViewRow:
    """One parameter: where the grouping put it (``placed``: one label per listing) and where it belongs."""

    name: str
    shape: tuple[int, ...]
    numel: int
    category: str
    placed: tuple[str, ...]
    expected: str

    @property
    def right(self) -> bool:
        return self.placed == (self.expected,)


@dataclass(frozen=True)
class GroupingView:
    """Every trainable parameter of one model under one grouping."""

    model_name: str
    grouping: str
    rows: list[ViewRow]

    @property
    def wrong(self) -> list[ViewRow]:
        return [row for row in self.rows if not row.right]


@lru_cache(maxsize=len(MODELS))
def _model(name: str) -> nn.Module:
    return build_model(name)


def _grouping_lists(model: nn.Module, grouping: str) -> list[tuple[str, list]]:
    if grouping == "article recipe":
        decisions = recipe_decisions(model)
        return [(label, [d.parameter for d in decisions if d.group == label]) for label in (DECAY, NO_DECAY)]
    if grouping == "by ndim":
        return [(group["group_name"], group["params"]) for group in param_groups(model, 0.1, "by_ndim")]
    parameters = dict(model.named_parameters())
    rows = rule_rows(model)
    return [(label, [parameters[row.name] for row in rows if row.group == label]) for label in (DECAY, NO_DECAY)]


def grouping_view(model_name: str = "xtlab decoder", grouping: str = "article recipe") -> GroupingView:
    """Where ``grouping`` puts each parameter of the lab model ``model_name``, against the reference.

    Raises:
        ValueError: an unknown model name or grouping.
    """
    check_choice("model_name", model_name, list(MODELS))
    check_choice("grouping", grouping, GROUPINGS)
    model = _model(model_name)
    placed: dict[int, list[str]] = {}
    for label, params in _grouping_lists(model, grouping):
        for parameter in params:
            placed.setdefault(id(parameter), []).append(label)
    parameters = dict(model.named_parameters())
    rows = [ViewRow(row.name, row.shape, parameters[row.name].numel(), row.category,
                    tuple(sorted(placed.get(id(parameters[row.name]), []))), row.group)
            for row in reference_rows(model)]
    return GroupingView(model_name, grouping, rows)
