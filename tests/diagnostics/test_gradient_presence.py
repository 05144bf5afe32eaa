import math

import pytest
import torch
import torch.nn as nn

from tests.diagnostics.models import WithUnusedHead, language_model_loss, tokens, x_decoder, xtlab_decoder
from xtlab.diagnostics.gradient_presence import (
    GradientPresenceRecorder,
    GradientState,
    record_gradient_presence,
)


class ZeroThenUnused(nn.Module):
    """``zeroed`` always gets an exactly-zero gradient (multiplied by 0); ``unused`` gets none."""

    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(3, 1)
        self.zeroed = nn.Parameter(torch.ones(2))
        self.unused = nn.Parameter(torch.ones(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x).sum() + 0.0 * self.zeroed.sum()


def test_no_gradient_is_told_apart_from_zero_gradient():
    model = ZeroThenUnused()
    presence = record_gradient_presence(model, lambda step: model(torch.ones(2, 3)).backward(), steps=2)
    by_label = dict(zip(presence.labels, presence.states[0], strict=True))
    assert by_label["used.weight"] == GradientState.NONZERO_GRADIENT
    assert by_label["zeroed"] == GradientState.ZERO_GRADIENT
    assert by_label["unused"] == GradientState.NO_GRADIENT
    assert math.isnan(presence.norms[0][presence.labels.index("unused")])
    assert presence.norms[0][presence.labels.index("zeroed")] == 0.0
    assert presence.without_gradient(1) == ["unused"]
    assert presence.fraction_without_gradient() == pytest.approx(1 / 4)


def test_stale_gradients_are_cleared_between_steps():
    model = nn.Linear(2, 2)

    def step(index: int) -> torch.Tensor:
        # the bias takes part only on even steps: odd steps must show it without a gradient
        loss = model.weight.sum() + (model.bias.sum() if index % 2 == 0 else 0.0)
        loss.backward()
        return loss

    presence = record_gradient_presence(model, step, steps=4)
    bias_column = [row[presence.labels.index("bias")] for row in presence.states]
    assert bias_column == [GradientState.NONZERO_GRADIENT, GradientState.NO_GRADIENT] * 2
    assert all(not math.isnan(loss) for loss in presence.losses)


def test_matrix_shape_is_steps_by_rows():
    model = WithUnusedHead()
    presence = record_gradient_presence(model, lambda step: model(torch.ones(1, 4)).sum().backward(), steps=3)
    matrix = presence.state_matrix()
    assert len(matrix) == 3 and all(len(row) == len(presence.labels) == 4 for row in matrix)
    assert presence.steps == (0, 1, 2)


def test_grouping_merges_rows_and_norms():
    model = WithUnusedHead()
    presence = record_gradient_presence(
        model, lambda step: model(torch.ones(1, 4)).sum().backward(), steps=2, depth=1
    )
    assert presence.labels == ("used", "unused_head")
    assert presence.members[1] == ("unused_head.weight", "unused_head.bias")
    assert presence.states[0] == (GradientState.NONZERO_GRADIENT, GradientState.NO_GRADIENT)
    expected = math.sqrt(model.used.weight.grad.norm() ** 2 + model.used.bias.grad.norm() ** 2)
    assert presence.norms[-1][0] == pytest.approx(expected)


def test_x_transformers_blocks_all_get_gradients():
    model = x_decoder(depth=2)
    presence = record_gradient_presence(model, lambda step: language_model_loss(model, tokens()).backward(), 2, depth=3)
    assert "attn_layers.layers.0" in presence.labels and "memory_tokens" in presence.labels
    assert presence.fraction_without_gradient() == 0.0


def test_xtlab_layer_dropout_skips_whole_blocks_exactly():
    torch.manual_seed(0)
    model = xtlab_decoder(layer_dropout=0.5, depth=3)
    model.train()
    skipped_per_step = []

    def step(index: int) -> torch.Tensor:
        loss = language_model_loss(model, tokens())
        loss.backward()
        skipped_per_step.append(set(model.skipped_blocks))
        return loss

    presence = record_gradient_presence(model, step, steps=6, depth=3)
    for position, skipped in enumerate(skipped_per_step):
        assert set(presence.without_gradient(position)) == skipped


def test_recorder_used_by_hand_numbers_steps():
    model = nn.Linear(2, 1)
    recorder = GradientPresenceRecorder(model)
    recorder.record()
    model(torch.ones(2)).sum().backward()
    recorder.record(loss=torch.tensor(1.5))
    result = recorder.result()
    assert result.steps == (0, 1)
    assert result.states[0] == (GradientState.NO_GRADIENT,) * 2
    assert math.isnan(result.losses[0]) and result.losses[1] == 1.5


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"model": "not a model"}, TypeError, "not a model"),
        ({"train_step": 3}, TypeError, "train_step"),
        ({"steps": 0}, ValueError, "steps must be >= 1, but got 0"),
        ({"steps": 2.5}, TypeError, "2.5"),
        ({"depth": 0}, ValueError, "depth must be >= 1, but got 0"),
    ],
)
def test_bad_input_is_named(kwargs, error, named):
    arguments = {"model": nn.Linear(1, 1), "train_step": lambda step: None, "steps": 1} | kwargs
    with pytest.raises(error, match=named):
        record_gradient_presence(**arguments)


def test_bad_step_position_is_named():
    presence = record_gradient_presence(nn.Linear(1, 1), lambda step: None, 2)
    with pytest.raises(ValueError, match="step_position 5"):
        presence.without_gradient(5)


def test_batched_norms_equal_one_by_one_norms_exactly():
    from xtlab.diagnostics.gradient_presence import _gradient_norms

    torch.manual_seed(0)
    grads = [torch.randn(()), torch.randn(0), torch.randn(7), torch.randn(96, 32),
             torch.randn(5, 3, dtype=torch.float64), torch.randn(4, 4).to_sparse()]
    expected = [float(grad.float().norm()) for grad in grads]
    assert _gradient_norms(grads) == expected  # sparse among them: one by one
    assert _gradient_norms(grads[:-1]) == expected[:-1]  # all dense: one batched kernel
    assert _gradient_norms([]) == []
