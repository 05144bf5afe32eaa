"""Lab 02 exercise checkers beyond the shared exercise tests: other correct answers pass, checkers leave no trace."""

import os

import torch
import torch.nn.functional as F

from xtlab.course import PASS, TRY_AGAIN
from xtlab.labs.weight_tying.exercises import EXERCISES, _GivenInit


class _TransposedMatmul(_GivenInit):
    def forward(self, x):
        return x @ self.tied[0].weight.T


class _ReadsOnce(_GivenInit):
    """Reads the weight once per call into a local name: still the weight as it is now."""

    def forward(self, x):
        weight = self.tied[0].weight
        return torch.matmul(x, weight.t())


def _torch_save_without_assign(model, folder, build):
    path = os.path.join(folder, "model.pt")
    torch.save(model.state_dict(), path)
    loaded = build()
    loaded.load_state_dict(torch.load(path, weights_only=True))
    return loaded


def test_other_correct_forwards_pass():
    assert EXERCISES["TiedLinear"].check(_TransposedMatmul).status == PASS
    assert EXERCISES["TiedLinear"].check(_ReadsOnce).status == PASS


def test_a_closure_over_the_original_embedding_fails_the_deepcopy_check():
    class Closure(torch.nn.Module):
        def __init__(self, embedding):
            super().__init__()
            self.read = lambda: embedding.weight  # deepcopy does not copy functions: the copy reads the original

        def forward(self, x):
            return F.linear(x, self.read())

    verdict = EXERCISES["TiedLinear"].check(Closure)
    assert verdict.status == TRY_AGAIN and "deepcopy" in verdict.checked


def test_torch_save_without_assign_repairs_the_function():
    assert EXERCISES["save_and_load"].check(_torch_save_without_assign).status == PASS


def test_a_copy_instead_of_a_load_is_refused():
    import copy

    verdict = EXERCISES["save_and_load"].check(lambda model, folder, build: copy.deepcopy(model))
    assert verdict.status == TRY_AGAIN and "build()" in verdict.checked


def test_checkers_leave_the_global_random_state_alone():
    before = torch.get_rng_state()
    for name, exercise in EXERCISES.items():
        assert exercise.check(exercise.reference).status == PASS, name
    assert torch.equal(torch.get_rng_state(), before)
