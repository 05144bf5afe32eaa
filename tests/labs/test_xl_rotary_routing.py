"""Lab 03, memory routing under layer dropout: the harness, the library reference and the full pass agree, the
x-transformers emulation matches the installed library, and the checker judges hostile or partial answers."""

import torch

from xtlab.course import NOT_YET, PASS, TRY_AGAIN
from xtlab.labs import xl_rotary as lab
from xtlab.labs.xl_rotary import EXERCISES
from xtlab.labs.xl_rotary.routing_exercise import segmented_logits


def test_reference_equals_the_library_decoder_and_the_gated_full_pass():
    model = lab.build_routing_model(3)
    tokens = lab.example_tokens(12, seed=9, batch=2)
    patterns = [[True, False, True], [False, True, True], [True, True, False]]
    with torch.no_grad():
        got, _ = segmented_logits(lab.solution_run_layers, model, tokens, 4, 64, patterns)
        full = lab.gated_full_pass(model, tokens, 4, patterns)
        mems, outputs = None, []
        for s, ran in enumerate(patterns):
            x, mems = lab.library_segment(model, model.token_emb(tokens[:, 4 * s:4 * s + 4]), mems, ran, 64)
            outputs.append(model.to_logits(model.attn_layers.final_norm(x)))
    assert (got - full).abs().max() < lab.EXACT_TOLERANCE
    assert (torch.cat(outputs, dim=1) - full).abs().max() < lab.EXACT_TOLERANCE
    assert "draw_skips" not in vars(model.attn_layers)  # the forced skips are undone


def test_the_emulated_xtransformers_loop_reads_like_the_installed_one():
    emulated = lab.which_memories(lab.xtransformers_routing, depth=3, skipped=0)
    real = lab.memory_routing("x-transformers", dropped_layer=0, depth=3)
    assert emulated["read"][1:] == list(real.received[1:])
    assert emulated["returned_old"] == list(real.returned_old)
    assert emulated["returned_new"] == list(real.returned_new)


def test_the_check_judges_stubs_and_partial_answers():
    def stub(stack, x, mems, ran, max_mem_len):
        raise NotImplementedError()

    def returns_x_only(stack, x, mems, ran, max_mem_len):
        return x

    def forgets_x(stack, x, mems, ran, max_mem_len):
        _, new_mems = lab.solution_run_layers(stack, x, mems, ran, max_mem_len)
        return x, new_mems

    assert EXERCISES.check("run_layers", stub).status == NOT_YET
    assert EXERCISES.check("run_layers", returns_x_only).status == TRY_AGAIN
    verdict = EXERCISES.check("run_layers", forgets_x)
    assert verdict.status == TRY_AGAIN and "last layer" in str(verdict)
    assert EXERCISES.check("run_layers", lab.solution_run_layers).status == PASS
