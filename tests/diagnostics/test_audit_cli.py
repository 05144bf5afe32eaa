"""``python -m xtlab.audit module:factory``: the card printed, the report written (Markdown or HTML, with each
row's evidence), and an exit status CI can use (0 every row holds, 1 a row fails, 2 a row could not run,
3 bad usage)."""

import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from tests.diagnostics import audit_models as m
from xtlab.audit import EXIT_COULD_NOT_RUN, EXIT_FAILS, EXIT_HOLDS, EXIT_USAGE, exit_status, main
from xtlab.diagnostics.model_audit import ReportCard, Row

ROOT = Path(__file__).resolve().parents[2]


def test_the_shell_entry_point_writes_an_html_report_and_exits_non_zero_on_a_failing_row(tmp_path):
    report = tmp_path / "card.html"
    done = subprocess.run([sys.executable, "-m", "xtlab.audit", "tests.diagnostics.audit_models:build_nano_gpt",
                           "--adapter", "tests.diagnostics.audit_models:nano_adapter", "--report", str(report),
                           "--steps", "2"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == EXIT_FAILS, done.stderr[-2000:]
    assert "Report card: NanoGPT" in done.stdout and "a 2-process DDP step trains" in done.stdout
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and "transformer.wte.weight (embedding)" in page
    assert "identical across ranks: True" in page  # the DDP row ran: the entry point is guarded


def test_a_markdown_report_has_one_table_row_per_check_with_its_evidence(tmp_path):
    report = tmp_path / "card.md"
    status = main(["tests.diagnostics.audit_models:build_min_gpt", "--report", str(report), "--no-ddp",
                   "--steps", "2", "--adapter", "tests.diagnostics.audit_models:min_adapter"])
    assert status == EXIT_FAILS  # minGPT's lambda: the deep copy is not independent
    text = report.read_text()
    assert text.count("\n| ") == 1 + 9 and "| **could not run: missing capability** |" in text
    assert "transformer.h.0.mlp.c_fc.weight" in text


def test_an_adapter_that_raises_exits_with_could_not_run(tmp_path):
    assert main(["tests.diagnostics.audit_models:build_nano_gpt", "--adapter",
                 "tests.diagnostics.test_audit_cli:typo_adapter", "--no-ddp", "--steps", "1"]) == EXIT_COULD_NOT_RUN


def typo_adapter(model):
    return m.ModelAdapter("typo", m.nano_batch, m.typo_loss)


def _card(*outcomes):
    rows = tuple(Row(f"r{i}", "c", status, "e", reason) for i, (status, reason) in enumerate(outcomes))
    return ReportCard("m", "k", 1, {}, rows)


def test_exit_status_counts_fails_first_then_rows_that_could_not_run():
    assert exit_status(_card(("holds", ""))) == EXIT_HOLDS
    assert exit_status(_card(("holds", ""), ("fails", ""), ("could not run", "adapter error"))) == EXIT_FAILS
    missing = _card(("holds", ""), ("could not run", "missing capability"))
    assert exit_status(missing) == EXIT_COULD_NOT_RUN and exit_status(missing, allow_missing=True) == EXIT_HOLDS
    assert exit_status(_card(("could not run", "adapter error")), allow_missing=True) == EXIT_COULD_NOT_RUN


@pytest.mark.parametrize(("argv", "words"), [
    (["no_colon"], "module:name"),
    (["no_such_module_xyz:f"], "cannot import"),
    (["tests.diagnostics.audit_models:missing"], "no attribute"),
    (["tests.diagnostics.audit_models:PER_LAYER_DROPOUT"], "callable"),
    (["tests.diagnostics.test_audit_cli:not_a_module"], "torch.nn.Module"),
    (["tests.diagnostics.audit_models:build_nano_gpt", "--report", "card.txt", "--no-ddp", "--steps", "1"], ".md"),
])
def test_bad_usage_is_named_and_exits_3(argv, words, capsys):
    assert main(argv) == EXIT_USAGE
    assert words in capsys.readouterr().err


def not_a_module():
    return nn.Linear  # the class, not a model
