import functools

import pytest
import torch
from torch import nn

from xtlab.data import get_batch, load_corpus, make_seq2seq_batch, seq2seq_vocab_size
from xtlab.model import Decoder, TransformerWrapper, XTransformer
from xtlab.training import TrainHistory, evaluate_loss, lm_loss, train

VOCAB = 12


def _tiny_lm(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Embedding(VOCAB, 16), nn.Linear(16, VOCAB))


def _cycle_batches(step):
    # next token is always (token + 1) mod VOCAB: a bigram model learns this quickly
    generator = torch.Generator().manual_seed(step)
    x = torch.randint(0, VOCAB, (8, 10), generator=generator)
    return x, (x + 1) % VOCAB


def test_train_lowers_the_loss_and_records_every_step():
    model = _tiny_lm()
    before = evaluate_loss(model, _cycle_batches, batches=2)
    history = train(model, _cycle_batches, steps=40, lr=3e-2)
    assert isinstance(history, TrainHistory)
    assert len(history) == len(history.losses) == 40
    assert history.final_loss < history.losses[0] / 2
    assert evaluate_loss(model, _cycle_batches, batches=2) < before / 2


def test_train_is_deterministic():
    first = train(_tiny_lm(), _cycle_batches, steps=5).losses
    second = train(_tiny_lm(), _cycle_batches, steps=5).losses
    assert first == second


def test_callback_sees_gradients_before_the_optimizer_step():
    model = _tiny_lm()
    seen = []

    def callback(step, loss, module):
        weight = module[1].weight
        seen.append((step, loss, weight.detach().clone(), weight.grad.clone()))

    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    history = train(model, _cycle_batches, steps=3, optimizer=optimizer, callback=callback)
    assert [step for step, *_ in seen] == [0, 1, 2]
    assert [loss for _, loss, *_ in seen] == history.losses
    # SGD: the weights the next callback sees are this callback's weights minus lr * this callback's grads
    for (_, _, weight, grad), (_, _, next_weight, _) in zip(seen[:-1], seen[1:], strict=True):
        assert grad.abs().sum() > 0
        assert torch.allclose(next_weight, weight - 0.5 * grad)
    assert all(p.grad is None for p in model.parameters())  # zeroed after the last step


def test_custom_loss_fn_and_mode_restored():
    model = _tiny_lm().eval()
    calls = []

    def loss_fn(module, batch):
        calls.append(module.training)
        return lm_loss(module, batch) * 2

    train(model, _cycle_batches, steps=2, loss_fn=loss_fn)
    assert calls == [True, True]
    assert not model.training
    model.train()
    evaluate_loss(model, _cycle_batches, batches=1, loss_fn=loss_fn)
    assert calls[-1] is False and model.training


def test_evaluate_loss_does_not_track_gradients():
    model = _tiny_lm()
    evaluate_loss(model, _cycle_batches, batches=1, loss_fn=lambda m, batch: lm_loss(m, batch) + 0 * batch[0].sum())
    assert all(p.grad is None for p in model.parameters())
    assert evaluate_loss(model, _cycle_batches, 3) == pytest.approx(
        sum(lm_loss(model, _cycle_batches(i)).item() for i in range(3)) / 3
    )


def test_train_on_the_corpus_with_device_argument():
    corpus = load_corpus()
    generator = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Embedding(corpus.tokenizer.vocab_size, 16), nn.Linear(16, corpus.tokenizer.vocab_size))
    history = train(model, lambda step: get_batch(corpus.train, 8, 16, generator), steps=30, device="cpu")
    assert history.final_loss < history.losses[0]


def test_lm_loss_rejects_non_logits():
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        lm_loss(nn.Embedding(5, 3), (torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)))


@pytest.mark.parametrize("batch", [torch.zeros(2, 3, dtype=torch.long), (torch.zeros(2, 3, dtype=torch.long),), "xy"])
def test_lm_loss_rejects_a_batch_that_is_not_a_pair_of_tensors(batch):
    with pytest.raises(TypeError, match=r"lm_loss needs batch = \(x, y\), a pair of token-id tensors, but got"):
        lm_loss(_tiny_lm(), batch)


def test_a_whole_batch_reaches_the_loss_fn_on_the_model_device():
    seen = []

    def batch_fn(step):
        x, y = _cycle_batches(step)
        return {"tokens": x, "targets": [y], "step": step}

    def loss_fn(model, batch):
        seen.append(batch)
        return torch.tensor(1.0)  # a meta model computes no number

    model = _tiny_lm().to("meta")
    assert evaluate_loss(model, batch_fn, 2, loss_fn=loss_fn) == 1.0
    assert [batch["step"] for batch in seen] == [0, 1]
    assert all(batch["tokens"].is_meta and batch["targets"][0].is_meta for batch in seen)


def test_train_hands_the_loss_fn_the_batch_batch_fn_returned():
    seen = []

    def loss_fn(model, batch):
        seen.append(batch)
        return lm_loss(model, (batch["tokens"], batch["targets"][0]))

    def batch_fn(step):
        x, y = _cycle_batches(step)
        return {"tokens": x, "targets": [y]}

    history = train(_tiny_lm(), batch_fn, steps=2, loss_fn=loss_fn)
    assert len(history) == 2 and len(seen) == 2
    assert all(torch.equal(batch["tokens"], _cycle_batches(step)[0]) for step, batch in enumerate(seen))


