"""Three outcomes per row: the model holds, the model fails, or the check could not run, and then whose error it
was (the adapter's, with where and a hint) and why; an unguarded script is caught before any process starts."""

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.diagnostics import audit_models as m
from xtlab.diagnostics.model_audit import ADAPTER_ERROR, COULD_NOT_RUN, FAILS, ModelAdapter, Subject, audit_models

ROOT = Path(__file__).resolve().parents[2]


def test_an_adapter_that_raises_is_reported_as_the_adapters_error_with_where_and_a_hint():
    adapter = ModelAdapter("typo", m.nano_batch, m.typo_loss, m.nano_forward)
    card = audit_models({"typo": Subject(m.build_nano_gpt(), adapter)}, ddp=True)["typo"]
    assert {row.status for row in card.rows} == {COULD_NOT_RUN}
    assert {row.reason for row in card.rows} == {ADAPTER_ERROR}
    evidence = card.row("gradient_presence").evidence
    assert "IndexError" in evidence and "audit_models.py" in evidence and "in typo_loss" in evidence
    assert "not the model's" in evidence and "adapter.loss(model, adapter.batch(model, 0))" in evidence
    assert card.summary == "0 hold, 0 fail, 10 could not run (of 10 rows)"


def test_a_loss_reading_model_attributes_runs_locally_and_could_not_run_under_ddp():
    adapter = ModelAdapter("attribute loss", m.nano_batch, m.attribute_loss, m.nano_forward)
    card = audit_models({"nano": Subject(m.build_nano_gpt(), adapter, m.build_nano_gpt)}, steps=2)["nano"]
    assert card.row("unused_parameters").ran
    ddp = card.row("ddp_step")
    assert ddp.status == COULD_NOT_RUN and ddp.reason == ADAPTER_ERROR, ddp
    assert "vocab_size" in ddp.evidence and "in attribute_loss" in ddp.evidence
    assert "only call model(...)" in ddp.evidence


def test_a_model_that_raises_under_a_check_fails_it():
    card = audit_models({"raises": Subject(m.RaisesInTraining(), m.nano_adapter())}, ddp=False)["raises"]
    row = card.row("gradient_presence")
    assert row.status == FAILS
    assert "the model raised under this check: RuntimeError: the model's own bug" in row.evidence


def test_an_unguarded_script_is_refused_before_spawning_with_the_fix(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import xtlab
        from tests.diagnostics.audit_models import Head, head_adapter
        card = xtlab.audit(Head(tie=True), head_adapter(), steps=1)
        print("DDP:", card.row("ddp_step").outcome, "|", card.row("ddp_step").evidence)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "DDP: could not run: unguarded entry point" in done.stdout
    assert "unguarded.py again, and its line 6" in done.stdout and 'if __name__ == "__main__":' in done.stdout
    guarded = tmp_path / "guarded.py"
    guarded.write_text(script.read_text().replace("card = xtlab", "if __name__ == '__main__':\n    card = xtlab")
                       .replace("\nprint(", "\n    print("))
    done = subprocess.run([sys.executable, str(guarded)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert "DDP: holds" in done.stdout, done.stdout + done.stderr[-2000:]
