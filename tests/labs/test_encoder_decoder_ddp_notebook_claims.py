"""Every claim the stored Lab 05 notebooks print, recomputed from the lab's functions (the DDP runs in one real
launch) and found in the stored outputs. Durations differ from run to run and are masked, as nbval masks them."""

import json
import re
from pathlib import Path

import pytest
from torch.distributed import constants as dist_constants

from tests.labs import notebook_text
from xtlab.course import FAILS, HOLDS, UNSTATED
from xtlab.diagnostics import find_unused_parameters
from xtlab.labs.encoder_decoder_ddp.experiments import (
    autograd_graph_size,
    build_seq2seq_model,
    seq2seq_batch,
    seq2seq_loss,
    train_seq2seq,
    wasted_by_encoder_logits,
)
from xtlab.labs.encoder_decoder_ddp.fix_exercise import buggy_trained_model
from xtlab.labs.encoder_decoder_ddp.gradient_average import compare_gradient_average
from xtlab.labs.encoder_decoder_ddp.launch import full_message, run_scenarios
from xtlab.labs.encoder_decoder_ddp.library_check import compare_with_library
from xtlab.labs.encoder_decoder_ddp.notebook_runs import notebook_scenarios
from xtlab.labs.encoder_decoder_ddp.readiness import ready_parameters
from xtlab.labs.encoder_decoder_ddp.torchrun_entry import experiments, torchrun_command

ROOT = Path(__file__).resolve().parents[2]
EDITIONS = [ROOT / "notebooks" / "05_encoder_decoder_ddp.ipynb", ROOT / "solutions" / "05_encoder_decoder_ddp.ipynb"]
DURATION = re.compile(r"\d+(\.\d+)? ?(ms|s|µs|us)\b")  # notebooks/nbval_sanitize.cfg [duration]


def masked(text: str) -> str:
    return DURATION.sub("DURATION", text)


def stored_text_of(path: Path) -> str:
    return masked(notebook_text.stored_text_of(path))

@pytest.fixture(scope="module")
def stored() -> list[str]:
    return [stored_text_of(path) for path in EDITIONS]


@pytest.fixture(scope="module")
def runs():
    return run_scenarios(notebook_scenarios())


def assert_in_every_edition(stored: list[str], text: str) -> None:
    for path, edition in zip(EDITIONS, stored, strict=True):
        assert masked(text) in edition, f"{path.parent.name}: {text!r}"


def test_notebook_defines_only_exercise_answers():
    code = "\n".join("".join(cell["source"]) for cell in json.loads(EDITIONS[1].read_text())["cells"]
                     if cell["cell_type"] == "code")
    defined = [line.split("(")[0].removeprefix("def ") for line in code.splitlines() if line.startswith("def ")]
    assert defined == ["show_unused", "show_layer_dropout_runs", "show_gradient_ratios", "unused_parameter_names",
                       "attach_reducer", "fix_encoder_decoder", "load_before_fix", "ddp_settings_for_layer_dropout"]
    assert "class " not in code


def test_single_process_claims(stored):
    run = train_seq2seq("reverse", steps=80, device="cpu")
    assert_in_every_edition(stored, f"{run.accuracy_before:.2f} before training, {run.accuracy_after:.2f} after")
    assert run.accuracy_after > run.accuracy_before
    for keeps in (True, False):
        found = find_unused_parameters(build_seq2seq_model(encoder_keeps_logits=keeps), seq2seq_loss, seq2seq_batch())
        assert_in_solutions_only(stored, f"encoder_keeps_logits={keeps}: {len(found)} unused: "
                                        f"{[(p.name, p.shape) for p in found]}")
    assert_in_solutions_only(stored, "Answer (computed): exactly one")
    waste = wasted_by_encoder_logits(32000, 512, "float32")
    assert_in_every_edition(stored, f"{waste.wasted_params:,} unused parameters, {waste.wasted_bytes / 2**20:.1f} MiB")
    readiness = ready_parameters(build_seq2seq_model(encoder_keeps_logits=True), seq2seq_loss, seq2seq_batch())
    assert readiness.never_ready == ("encoder.to_logits.weight",)
    assert_in_every_edition(stored, f"{len(readiness.ready)} parameters became ready")
    assert_in_every_edition(stored, f"never ready: {list(readiness.never_ready)}")


