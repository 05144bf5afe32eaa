"""The mechanism exercise: its reference is the library's own forward pass, and its checker grades fairly."""

import random

import pytest
import torch

from xtlab.course import NOT_YET, PASS, TRY_AGAIN
from xtlab.labs.layer_dropout import EXERCISES
from xtlab.labs.layer_dropout.experiments import build_model

EXERCISE = EXERCISES["layer_dropout_block"]


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_reference_block_by_block_is_the_library_forward_under_the_same_seed(seed):
    model = build_model(vocab_size=13, depth=3, layer_dropout=0.4, seed=0).attn_layers
    model.train()
    x = torch.randn(2, 6, 32, generator=torch.Generator().manual_seed(seed + 100))
    torch.manual_seed(seed)
    library = model(x)
    skipped_by_library = model.last_skipped
    generator = torch.Generator().manual_seed(seed)
    stream, skipped = x, []
    for index, block in enumerate(model.layers):
        before = stream
        stream = EXERCISE.reference(block, stream, model.layer_dropout, True, generator)
        if stream is before:
            skipped.append(index)
    assert tuple(skipped) == skipped_by_library
    assert torch.allclose(model.final_norm(stream), library, atol=1e-6)


def test_checker_leaves_global_random_state_alone_and_passes_the_reference():
    python_state, torch_state = random.getstate(), torch.get_rng_state()
    assert EXERCISE.check(EXERCISE.reference).status == PASS
    assert random.getstate() == python_state and torch.equal(torch.get_rng_state(), torch_state)


def test_calling_the_block_itself_gets_a_clear_try_again_not_a_not_yet():
    verdict = EXERCISE.check(lambda block, x, p, training, generator: block(x))
    assert verdict.status == TRY_AGAIN and "no forward of its own" in str(verdict)


def test_other_equivalent_draws_pass():
    def scalar_draw(block, x, p, training, generator):
        if training and torch.rand((), generator=generator).item() < p:
            return x
        return block.fn(block.norm(x)) + x

    assert EXERCISE.check(scalar_draw).status == PASS


@pytest.mark.parametrize(("answer", "says"), [
    (lambda block, x, p, training, generator: x[:, :1], "shape"),
    (lambda block, x, p, training, generator: block.norm(x + block.fn(x)), "post-norm"),
    (lambda block, x, p, training, generator: x + block.fn(x), "without block.norm"),
    (lambda block, x, p, training, generator: x + 1.01 * block.fn(block.norm(x)), "differs from"),
])
def test_more_wrong_answers_are_named(answer, says):
    verdict = EXERCISE.check(answer)
    assert verdict.status == TRY_AGAIN and says in str(verdict), str(verdict)


def test_global_torch_rng_instead_of_the_generator_is_caught():
    def global_rng(block, x, p, training, generator):
        if training and torch.rand(1) < p:
            return x
        return x + block.fn(block.norm(x))

    torch.manual_seed(0)
    verdict = EXERCISE.check(global_rng)
    assert verdict.status == TRY_AGAIN and "generator you were given" in str(verdict)


def test_stub_is_not_yet():
    def stub(block, x, p, training, generator):
        raise NotImplementedError()

    assert EXERCISE.check(stub).status == NOT_YET
