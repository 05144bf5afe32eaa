"""Lab 05 single-process experiments: seq2seq training, the unused encoder to_logits, the waste it costs."""

import pytest
import torch

from xtlab.labs.encoder_decoder_ddp.experiments import (
    build_seq2seq_model,
    build_shape_only,
    encoder_unused_parameters,
    seq2seq_batch,
    seq2seq_loss,
    train_seq2seq,
    wasted_by_encoder_logits,
)
from xtlab.labs.encoder_decoder_ddp.launch import first_sentence, parameters_named_in_error
from xtlab.labs.encoder_decoder_ddp.readiness import ready_parameters
from xtlab.labs.encoder_decoder_ddp.scenarios import parameter_checksum


@pytest.fixture(scope="module")
def reverse_run():
    return train_seq2seq("reverse", steps=80)


def test_notebook_claim_the_model_learns_reverse(reverse_run):
    # the notebook prints accuracy before/after with 2 decimals: 0.00 and 1.00
    assert f"{reverse_run.accuracy_before:.2f}" == "0.00"
    assert f"{reverse_run.accuracy_after:.2f}" == "1.00"
    assert reverse_run.example_pred == reverse_run.example_src[::-1]
    assert reverse_run.losses[-1] < reverse_run.losses[0] / 10


def test_notebook_claim_finder_names_exactly_the_encoder_to_logits():
    unused = encoder_unused_parameters(True)
    assert [(p.name, p.shape) for p in unused] == [("encoder.to_logits.weight", (11, 32))]
    assert encoder_unused_parameters(False) == []


def test_seq2seq_batch_is_seeded_and_seq2seq_loss_is_the_models_own_loss():
    src, tgt = seq2seq_batch()
    assert src.shape == (4, 6) and tgt.shape == (4, 7) and src.device.type == "cpu"
    assert all(torch.equal(a, b) for a, b in zip((src, tgt), seq2seq_batch(), strict=True))
    assert not torch.equal(src, seq2seq_batch(seed=1)[0])
    assert torch.equal(tgt[:, 1:], src.flip(1))  # reverse: the target (after BOS) is the source backwards
    model = build_seq2seq_model()
    torch.manual_seed(0)
    expected = model(src, tgt)
    torch.manual_seed(0)
    assert torch.equal(seq2seq_loss(model, (src, tgt)), expected)


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"seed": -1}, ValueError, "seed must be >= 0, but got -1"),
    ({"seed": "0"}, TypeError, "seed must be an int, but got str"),
    ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1, but got 0"),
])
def test_seq2seq_batch_rejects_bad_input(kwargs, error, words):
    with pytest.raises(error) as caught:
        seq2seq_batch(**kwargs)
    assert words in str(caught.value)


def test_notebook_claim_waste_at_vocab_32000_width_512():
    report = wasted_by_encoder_logits(32000, 512, "float32")
    assert report.unused_names == ("encoder.to_logits.weight",)
    assert report.wasted_params == 32000 * 512  # the formula only checks the model-based count
    assert report.wasted_bytes == 32000 * 512 * 4
    assert f"{report.wasted_fraction:.0%}" == "22%"
    assert sum(count for _, count, _ in report.components) == report.total_params


def test_waste_follows_dtype_and_the_fix():
    assert wasted_by_encoder_logits(1000, 64, "bfloat16").wasted_bytes == 1000 * 64 * 2
    fixed = wasted_by_encoder_logits(1000, 64, encoder_keeps_logits=False)
    assert fixed.wasted_params == 0 and fixed.unused_names == ()
    assert not any(unused for _, _, unused in fixed.components)


def test_shape_only_model_is_on_meta_and_matches_a_real_model():
    meta = build_shape_only(11, 32)
    real = build_seq2seq_model(encoder_keeps_logits=True)
    assert all(p.device.type == "meta" for p in meta.parameters())
    assert [(n, p.shape) for n, p in meta.named_parameters()] == [(n, p.shape) for n, p in real.named_parameters()]