def test_every_run_is_printed_as_it_happened(runs, stored):
    assert runs.names == [scenario.name for scenario in notebook_scenarios()]
    assert_in_every_edition(stored, f"{len(runs)} runs in one launch of 2 processes: {', '.join(runs.names)}")
    for name in ("encoder_keeps_logits", "encoder_keeps_logits_info", "encoder_fixed",
                 "encoder_keeps_logits_find_unused",
                 "same_skips_on_every_rank", "skips_differ_static_graph", "skips_differ_find_unused"):
        assert_in_every_edition(stored, "\n".join(runs[name].lines()))
    for name in ("skips_differ", "one_rank_skips_nothing"):  # shown after the hang prediction is committed
        assert_in_solutions_only(stored, "\n".join(runs[name].lines()))


def test_the_article_failure_info_and_fix(runs, stored):
    bug, info = runs["encoder_keeps_logits"], runs["encoder_keeps_logits_info"]
    assert bug.outcome == info.outcome == "error" and bug.ranks_with("error") == [0, 1]
    assert {rank.step for rank in bug.ranks} == {2} and {rank.phase for rank in bug.ranks} == {"forward"}
    # INFO (not only DETAIL) names the parameter on the installed torch; OFF gives indices and says to set it
    assert bug.unused == () and info.unused == ("encoder.to_logits.weight",)
    assert "TORCH_DISTRIBUTED_DEBUG to either INFO or DETAIL" in bug.ranks[0].error
    assert_in_every_edition(stored, "parameters named at INFO: ['encoder.to_logits.weight']; named at OFF: []")
    for report in (bug, info):  # the whole message, not its first sentence
        assert_in_every_edition(stored, "rank 0's error, in full:\n" + full_message(report.ranks[0].error))
    assert "Parameters which did not receive grad for rank 0: encoder.to_logits.weight" in full_message(
        info.ranks[0].error)
    fixed, escape = runs["encoder_fixed"], runs["encoder_keeps_logits_find_unused"]
    assert fixed.ok and escape.ok and fixed.ranks_agree and escape.ranks_agree
    assert fixed.local_ranks_agree is False
    assert_in_every_edition(stored, "without DDP, the ranks of encoder_fixed agree on parameters: False")


def test_layer_dropout_error_hang_and_silent_success(runs, stored):
    assert runs["skips_differ"].outcome == "error"
    hang = runs["one_rank_skips_nothing"]
    assert hang.outcome == "hang until the timeout" and hang.ranks_with("hung") == [0]
    assert hang.ranks[0].seconds >= hang.scenario.collective_timeout_s
    assert runs["same_skips_on_every_rank"].outcome == "error"
    assert "graph has changed" in runs["skips_differ_static_graph"].ranks[0].message
    assert runs["skips_differ_find_unused"].ok
    assert_in_solutions_only(stored, "Answer (computed): one rank waits for the other until the timeout")
    assert_in_every_edition(stored, f"gloo's default process-group timeout: {dist_constants.default_pg_timeout}")
    assert_in_every_edition(stored, f"collective timeout in training {hang.scenario.collective_timeout_s:g} s")
    for name in ("skips_differ", "one_rank_skips_nothing", "same_skips_on_every_rank"):
        assert_in_every_edition(stored, f"{name}: " + "; ".join(
            f"rank {rank} skipped {list(steps)}" for rank, steps in enumerate(runs[name].skipped)))


def test_one_rank_gradient_is_averaged_with_zeros(runs, stored):
    average = compare_gradient_average(runs["skips_differ_find_unused"])
    low, high = average.one_rank_ratio
    assert average.ranks_agree and low == high == 0.5 and average.max_error == 0.0
    assert average.every_rank_ratio == (1.0, 1.0)
    assert_in_solutions_only(stored, f"{len(average.used_on_one_rank())} parameters used on one rank only: "
                                    f"|DDP gradient| / |that rank's gradient| from {low:.6f} to {high:.6f}")
    assert_in_solutions_only(stored, "Answer (computed): half of it")