def test_any_callable_of_model_and_batch_is_a_loss_fn():
    class Scaled:
        def __call__(self, model, batch):
            return 3 * lm_loss(model, batch)

    def star_args(*args):
        return lm_loss(*args)

    def with_default(model, batch, scale=2.0):
        return scale * lm_loss(model, batch)

    model = _tiny_lm()
    plain = evaluate_loss(model, _cycle_batches, 2)
    assert evaluate_loss(model, _cycle_batches, 2, loss_fn=Scaled()) == pytest.approx(3 * plain)
    assert evaluate_loss(model, _cycle_batches, 2, loss_fn=star_args) == pytest.approx(plain)
    assert evaluate_loss(model, _cycle_batches, 2, loss_fn=with_default) == pytest.approx(2 * plain)
    assert evaluate_loss(model, _cycle_batches, 2, loss_fn=functools.partial(with_default, scale=4.0)) == \
        pytest.approx(4 * plain)


@pytest.mark.parametrize(("loss_fn", "signature"), [
    (lambda model: model, "(model)"),
    (lambda model, x, y: lm_loss(model, (x, y)), "(model, x, y)"),
])
@pytest.mark.parametrize("entry", ["train", "evaluate_loss"])
def test_a_loss_fn_with_the_old_signature_is_refused_by_name(entry, loss_fn, signature):
    model = _tiny_lm()
    before = [p.detach().clone() for p in model.parameters()]
    run = (lambda: train(model, _cycle_batches, 1, loss_fn=loss_fn)) if entry == "train" else \
        (lambda: evaluate_loss(model, _cycle_batches, 1, loss_fn=loss_fn))
    with pytest.raises(TypeError) as caught:
        run()
    message = str(caught.value)
    assert "loss_fn must have the signature loss_fn(model, batch) -> scalar tensor" in message
    assert f"has the signature {signature}" in message
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(steps=0), ValueError, "steps.*0"),
        (dict(steps=2.5), ValueError, "2.5"),
        (dict(lr=0.0), ValueError, "lr.*0.0"),
        (dict(lr=-1), ValueError, "-1"),
        (dict(batch_fn="batches"), TypeError, "'batches'"),
        (dict(loss_fn=3), TypeError, r"loss_fn must be callable as loss_fn\(model, batch\).*3"),
        (dict(callback="print"), TypeError, "callback"),
        (dict(optimizer="adam"), TypeError, "str"),
        (dict(model="gpt"), TypeError, "str"),
    ],
)
def test_train_rejects_bad_arguments(kwargs, error, match):
    args = dict(model=_tiny_lm(), batch_fn=_cycle_batches, steps=1)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        train(**args)


def test_train_rejects_bad_batches_and_losses():
    with pytest.raises(TypeError, match=r"batch = \(x, y\).*Tensor"):
        train(_tiny_lm(), lambda step: torch.zeros(2, 3), steps=1)
    with pytest.raises(ValueError, match=r"scalar.*\(8, 10, 12\)"):
        train(_tiny_lm(), _cycle_batches, steps=1, loss_fn=lambda m, batch: m(batch[0]))
    with pytest.raises(TypeError, match=r"loss_fn must return a scalar tensor, but returned float"):
        train(_tiny_lm(), _cycle_batches, steps=1, loss_fn=lambda m, batch: 1.0)


def test_evaluate_loss_rejects_bad_batches():
    with pytest.raises(ValueError, match="batches.*0"):
        evaluate_loss(_tiny_lm(), _cycle_batches, batches=0)


def test_empty_history_has_no_final_loss():
    with pytest.raises(ValueError, match="empty"):
        _ = TrainHistory().final_loss


def test_train_an_xtlab_decoder_on_the_corpus():
    corpus = load_corpus()
    torch.manual_seed(0)
    model = TransformerWrapper(
        num_tokens=corpus.tokenizer.vocab_size, max_seq_len=16, attn_layers=Decoder(dim=32, depth=1, heads=2)
    )
    generator = torch.Generator().manual_seed(0)
    history = train(model, lambda step: get_batch(corpus.train, 8, 16, generator), steps=30, lr=1e-2)
    val_generator = torch.Generator().manual_seed(1)
    val_loss = evaluate_loss(model, lambda i: get_batch(corpus.val, 8, 16, val_generator), batches=2)
    assert sum(history.losses[-5:]) / 5 < history.losses[0] - 0.5
    assert val_loss < history.losses[0]


def test_train_an_xtlab_xtransformer_on_reverse_with_its_own_loss():
    torch.manual_seed(0)
    vocab = seq2seq_vocab_size()
    model = XTransformer(
        dim=32, enc_num_tokens=vocab, enc_depth=1, enc_heads=2, enc_max_seq_len=6,
        dec_num_tokens=vocab, dec_depth=1, dec_heads=2, dec_max_seq_len=7,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(0)

    def batch_fn(step):
        batch = make_seq2seq_batch("reverse", 16, 6, generator=generator)
        return batch.src, batch.tgt

    history = train(model, batch_fn, steps=100, lr=1e-2, loss_fn=lambda m, batch: m(*batch))
    assert history.final_loss < history.losses[0] / 2
