"""A small character-level corpus, generated from a built-in grammar so it needs no download.

The text is the same on every machine and Python version: it is drawn with ``random.Random(seed)``
using only ``random()``, whose sequence for a given int seed the ``random`` module documentation
guarantees will not change across Python versions (``choice``/``randrange`` carry no such promise).
Notebooks print numbers derived from it, so a test pins its sha256.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from xtlab.device import resolve_device

CORPUS_NUM_CHARS = 150_000

_NAMES = ("Anna", "Ben", "Clara", "David", "Ella", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Lena", "Max")
_DETERMINERS = ("the", "a", "one", "that", "every", "this")
_ADJECTIVES = (
    "small", "old", "quiet", "bright", "heavy", "green", "cold", "happy", "tired", "strange", "red", "gentle",
)  # fmt: skip
_NOUNS = (
    "cat", "dog", "bird", "river", "house", "garden", "teacher", "child", "boat", "tree", "letter", "window",
    "farmer", "lamp", "road", "stone", "baker", "horse", "bridge", "book",
)  # fmt: skip
_PLACES = ("the village", "the forest", "the market", "the hill", "the station", "the school", "the harbour")
_TRANSITIVE_VERBS = (
    "saw", "found", "carried", "painted", "followed", "watched", "opened", "helped", "moved", "liked", "built",
    "called",
)  # fmt: skip
_INTRANSITIVE_VERBS = ("slept", "waited", "laughed", "walked", "sang", "stopped", "ran", "smiled", "listened")
_ADVERBS = ("slowly", "quickly", "again", "today", "later", "quietly", "at night", "in the morning")
_PREPOSITIONS = ("near", "behind", "under", "beside", "across", "inside")
_CONNECTIVES = ("then", "after that", "so", "but", "and")
_SPEECH_VERBS = ("said", "asked", "whispered", "shouted")


def _pick(rng: random.Random, items: Sequence[str]) -> str:
    # int(random() * n) instead of rng.choice: only random()'s stream is guaranteed across Python versions
    return items[int(rng.random() * len(items))]


def _chance(rng: random.Random, probability: float) -> bool:
    return rng.random() < probability


def _noun_phrase(rng: random.Random) -> str:
    if _chance(rng, 0.2):
        return _pick(rng, _NAMES)
    words = [_pick(rng, _DETERMINERS)]
    if _chance(rng, 0.5):
        words.append(_pick(rng, _ADJECTIVES))
    words.append(_pick(rng, _NOUNS))
    if words[0] == "a" and words[1][0] in "aeiou":
        words[0] = "an"
    return " ".join(words)


def _clause(rng: random.Random) -> str:
    subject = _noun_phrase(rng)
    if _chance(rng, 0.6):
        words = [subject, _pick(rng, _TRANSITIVE_VERBS), _noun_phrase(rng)]
    else:
        words = [subject, _pick(rng, _INTRANSITIVE_VERBS)]
    if _chance(rng, 0.4):
        words += [_pick(rng, _PREPOSITIONS), _noun_phrase(rng)]
    elif _chance(rng, 0.3):
        words += ["in", _pick(rng, _PLACES)]
    if _chance(rng, 0.3):
        words.append(_pick(rng, _ADVERBS))
    return " ".join(words)


def _sentence(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.15:
        speaker = _pick(rng, _NAMES)
        text = f'"{_clause(rng)}," {speaker} {_pick(rng, _SPEECH_VERBS)}.'
    elif roll < 0.25:
        text = f"did {_noun_phrase(rng)} see {_noun_phrase(rng)}?"
    elif roll < 0.45:
        text = f"{_clause(rng)}, {_pick(rng, _CONNECTIVES)} {_clause(rng)}."
    else:
        text = f"{_clause(rng)}."
    # capitalise the first letter, skipping an opening quote
    first = 1 if text.startswith('"') else 0
    return text[:first] + text[first].upper() + text[first + 1 :]


def corpus_text(seed: int = 0, num_chars: int = CORPUS_NUM_CHARS) -> str:
    """Generate the English-like corpus: paragraphs of simple sentences, cut to ``num_chars`` characters.

    Args:
        seed: picks the text; the same seed gives the same text everywhere.
        num_chars: length of the text in characters.

    Raises:
        TypeError: ``seed`` or ``num_chars`` is not an int.
        ValueError: ``seed`` is negative or ``num_chars`` < 1.
    """
    for name, value in (("seed", seed), ("num_chars", num_chars)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, but got {type(value).__name__}: {value!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, but got {seed}")
    if num_chars < 1:
        raise ValueError(f"num_chars must be >= 1, but got {num_chars}")
    return _generate_text(seed, num_chars)


@functools.lru_cache(maxsize=8)
def _generate_text(seed: int, num_chars: int) -> str:
    rng = random.Random(seed)
    paragraphs: list[str] = []
    length = 0
    while length < num_chars:
        sentences = [_sentence(rng) for _ in range(3 + int(rng.random() * 5))]
        paragraph = " ".join(sentences) + "\n"
        paragraphs.append(paragraph)
        length += len(paragraph)
    return "".join(paragraphs)[:num_chars]


class CharTokenizer:
    """Maps each character of a text to an integer id (ids follow sorted character order).

    Args:
        text: the characters the tokenizer knows are exactly those in ``text``.
    """

    def __init__(self, text: str):
        if not isinstance(text, str) or not text:
            raise ValueError(f"text must be a non-empty str, but got {text!r:.60}")
        self.chars: tuple[str, ...] = tuple(sorted(set(text)))
        self._ids = {char: index for index, char in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters (the model's ``num_tokens``)."""
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Turn ``text`` into a 1-D LongTensor of ids.

        Raises:
            ValueError: ``text`` holds a character outside the vocabulary.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, but got {type(text).__name__}: {text!r:.60}")
        try:
            ids = [self._ids[char] for char in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the vocabulary of {self.vocab_size} chars") from err
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Turn a 1-D tensor or sequence of ids back into text.

        Raises:
            ValueError: an id is outside ``[0, vocab_size)`` or the tensor is not 1-D.
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode expects a 1-D tensor of ids, but got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        chars = []
        for index in ids:
            if not 0 <= index < self.vocab_size:
                raise ValueError(f"id {index} is outside the vocabulary [0, {self.vocab_size})")
            chars.append(self.chars[index])
        return "".join(chars)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


@dataclass(frozen=True)
class CharCorpus:
    """The corpus split for language modelling.

    Attributes:
        train: 1-D LongTensor of token ids (the first ``1 - val_fraction`` of the text).
        val: 1-D LongTensor of token ids (the rest).
        tokenizer: the ``CharTokenizer`` built from the whole text.
        text: the whole text.
    """

    train: torch.Tensor
    val: torch.Tensor
    tokenizer: CharTokenizer
    text: str

    def __repr__(self) -> str:
        return (
            f"CharCorpus(train={self.train.numel()} tokens, val={self.val.numel()} tokens, "
            f"vocab_size={self.tokenizer.vocab_size})"
        )


@functools.lru_cache(maxsize=8)
def _encoded(seed: int) -> tuple[torch.Tensor, CharTokenizer]:
    text = corpus_text(seed)
    tokenizer = CharTokenizer(text)
    return tokenizer.encode(text), tokenizer


def load_corpus(seed: int = 0, val_fraction: float = 0.1) -> CharCorpus:
    """Build the character corpus and split it into train and validation ids.

    Args:
        seed: which generated text (see ``corpus_text``).
        val_fraction: share of the text, taken from the end, kept for validation; in (0, 1).

    Raises:
        ValueError: ``val_fraction`` is not strictly between 0 and 1.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be a number strictly between 0 and 1, but got {val_fraction!r}")
    ids, tokenizer = _encoded(seed)
    split = int(round(len(ids) * (1 - val_fraction)))
    # clone so a caller editing its tensors cannot corrupt the cache
    return CharCorpus(train=ids[:split].clone(), val=ids[split:].clone(), tokenizer=tokenizer, text=corpus_text(seed))


def get_batch(
    data: torch.Tensor,
    batch_size: int,
    seq_len: int,
    generator: torch.Generator,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw random windows of ``data`` for next-token prediction.

    Start positions are drawn on the CPU with ``generator``, so the same generator state gives the
    same batch on any device.

    Args:
        data: 1-D LongTensor of token ids (e.g. ``corpus.train``).
        batch_size: number of windows.
        seq_len: tokens per window; ``data`` must hold at least ``seq_len + 1`` tokens.
        generator: a CPU ``torch.Generator`` (seed it with ``manual_seed``).
        device: where to put the batch; ``None`` keeps ``data``'s device.

    Shape:
        x, y: (batch_size, seq_len); ``y[:, i]`` is the token after ``x[:, i]``.

    Raises:
        TypeError: ``data`` is not a tensor or ``generator`` not a ``torch.Generator``.
        ValueError: a size is < 1, ``data`` is not 1-D, ``seq_len >= len(data)``, or the generator is not on CPU.
    """
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"data must be a 1-D torch.Tensor of token ids, but got {type(data).__name__}")
    if data.dim() != 1:
        raise ValueError(f"data must be 1-D, but got shape {tuple(data.shape)}")
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, but got {value!r}")
    if seq_len >= len(data):
        raise ValueError(f"seq_len={seq_len} must be < len(data)={len(data)} (each target needs one more token)")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, but got {type(generator).__name__}: {generator!r}")
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be on the CPU (so batches match on every device), not {generator.device}")
    starts = torch.randint(0, len(data) - seq_len, (batch_size,), generator=generator)
    offsets = torch.arange(seq_len + 1)
    windows = data[(starts[:, None] + offsets).to(data.device)]  # (batch_size, seq_len + 1)
    x, y = windows[:, :-1], windows[:, 1:]
    if device is not None:
        target = resolve_device(device)
        x, y = x.to(target), y.to(target)
    return x, y
