import hashlib
import time

import pytest
import torch

from xtlab.data.corpus import CORPUS_NUM_CHARS, CharTokenizer, corpus_text, get_batch, load_corpus

# Notebooks print numbers derived from this text; change it only on purpose (and re-run the notebooks).
EXPECTED_SHA256 = "ed86436c86e9352ed381aa9cab114fe072bcba1ad7253a63974c32127bc51742"


def test_corpus_text_is_pinned():
    text = corpus_text()
    assert len(text) == CORPUS_NUM_CHARS
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == EXPECTED_SHA256


def test_corpus_text_depends_on_seed_and_is_english_like():
    assert corpus_text(1) != corpus_text(0)
    assert corpus_text(0, 40) == corpus_text(0)[:40]
    words = corpus_text(0).split()
    assert "the" in words and len(set(words)) > 50


def test_corpus_generation_is_fast():
    start = time.perf_counter()
    corpus_text(7, 120_000)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("seed, num_chars", [(-1, 10), (0, 0)])
def test_corpus_text_rejects_bad_sizes(seed, num_chars):
    with pytest.raises(ValueError, match=str(min(seed, num_chars))):
        corpus_text(seed, num_chars)


def test_corpus_text_rejects_non_int_seed():
    with pytest.raises(TypeError, match="1.5"):
        corpus_text(1.5)
    with pytest.raises(TypeError, match="True"):
        corpus_text(True)


def test_tokenizer_round_trips_and_sorts_vocab():
    tokenizer = CharTokenizer("hello world")
    assert tokenizer.vocab_size == 8
    assert tokenizer.chars[0] == " "
    ids = tokenizer.encode("low")
    assert ids.dtype == torch.long
    assert tokenizer.decode(ids) == "low"
    assert tokenizer.decode([0, 1]) == " d"


def test_tokenizer_rejects_unknown_inputs():
    tokenizer = CharTokenizer("abc")
    with pytest.raises(ValueError, match="'z'"):
        tokenizer.encode("abz")
    with pytest.raises(ValueError, match="id 3"):
        tokenizer.decode([0, 3])
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        tokenizer.decode(torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="list"):
        tokenizer.encode(["a"])
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer("")


def test_load_corpus_splits_the_whole_text():
    corpus = load_corpus(val_fraction=0.1)
    assert corpus.train.numel() + corpus.val.numel() == CORPUS_NUM_CHARS
    assert corpus.val.numel() == CORPUS_NUM_CHARS // 10
    assert corpus.tokenizer.decode(torch.cat([corpus.train, corpus.val])) == corpus.text
    assert "vocab_size" in repr(corpus)


def test_load_corpus_returns_independent_tensors():
    first = load_corpus()
    first.train[:10] = 0
    assert not torch.equal(load_corpus().train[:10], first.train[:10])


@pytest.mark.parametrize("val_fraction", [0, 1, -0.2, 1.5, "0.1"])
def test_load_corpus_rejects_bad_val_fraction(val_fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        load_corpus(val_fraction=val_fraction)


def test_get_batch_shifts_targets_by_one():
    data = torch.arange(100)
    x, y = get_batch(data, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y, x + 1)
    assert torch.equal(x[:, 1:], x[:, :-1] + 1)


def test_get_batch_is_reproducible_and_reaches_the_last_token():
    data = torch.arange(10)
    first = get_batch(data, 64, 9, torch.Generator().manual_seed(3))
    second = get_batch(data, 64, 9, torch.Generator().manual_seed(3))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[1].max().item() == 9  # seq_len = len(data) - 1 leaves exactly one window


def test_get_batch_moves_to_device():
    x, y = get_batch(torch.arange(20), 2, 4, torch.Generator().manual_seed(0), device="cpu")
    assert x.device.type == y.device.type == "cpu"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(seq_len=10), ValueError, "seq_len=10"),
        (dict(seq_len=0), ValueError, "seq_len"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(data=torch.zeros(2, 5, dtype=torch.long)), ValueError, r"\(2, 5\)"),
        (dict(data=[1, 2, 3]), TypeError, "list"),
        (dict(generator=0), TypeError, "generator"),
    ],
)
def test_get_batch_rejects_bad_arguments(kwargs, error, match):
    args = dict(data=torch.arange(10), batch_size=2, seq_len=4, generator=torch.Generator())
    args.update(kwargs)
    with pytest.raises(error, match=match):
        get_batch(**args)
