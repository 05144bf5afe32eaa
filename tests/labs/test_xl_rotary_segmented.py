"""Lab 03's segmented-pass exercise beyond the shared checks: the runner is the library's model, and answers that
go wrong in ways outside the catalogue get named."""

import pytest
import torch

from xtlab.course import PASS, TRY_AGAIN
from xtlab.labs import xl_rotary as lab
from xtlab.labs.xl_rotary.segmented_exercise import keep_newest, mistaken_segmented_pass


@pytest.mark.parametrize("max_mem_len", [0, 3, 5, 64])
def test_runner_with_the_reference_loop_is_the_library(max_mem_len):
    model = lab.build_xl_model(max_mem_len=max(max_mem_len, 1))
    tokens = lab.example_tokens(17, batch=2)
    with torch.no_grad():
        mine = lab.solution_segmented_pass(lab.SegmentRunner(model), tokens, 5, max_mem_len)
        library = lab.reference_segmented(model, tokens, 5, max_mem_len)
    assert (mine - library).abs().max().item() < lab.EXACT_TOLERANCE
    if max_mem_len == 64:
        assert (mine - model(tokens)).abs().max().item() < lab.EXACT_TOLERANCE


def test_runner_refuses_positions_of_the_wrong_length_and_unequal_memories():
    runner = lab.SegmentRunner(lab.build_xl_model())
    tokens = lab.example_tokens(4)
    with pytest.raises(ValueError, match="M \\+ T"):
        runner(tokens, None, [0, 1, 2])
    mems = [torch.zeros(1, 2, lab.DIM, dtype=torch.float64), torch.zeros(1, 3, lab.DIM, dtype=torch.float64)]
    with pytest.raises(ValueError, match="same length"):
        runner(tokens, mems, list(range(-2, 4)))


def check(answer):
    return lab.check("segmented_pass", answer)


def test_a_shifted_numbering_passes():
    def shifted(run_segment, tokens, segment_len, max_mem_len):
        mems, outputs = None, []
        for start in range(0, tokens.shape[1], segment_len):
            segment = tokens[:, start:start + segment_len]
            m = 0 if mems is None else mems[0].shape[1]
            logits, hiddens = run_segment(segment, mems, torch.arange(100 - m, 100 + segment.shape[1]))
            outputs.append(logits)
            with torch.no_grad():  # as good as detach
                mems = [keep_newest(run_segment.norm(k, h) if mems is None else torch.cat(
                    (mems[k], run_segment.norm(k, h)), dim=1), max_mem_len) for k, h in enumerate(hiddens)]
        return torch.cat(outputs, dim=1)

    assert check(shifted).status == PASS


def test_zero_memories_for_the_first_segment_are_named():
    solution = lab.solution_segmented_pass

    def zeros_first(run_segment, tokens, segment_len, max_mem_len):
        class Starting:
            def __init__(self):
                self.first = True
                self.norm = run_segment.norm

            def __call__(self, segment, mems, positions):
                if self.first and max_mem_len:
                    self.first = False
                    mems = [torch.zeros(segment.shape[0], 2, 32, dtype=torch.float64)] * 2
                    positions = list(range(-2, segment.shape[1]))
                return run_segment(segment, mems, positions)

        return solution(Starting(), tokens, segment_len, max_mem_len)

    verdict = check(zeros_first)
    assert verdict.status == TRY_AGAIN and "first segment has no memory" in str(verdict)


def test_swapped_layers_wrong_output_and_no_graph_are_named():
    def swapped(run_segment, tokens, segment_len, max_mem_len):
        class Swapping:
            norm = staticmethod(run_segment.norm)

            def __call__(self, segment, mems, positions):
                return run_segment(segment, None if mems is None else mems[::-1], positions)

        return lab.solution_segmented_pass(Swapping(), tokens, segment_len, max_mem_len)

    assert "each layer keeps its own" in str(check(swapped))

    def last_only(run_segment, tokens, segment_len, max_mem_len):
        out = lab.solution_segmented_pass(run_segment, tokens, segment_len, max_mem_len)
        return out[:, -segment_len:]

    assert "torch.cat of every segment" in str(check(last_only))

    def no_graph(run_segment, tokens, segment_len, max_mem_len):
        with torch.no_grad():
            return lab.solution_segmented_pass(run_segment, tokens, segment_len, max_mem_len)

    verdict = check(no_graph)
    assert verdict.status == TRY_AGAIN and "training mode" in str(verdict) and "no graph" in str(verdict)


def test_a_clone_instead_of_detach_is_caught_as_a_growing_graph():
    verdict = check(mistaken_segmented_pass(lambda both, L: keep_newest(both, L).clone(), detach=False))
    assert verdict.status == TRY_AGAIN and "detach" in str(verdict)