def test_audit_verdicts_follow_the_measurements(runs, stored):
    waste = wasted_by_encoder_logits(32000, 512, "float32")
    fixed = wasted_by_encoder_logits(32000, 512, "float32", encoder_keeps_logits=False)
    assert waste.total_params - fixed.total_params == waste.wasted_params > 0
    assert runs["encoder_keeps_logits_find_unused"].ok and runs["encoder_keeps_logits"].outcome == "error"
    dropout_model = build_seq2seq_model(depth=2, dec_layer_dropout=0.3).eval()
    assert find_unused_parameters(dropout_model, seq2seq_loss, seq2seq_batch()) == []
    assert runs["skips_differ"].outcome == "error"
    library = compare_with_library()
    assert library.has_fix and not library.unused
    expected = {2: HOLDS, 3: FAILS, 4: UNSTATED, 5: HOLDS, 7: HOLDS, 8: HOLDS, 9: HOLDS, 10: HOLDS, 11: UNSTATED}
    for number, verdict in expected.items():
        assert_in_solutions_only(stored, f"{number}. [{verdict}]")
    assert_in_every_edition(stored, f"xtlab's model at the same sizes: {library.xtlab_params:,} parameters")
    assert_in_every_edition(stored, f"{library.library_params:,} parameters, unused: {list(library.unused)}")
    assert_in_every_edition(stored, "layer-dropout model, one check in eval mode: 0 unused; under DDP in training: "
                                    "error")
    assert_in_every_edition(stored, f"{waste.total_params - fixed.total_params:,} fewer; unused: 0")


def assert_in_solutions_only(stored: list[str], text: str) -> None:
    """The audit's verdicts show in the solutions edition only (the learner commits first)."""
    for path, edition in zip(EDITIONS, stored, strict=True):
        assert (masked(text) in edition) == (path.parent.name == "solutions"), f"{path.parent.name}: {text!r}"


def test_loading_a_pre_fix_checkpoint_at_each_strict(stored):
    import torch

    pre_fix = buggy_trained_model().state_dict()
    demo = build_seq2seq_model()
    with pytest.raises(RuntimeError) as raised:
        demo.load_state_dict(pre_fix)
    # the full message names the key; strict=True raises only after copying every tensor it could match
    assert '"encoder.to_logits.weight"' in str(raised.value)
    assert_in_every_edition(stored, f"strict=True raised RuntimeError: {raised.value}")
    assert torch.equal(demo.decoder.to_logits.weight, pre_fix["decoder.to_logits.weight"])
    assert_in_every_edition(stored, "after that error, the decoder's to_logits holds the checkpoint's weight: True")
    keys = build_seq2seq_model().load_state_dict(pre_fix, strict=False)
    assert_in_every_edition(stored, f"strict=False raised nothing and returned unexpected {keys.unexpected_keys}, "
                                    f"missing {keys.missing_keys}")


def test_the_torchrun_commands_are_shown(stored):
    for experiment in ("encoder_keeps_logits", "encoder_fixed", "reducer"):
        assert_in_every_edition(stored, torchrun_command(experiment) + "\n")
    assert_in_every_edition(stored, f"every experiment: {', '.join(experiments())}")


def test_prose_says_what_ddp_does_and_where_the_course_goes_next():
    for path in EDITIONS:
        prose = notebook_text.prose_of(path)
        # DDP's autograd hooks mark a parameter ready, per bucket; buckets are reduced in a fixed order
        assert "marks the\n  parameter **ready** in its bucket" in prose and "counts the parameter as" not in prose
        assert "when every parameter of a bucket is ready, the bucket is all-reduced" in prose
        assert "straight away" not in prose  # unused parameters are marked ready at backward's first hook
        # INFO, measured above, already names the parameter: the prose asks for INFO, not DETAIL
        assert "The run `encoder_keeps_logits_info` sets `INFO` in each rank" in prose
        assert "This is the last lab" not in prose and "Lab 06 (`06_audit.ipynb`)" in prose
        assert "(a) real DDP on 2 processes with `find_unused_parameters=False` trains the fixed model" in prose


def test_claim_3_does_not_hold_and_the_flags_cost_is_counted(runs, stored):
    nodes = autograd_graph_size(seq2seq_loss(build_seq2seq_model(encoder_keeps_logits=True), seq2seq_batch()))
    assert nodes > 100  # every op of the forward, searched once per step
    assert_in_every_edition(stored, f"DDP walks the autograd graph after every forward: {nodes} nodes for one batch "
                                    f"of this model; with False, none")
    assert runs["encoder_keeps_logits_find_unused"].ok
    assert_in_solutions_only(stored, "3. [does not hold] PyTorch DDP requires every parameter")
    assert_in_solutions_only(stored, f"a walk of the whole autograd graph after every forward, {nodes} nodes per "
                                     f"step for this model, none at False")