@pytest.mark.parametrize("kwargs, bad", [
    ({"vocab_size": 1, "dim": 64}, "1"), ({"vocab_size": 1000, "dim": 0}, "0"),
    ({"vocab_size": 1000, "dim": True}, "True"), ({"vocab_size": 1000, "dim": 64, "dtype": "int8"}, "int8"),
])
def test_waste_rejects_bad_sizes(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        wasted_by_encoder_logits(**kwargs)


def test_same_seed_same_checksum_and_a_change_shows():
    a, b = build_seq2seq_model(), build_seq2seq_model()
    assert parameter_checksum(a) == parameter_checksum(b)
    with torch.no_grad():
        b.decoder.token_emb.weight[0, 0] += 1e-6
    assert parameter_checksum(a) != parameter_checksum(b)


TRACEBACK = """Traceback (most recent call last):
  File "x.py", line 3, in f
    raise ValueError("not this one")
RuntimeError: Expected to have finished reduction in the prior iteration before starting a new one. This error
indicates that your module has parameters that were not used in producing loss.
Parameters which did not receive grad for rank 1: b.weight, a.weight
Parameter indices which did not receive grad for rank 1: 3 4
"""


def test_first_sentence_keeps_type_and_first_sentence_only():
    assert first_sentence(TRACEBACK) == ("RuntimeError: Expected to have finished reduction in the prior iteration "
                                         "before starting a new one.")
    gloo = ("RuntimeError: [/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:78] Timed out "
            "waiting 2000ms for recv operation to complete")
    assert first_sentence(gloo) == "RuntimeError: Timed out waiting 2000ms for recv operation to complete"
    assert first_sentence("rank 1 did not finish within timeout_s=5 seconds\nmore") == (
        "rank 1 did not finish within timeout_s=5 seconds")
    assert first_sentence("") == ""


def test_parameters_named_in_error_are_sorted():
    assert parameters_named_in_error(TRACEBACK) == ("a.weight", "b.weight")
    assert parameters_named_in_error("RuntimeError: boom") == ()


def test_readiness_names_the_parameter_whose_hook_never_fires_and_restores_grads():
    model = build_seq2seq_model(encoder_keeps_logits=True)
    marker = torch.full_like(model.decoder.token_emb.weight, 7.0)
    model.decoder.token_emb.weight.grad = marker
    batch = torch.zeros(2, 6, dtype=torch.long), torch.zeros(2, 7, dtype=torch.long)
    readiness = ready_parameters(model, seq2seq_loss, batch)
    assert readiness.never_ready == ("encoder.to_logits.weight",)
    assert len(readiness.ready) == len(list(model.parameters())) - 1 and readiness.frozen == ()
    assert model.decoder.token_emb.weight.grad is marker  # put back
    model.encoder.to_logits.weight.requires_grad_(False)
    frozen = ready_parameters(model, seq2seq_loss, batch)
    assert frozen.never_ready == () and frozen.frozen == ("encoder.to_logits.weight",)


@pytest.mark.parametrize(("model", "loss_fn", "error", "words"), [
    ("not a model", lambda m, b: m, TypeError, "model must be a torch.nn.Module"),
    (torch.nn.Linear(2, 2), "not callable", TypeError, "loss_fn must be callable as loss_fn(model, batch)"),
    (torch.nn.Linear(2, 2), lambda m: m(torch.ones(1, 2)).sum(), TypeError,
     "loss_fn must have the signature loss_fn(model, batch) -> scalar tensor"),
    (torch.nn.Linear(2, 2), lambda m, b: 3.0, TypeError, "loss_fn must return a scalar tensor, but returned float"),
    (torch.nn.Linear(2, 2), lambda m, b: m(b), ValueError, "shape (1, 2)"),
])
def test_readiness_rejects_bad_input(model, loss_fn, error, words):
    with pytest.raises(error) as caught:
        ready_parameters(model, loss_fn, torch.ones(1, 2))
    assert words in str(caught.value)


def test_version_tuple_orders_releases_and_rejects_non_versions():
    from xtlab.labs.encoder_decoder_ddp.library_check import version_tuple

    assert version_tuple("2.31.10") > version_tuple("1.35.2") > version_tuple("1.35.1") > version_tuple("1.9")
    assert version_tuple("1.35.2rc1") == (1, 35, 2)
    with pytest.raises(ValueError, match="'dev'"):
        version_tuple("dev")
    with pytest.raises(TypeError, match="version"):
        version_tuple(1.35)


def test_library_model_at_the_same_sizes_has_no_unused_parameter():
    from xtlab.labs.encoder_decoder_ddp.library_check import compare_with_library

    library = compare_with_library()
    assert library.unused == () and library.encoder_to_logits == "NoneType" and library.has_fix
    assert library.library_params > 0 and library.xtlab_params > 0
