"""Lab 06's last exercise: the hidden models' stated findings agree with the library's instruments, each hidden
model holds what its catalogued mistakes need (an exactly-zero gradient, equal but untied weights, a parameter used
only in training, a frozen part in eval mode, BatchNorm buffers, gradients already in .grad), and the reference
leaves every model as found without drawing from the global generators."""

import torch

from tests.labs.test_audit_notebook_claims import SOURCE
from xtlab.course import global_rng_watch
from xtlab.diagnostics.optimizer_groups import describe_parameters
from xtlab.diagnostics.ties import inspect_ties
from xtlab.labs import audit as lab
from xtlab.labs.audit.hidden_model_exercise import AsFound, _reference_gradients, _step, audit_unknown_reference
from xtlab.labs.audit.hidden_models import HIDDEN_MODELS, hidden_adapter


def _by_class():
    return {type(hidden.build(hidden.seed)).__name__: hidden for hidden in HIDDEN_MODELS}


def test_the_stated_findings_are_what_the_instruments_measure_and_the_reference_leaves_each_model_as_found():
    for hidden in HIDDEN_MODELS:
        model = hidden.build(hidden.seed)
        adapter = hidden_adapter(model)
        found = AsFound(model, adapter)
        with global_rng_watch() as drawn:
            findings = audit_unknown_reference(model, adapter)
        assert drawn == [] and found.problem(model, adapter) is None, hidden.setting
        assert {frozenset(group) for group in findings["tied"]} == {frozenset(group) for group in hidden.tied}
        assert findings["unused"] == list(hidden.unused)
        assert set(findings["no_decay"]) == set(hidden.no_decay)
        assert inspect_ties(model).tied == hidden.tied


def test_four_designs_and_what_each_catalogued_mistake_needs_is_there():
    hidden = _by_class()
    assert set(hidden) == {"GatedLM", "RoutedLM", "ConvLM", "CopiedHeadLM"}
    gated = hidden["GatedLM"]
    grads = _reference_gradients(gated)
    assert grads["blocks.0.ff.0.weight"] is not None and not grads["blocks.0.ff.0.weight"].any()  # used, exactly 0
    assert grads["blocks.0.gate"].abs().sum() > 0
    model = gated.build(gated.seed)
    torch.manual_seed(gated.seed)  # as the checker seeds before the learner's call
    with torch.random.fork_rng(devices=[]):
        with_layer_dropout = _step(model, hidden_adapter(model), layer_dropout_off=False)
    assert any(name.startswith("blocks.") for name in with_layer_dropout)  # the seed skips a block
    copied = hidden["CopiedHeadLM"].build(14)
    assert torch.equal(copied.head.weight, copied.embed.weight) and copied.head.weight is not copied.embed.weight
    assert all(p.grad is not None for p in copied.parameters()) and not copied.training
    routed = hidden["RoutedLM"].build(12)
    assert routed.training and not routed.frozen.training
    eval_step = _step(routed, hidden_adapter(routed), mode="eval")
    assert "router.w_noise" in eval_step and hidden["RoutedLM"].train_only == ("router.w_noise",)
    conv = hidden["ConvLM"].build(13)
    assert not conv.training and not hidden_adapter(conv).has_layer_dropout and "bn.running_mean" in dict(
        conv.named_buffers())
    assert "gamma" in {row.name.rsplit(".", 1)[-1] for row in describe_parameters(model)
                       if row.category == "norm gain"}


def test_the_notebook_never_shows_the_hidden_models():
    text = SOURCE.read_text()
    for name in ("GatedLM", "RoutedLM", "ConvLM", "CopiedHeadLM", "hidden_models", "HIDDEN_MODELS"):
        assert name not in text


def test_findings_on_the_notebook_model_match_its_report_card():
    tiny = lab.build_tiny_lm(seed=0, value_head=True)
    findings = lab.findings_on(None, tiny, lab.tiny_lm_adapter(tiny))
    assert findings.whose == "the reference"
    assert findings.tied == [["embed.weight", "head.weight"]]
    assert findings.unused == ["value_head.bias", "value_head.weight"]
    assert "embed.weight" in findings.no_decay and "head.weight" not in findings.no_decay
