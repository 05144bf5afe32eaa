import pytest
import torch

from xtlab.data.seq2seq import make_seq2seq_batch, seq2seq_vocab_size, sequence_accuracy, token_accuracy


def _batch(task="reverse", batch_size=4, length=6, num_digits=10, seed=0, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    return make_seq2seq_batch(task, batch_size, length, num_digits, generator=generator, **kwargs)


def test_vocab_size_counts_digits_and_bos():
    assert seq2seq_vocab_size() == 11
    assert seq2seq_vocab_size(5) == 6


def test_reverse_batch_layout():
    batch = _batch("reverse")
    assert batch.src.shape == (4, 6) and batch.tgt.shape == (4, 7)
    assert batch.src.dtype == batch.tgt.dtype == torch.long
    assert batch.bos_id == 10
    assert torch.all(batch.tgt[:, 0] == 10)
    assert torch.equal(batch.answer, batch.src.flip(1))
    assert torch.equal(batch.start_tokens, batch.tgt[:, :1])
    assert batch.src.max().item() < 10


def test_sort_batch_is_sorted_permutation():
    batch = _batch("sort", num_digits=5, length=8)
    assert torch.all(batch.answer[:, 1:] >= batch.answer[:, :-1])
    assert torch.equal(batch.answer.sort(dim=1).values, batch.src.sort(dim=1).values)
    assert torch.all(batch.tgt[:, 0] == 5)


def test_batches_are_reproducible_and_seed_dependent():
    assert torch.equal(_batch(seed=1).src, _batch(seed=1).src)
    assert not torch.equal(_batch(seed=1).src, _batch(seed=2).src)


def test_batch_moves_to_device():
    batch = _batch(device="cpu")
    assert batch.src.device.type == batch.tgt.device.type == "cpu"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(task="copy"), ValueError, "'copy'"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(length=-1), ValueError, "-1"),
        (dict(num_digits=1), ValueError, "num_digits"),
    ],
)
def test_make_batch_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        _batch(**kwargs)


def test_make_batch_rejects_non_generator():
    with pytest.raises(TypeError, match="generator"):
        make_seq2seq_batch("sort", 2, 3, generator=42)


def test_vocab_size_rejects_too_few_digits():
    with pytest.raises(ValueError, match="1"):
        seq2seq_vocab_size(1)


def test_accuracies():
    target = torch.tensor([[1, 2, 3], [4, 5, 6]])
    pred = torch.tensor([[1, 2, 3], [4, 0, 6]])
    assert sequence_accuracy(pred, target) == 0.5
    assert token_accuracy(pred, target) == pytest.approx(5 / 6)
    assert sequence_accuracy(target, target) == token_accuracy(target, target) == 1.0


def test_accuracies_reject_mismatched_or_bad_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 2\)"):
        token_accuracy(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        sequence_accuracy(torch.zeros(3), torch.zeros(3))
    with pytest.raises(TypeError, match="list"):
        sequence_accuracy([1], torch.zeros(1, 1))
