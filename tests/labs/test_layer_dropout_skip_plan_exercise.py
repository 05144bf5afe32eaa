"""Lab 01, exercise 3: a skip plan every rank agrees on. The generic exercise tests (tests/labs/test_exercises.py)
feed the reference, a stub and every catalogued mistake to the checker; these check what the hidden cases are made
of, the reference's refusals, answers that must pass, and that the checker leaves the process as it found it."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from xtlab.course import PASS, TRY_AGAIN
from xtlab.labs.layer_dropout import skip_plan_exercise as plan
from xtlab.labs.layer_dropout.exercises import EXERCISES

EXERCISE = EXERCISES["skip_plan"]


def _probabilities(p, n):
    return [p] * n if isinstance(p, (int, float)) else list(p)


def test_hidden_cases_cover_the_edges():
    settings = [case.args[0] for case in plan._cases()]
    assert {s.num_blocks for s in settings} >= {1, 12}
    assert {0.0, 1.0} <= {s.p for s in settings if isinstance(s.p, float)}
    assert any(isinstance(s.p, tuple) and {0.0, 1.0} <= set(s.p) for s in settings)
    assert sum(s.statistical for s in settings) >= 3 and plan.STEPS >= 2000


def test_the_example_of_the_prompt_and_the_reference_refusals():
    assert plan.reference_skip_plan(0, 5, 3, [0.0, 1.0, 0.0]) == [False, True, False]
    assert plan.reference_skip_plan(4, 9, 0, 0.5) == []
    for args, error, named in (((-1, 0, 3, 0.5), ValueError, "-1"), ((0, 1.5, 3, 0.5), TypeError, "1.5"),
                               ((0, 0, True, 0.5), TypeError, "True"), ((0, 0, 3, 1.5), ValueError, "1.5"),
                               ((0, 0, 3, [0.1, 0.2]), ValueError, "[0.1, 0.2]"), ((0, 0, 3, "0.1"), TypeError, "0.1"),
                               ((0, 0, 2, [0.1, -0.2]), ValueError, "-0.2")):
        with pytest.raises(error, match=named.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
            plan.reference_skip_plan(*args)


def test_other_correct_plans_pass():
    def torch_generator(seed, step, num_blocks, p):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        probabilities = torch.tensor(_probabilities(p, num_blocks), dtype=torch.float32)
        return (torch.rand(num_blocks, generator=generator) < probabilities).tolist()

    def hashed(seed, step, num_blocks, p):
        digest = hashlib.sha256(f"{seed}:{step}".encode()).digest()
        draws = np.random.default_rng(int.from_bytes(digest[:8], "little")).random(num_blocks)
        return [bool(u < q) for u, q in zip(draws, _probabilities(p, num_blocks), strict=True)]

    def returns_a_tensor(seed, step, num_blocks, p):
        return torch.tensor(plan.reference_skip_plan(seed, step, num_blocks, p), dtype=torch.bool)

    for answer in (torch_generator, hashed, returns_a_tensor):
        verdict = EXERCISE.check(answer)
        assert verdict.status == PASS, f"{answer.__name__}: {verdict}"
    assert "5 binomial standard deviations" in str(EXERCISE.check(plan.reference_skip_plan))


def test_a_seed_beyond_32_bits_is_told_that_torch_drops_the_seed():
    def shifted_seed(seed, step, num_blocks, p):
        generator = torch.Generator().manual_seed(seed * 2**32 + step)  # torch keeps the low 32 bits: step alone
        return [bool(u < q) for u, q in zip(torch.rand(num_blocks, generator=generator),
                                            _probabilities(p, num_blocks), strict=True)]

    verdict = EXERCISE.check(shifted_seed)
    assert verdict.status == TRY_AGAIN and "ignores the seed" in verdict.checked and "32 bits" in verdict.hint


def test_reading_the_global_state_without_drawing_and_odd_returns_get_their_own_verdicts():
    def reads_initial_seed(seed, step, num_blocks, p):
        return plan._from_generator(torch.initial_seed() % 2**31 + step, num_blocks, p)

    verdict = EXERCISE.check(reads_initial_seed)
    assert verdict.status == TRY_AGAIN and "reads their state" in verdict.checked

    def returns_floats(seed, step, num_blocks, p):
        return [0.5] * num_blocks

    verdict = EXERCISE.check(returns_floats)
    assert verdict.status == TRY_AGAIN and "list of" in verdict.hint and "bools" in verdict.hint


def test_a_check_leaves_the_process_as_it_was():
    getpid, environment = os.getpid, dict(os.environ)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    for answer in (plan.reference_skip_plan, plan.mixes_in_the_rank, plan.mixes_in_the_process_id,
                   plan.reseeds_the_global_generator):
        EXERCISE.check(answer)
    assert os.getpid is getpid and dict(os.environ) == environment
    assert torch.equal(torch.get_rng_state(), state)


def test_the_plan_agrees_on_two_real_gloo_ranks_and_the_global_generator_does_not():
    across = plan.plan_across_ranks(None, seed=0, steps=8, num_blocks=8, p=0.3)
    assert across.whose == "the reference" and across.agreed_steps == across.steps == 8
    assert across.plans[0] == across.plans[1]
    assert across.plans[0][2] == tuple(plan.reference_skip_plan(0, 2, 8, 0.3))
    assert across.global_agreed_steps < across.steps / 2
    wrong = plan.plan_across_ranks(plan.mixes_in_the_process_id, steps=4)
    assert wrong.whose == "yours" and wrong.agreed_steps < wrong.steps


def test_a_rank_imports_the_plan_module_without_x_transformers_or_matplotlib():
    code = ("import sys, xtlab.labs.layer_dropout.skip_plan_exercise; "
            "print(sorted(m for m in ('x_transformers', 'matplotlib', 'ipywidgets') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert found.stdout.strip() == "[]"  # what makes the two-rank cell cost about 1.5 s instead of 5 s


def test_a_plan_salted_by_hash_is_caught_in_fresh_processes_though_forked_ranks_agree():
    def salted(seed, step, num_blocks, p):  # shipped as source, as a notebook cell's plan is
        return list(np.random.default_rng(hash((str(seed), step)) % 2**63).random(num_blocks) < p)

    verdict = plan.check_skip_plan(salted)
    assert verdict.status == TRY_AGAIN and "PYTHONHASHSEED" in str(verdict), verdict
    across = plan.plan_across_ranks(salted, steps=4)  # forked from one server: one hash seed, so they agree
    assert across.agreed_steps == 4


def test_only_a_plan_that_mentions_hash_pays_for_fresh_processes(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a fresh process was started")

    monkeypatch.setattr(plan.subprocess, "Popen", refuse)
    assert plan.check_skip_plan(plan.reference_skip_plan).passed
