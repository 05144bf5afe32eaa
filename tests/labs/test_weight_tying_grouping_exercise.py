"""Lab 02 exercise shard_tied_model: a fully_shard grouping judged on two real gloo ranks.

The generic contract (reference PASS, stub NOT YET, every catalogued mistake TRY AGAIN with its own hint) runs in
test_exercises_launching.py; here: the hidden cases are not the notebook's, what each catches, a correct answer the
reference does not write (root only), and answers that raise on one rank, wait in a collective one rank never
joins, loop, or lean on a name the ranks do not have: each gets its verdict within the launch's bound.
"""

import time

import pytest
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard

from xtlab.course import NOT_YET, PASS, TRY_AGAIN
from xtlab.labs.weight_tying import EXERCISES
from xtlab.labs.weight_tying import fsdp_exercise as grouping
from xtlab.labs.weight_tying.models import tie_verdict

EXERCISE = EXERCISES["shard_tied_model"]
BOUND_S = EXERCISE.whole_check_limit_s


def test_hidden_models_are_not_the_notebooks_and_cover_both_heads():
    shown = {(case.head, case.size) for case in grouping.NOTEBOOK_CASES}
    hidden = {(case.head, case.size) for case in grouping.CASES}
    assert not shown & hidden
    assert {case.size.depth for case in grouping.CASES} - {case.size.depth for case in grouping.NOTEBOOK_CASES}
    assert {case.head for case in grouping.CASES} == set(grouping.HEADS)
    assert any(case.size.num_tokens % 2 for case in grouping.CASES)  # shards of unequal size


@pytest.mark.parametrize("case", grouping.CASES + grouping.NOTEBOOK_CASES, ids=lambda case: case.setting)
def test_every_case_model_is_tied_on_the_cpu(case):
    model = grouping.build_case_model(case)
    assert tie_verdict(model) == "tied"
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert ("to_logits.bias" in model.state_dict()) == (case.head == "naive_bias")


def shard_tied_model(model, mesh):
    # YOUR CODE HERE
    raise NotImplementedError()


def test_the_learner_editions_stub_is_not_yet_without_a_launch():
    assert not grouping._is_stub("def shard_tied_model(model, mesh):\n    fully_shard(model)\n", "shard_tied_model")
    started = time.perf_counter()
    assert EXERCISE.check(shard_tied_model).status == NOT_YET  # the learner edition's stub, as built
    assert time.perf_counter() - started < 1.0


def test_a_lambda_or_a_value_is_refused_before_any_launch():
    assert "defined with def" in EXERCISE.check(lambda model, mesh: None).checked
    assert "must be a function" in EXERCISE.check(42).checked


# --- on two real gloo ranks -------------------------------------------------------------------------------------

def raises_on_rank_1(model, mesh):
    if dist.get_rank() == 1:
        raise RuntimeError("only on this rank")
    fully_shard(model, mesh=mesh)


def barrier_on_rank_0(model, mesh):
    if dist.get_rank() == 0:
        dist.barrier()  # its peer never joins
    fully_shard(model, mesh=mesh)


def loops_forever(model, mesh):
    while True:
        try:
            pass
        except BaseException:  # noqa: BLE001, S110 - a loop that swallows the time limit, on purpose
            pass


def uses_a_helper_the_ranks_lack(model, mesh):
    helper(model)  # noqa: F821 - defined in another cell: the ranks get this function's source only


def stub_after_a_call(model, mesh):
    fully_shard(model, mesh=mesh)
    raise NotImplementedError


def indexes_four_blocks(model, mesh):
    for index in range(4):  # the blocks of a depth-2 model
        fully_shard(model.attn_layers.layers[index].fn, mesh=mesh)
    fully_shard(model, mesh=mesh)


pytestmark_slow = pytest.mark.slow


@pytestmark_slow
def test_root_only_is_a_correct_answer():
    verdict = EXERCISE.check(grouping.shard_root_only)
    assert verdict.status == PASS and "[the root]" in verdict.checked


@pytestmark_slow
@pytest.mark.parametrize(("answer", "says"), [
    (raises_on_rank_1, "on rank 1 only"),
    (barrier_on_rank_0, "its peer never joined"),
    (loops_forever, "did not return within"),
    (uses_a_helper_the_ranks_lack, "the ranks get the source"),
    (indexes_four_blocks, "IndexError"),
], ids=lambda value: getattr(value, "__name__", value))
def test_hostile_answers_get_a_verdict_within_the_bound(answer, says):
    started = time.perf_counter()
    verdict = EXERCISE.check(answer)
    assert verdict.status == TRY_AGAIN and says in str(verdict), str(verdict)
    assert time.perf_counter() - started < BOUND_S


@pytestmark_slow
def test_not_implemented_on_the_ranks_is_not_yet():
    assert EXERCISE.check(stub_after_a_call).status == NOT_YET


@pytestmark_slow
def test_each_hidden_case_catches_what_the_report_says():
    """Case 3 (TiedLinear, depth 1) alone catches the re-tie after a root-only shard and block indexing written
    for a deeper model; the head alone in a group passes it (a TiedLinear head owns no weight) and fails the naive
    cases."""
    caught = {}
    for answer in (grouping.shard_root_then_retie, grouping.shard_head_alone, indexes_four_blocks,
                   grouping.shard_separately):
        run = grouping._launch(grouping._shipped(answer), grouping.CASES, keep_going=True)
        values, failed = grouping._rank_results(run)
        assert not failed, failed
        caught[answer.__name__] = [bool(grouping._outcome_problem([v[i] for v in values]))
                                   for i in range(len(grouping.CASES))]
    assert caught == {
        "shard_root_then_retie": [False, False, True],
        "shard_head_alone": [True, True, False],
        "indexes_four_blocks": [False, False, True],
        "shard_separately": [True, True, True],
    }


@pytestmark_slow
def test_the_notebooks_breaking_grouping_fails_both_shown_models_and_the_reference_keeps_them():
    broken = grouping.grouping_outcomes(grouping.shard_separately)
    assert [outcome.keeps_the_tie for outcome in broken] == [False, False]
    assert "ValueError" in broken[0].problem and "shared with a parameter already managed" in broken[0].problem
    assert "mixed torch.Tensor and DTensor" in broken[1].problem
    kept = grouping.grouping_outcomes(EXERCISE.reference)
    assert all(outcome.keeps_the_tie for outcome in kept)
