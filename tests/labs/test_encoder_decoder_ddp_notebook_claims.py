"""Every claim the stored Lab 05 notebooks print, recomputed from the lab's functions (the DDP runs in one real
launch) and found in the stored outputs. Durations differ from run to run and are masked, as nbval masks them."""

import json
import re
from pathlib import Path

import pytest
from torch.distributed import constants as dist_constants

from tests.labs import notebook_text
from xtlab.course import verdict_of
from xtlab.diagnostics import find_unused_parameters
from xtlab.labs.encoder_decoder_ddp.experiments import (
    build_seq2seq_model,
    seq2seq_batch,
    seq2seq_loss,
    train_seq2seq,
    wasted_by_encoder_logits,
)
from xtlab.labs.encoder_decoder_ddp.gradient_average import compare_gradient_average
from xtlab.labs.encoder_decoder_ddp.launch import run_scenarios
from xtlab.labs.encoder_decoder_ddp.library_check import compare_with_library
from xtlab.labs.encoder_decoder_ddp.notebook_runs import notebook_scenarios
from xtlab.labs.encoder_decoder_ddp.readiness import ready_parameters

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
    assert defined == ["unused_parameter_names", "fix_encoder_decoder", "ddp_settings_for_layer_dropout"]
    assert "class " not in code


def test_single_process_claims(stored):
    run = train_seq2seq("reverse", steps=80)
    assert_in_every_edition(stored, f"{run.accuracy_before:.2f} before training, {run.accuracy_after:.2f} after")
    assert run.accuracy_after > run.accuracy_before
    for keeps in (True, False):
        found = find_unused_parameters(build_seq2seq_model(encoder_keeps_logits=keeps), seq2seq_loss, seq2seq_batch())
        assert_in_every_edition(stored, f"encoder_keeps_logits={keeps}: {len(found)} unused: "
                                        f"{[(p.name, p.shape) for p in found]}")
    assert_in_every_edition(stored, "Answer (computed): exactly one")
    waste = wasted_by_encoder_logits(32000, 512, "float32")
    assert_in_every_edition(stored, f"{waste.wasted_params:,} unused parameters, {waste.wasted_bytes / 2**20:.1f} MiB")
    readiness = ready_parameters(build_seq2seq_model(encoder_keeps_logits=True), seq2seq_loss, seq2seq_batch())
    assert readiness.never_ready == ("encoder.to_logits.weight",)
    assert_in_every_edition(stored, f"{len(readiness.ready)} parameters became ready")
    assert_in_every_edition(stored, f"never ready: {list(readiness.never_ready)}")


def test_every_run_is_printed_as_it_happened(runs, stored):
    assert runs.names == [scenario.name for scenario in notebook_scenarios()]
    assert_in_every_edition(stored, f"{len(runs)} runs in one launch of 2 processes: {', '.join(runs.names)}")
    for name in ("encoder_keeps_logits", "encoder_keeps_logits_detail", "encoder_fixed",
                 "encoder_keeps_logits_find_unused", "skips_differ", "one_rank_skips_nothing",
                 "same_skips_on_every_rank", "skips_differ_static_graph", "skips_differ_find_unused"):
        assert_in_every_edition(stored, "\n".join(runs[name].lines()))


def test_the_article_failure_detail_and_fix(runs, stored):
    bug, detail = runs["encoder_keeps_logits"], runs["encoder_keeps_logits_detail"]
    assert bug.outcome == detail.outcome == "error" and bug.ranks_with("error") == [0, 1]
    assert {rank.step for rank in bug.ranks} == {2} and {rank.phase for rank in bug.ranks} == {"forward"}
    assert bug.unused == () and detail.unused == ("encoder.to_logits.weight",)
    assert_in_every_edition(stored, "parameters named in the DETAIL error: ['encoder.to_logits.weight']; "
                                    "named without DETAIL: []")
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
    assert_in_every_edition(stored, "Answer (computed): one rank waits for the other until the timeout")
    assert_in_every_edition(stored, f"what a real job would wait: {dist_constants.default_pg_timeout}")
    assert_in_every_edition(stored, f"collective timeout {hang.scenario.collective_timeout_s:g} s")
    for name in ("skips_differ", "one_rank_skips_nothing", "same_skips_on_every_rank"):
        assert_in_every_edition(stored, f"{name}: " + "; ".join(
            f"rank {rank} skipped {list(steps)}" for rank, steps in enumerate(runs[name].skipped)))


def test_one_rank_gradient_is_averaged_with_zeros(runs, stored):
    average = compare_gradient_average(runs["skips_differ_find_unused"])
    low, high = average.one_rank_ratio
    assert average.ranks_agree and low == high == 0.5 and average.max_error == 0.0
    assert average.every_rank_ratio == (1.0, 1.0)
    assert_in_every_edition(stored, f"{len(average.used_on_one_rank())} parameters used on one rank only: "
                                    f"|DDP gradient| / |that rank's gradient| from {low:.6f} to {high:.6f}")
    assert_in_every_edition(stored, "Answer (computed): half of it")


def test_audit_verdicts_follow_the_measurements(runs, stored):
    waste = wasted_by_encoder_logits(32000, 512, "float32")
    verdicts = [verdict_of(True), verdict_of(runs["encoder_keeps_logits"].outcome == "error",
                                             caveat=runs["encoder_keeps_logits_find_unused"].ok),
                verdict_of(waste.wasted_bytes > 0), verdict_of(runs["encoder_fixed"].ok)]
    for number, verdict in enumerate(verdicts, start=1):
        assert_in_every_edition(stored, f"{number}. [{verdict}]")
    library = compare_with_library()
    assert_in_every_edition(stored, f"5. [{verdict_of(library.has_fix and not library.unused)}] Use x-transformers")
    assert_in_every_edition(stored, f"xtlab's model at the same sizes: {library.xtlab_params:,} parameters")
    assert_in_every_edition(stored, f"{library.library_params:,} parameters, unused: {list(library.unused)}")
