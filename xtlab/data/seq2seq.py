"""Synthetic sequence-to-sequence tasks (reverse or sort a row of digits) for encoder-decoder labs.

Token ids: digits ``0 .. num_digits - 1``, then ``BOS = num_digits``, which starts every target.
Batches are drawn on the CPU with the caller's generator, so they match on every device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xtlab.device import resolve_device

SEQ2SEQ_TASKS = ("reverse", "sort")


def seq2seq_vocab_size(num_digits: int = 10) -> int:
    """Number of token ids a seq2seq model needs: the digits plus BOS."""
    _check_num_digits(num_digits)
    return num_digits + 1


def _check_num_digits(num_digits: int) -> None:
    if isinstance(num_digits, bool) or not isinstance(num_digits, int) or num_digits < 2:
        raise ValueError(f"num_digits must be an int >= 2, but got {num_digits!r}")


@dataclass(frozen=True)
class Seq2SeqBatch:
    """One batch of a seq2seq task.

    Attributes:
        src: (b, length) digit ids the encoder reads.
        tgt: (b, length + 1) ``[BOS, answer...]``, the decoder's teacher-forced sequence.
        bos_id: the BOS token id (``num_digits``).
        task: the task name.
    """

    src: torch.Tensor
    tgt: torch.Tensor
    bos_id: int
    task: str

    @property
    def answer(self) -> torch.Tensor:
        """(b, length) the expected output digits (``tgt`` without BOS)."""
        return self.tgt[:, 1:]

    @property
    def start_tokens(self) -> torch.Tensor:
        """(b, 1) the BOS column a decoder starts generating from."""
        return self.tgt[:, :1]


def make_seq2seq_batch(
    task: str,
    batch_size: int,
    length: int,
    num_digits: int = 10,
    *,
    generator: torch.Generator,
    device: str | torch.device | None = None,
) -> Seq2SeqBatch:
    """Draw random digit rows and their answers for ``task``.

    Args:
        task: ``"reverse"`` (answer is the row backwards) or ``"sort"`` (answer is the row in ascending order).
        batch_size: number of rows.
        length: digits per row.
        num_digits: digits are ``0 .. num_digits - 1``; BOS is ``num_digits``.
        generator: a CPU ``torch.Generator``.
        device: where to put the tensors; ``None`` leaves them on the CPU.

    Shape:
        src: (batch_size, length); tgt: (batch_size, length + 1).

    Raises:
        ValueError: unknown task, a size < 1, ``num_digits`` < 2 or a generator not on the CPU.
        TypeError: ``generator`` is not a ``torch.Generator``.
    """
    if task not in SEQ2SEQ_TASKS:
        raise ValueError(f"task must be one of {SEQ2SEQ_TASKS}, but got {task!r}")
    for name, value in (("batch_size", batch_size), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, but got {value!r}")
    _check_num_digits(num_digits)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, but got {type(generator).__name__}: {generator!r}")
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be on the CPU (so batches match on every device), not {generator.device}")
    src = torch.randint(0, num_digits, (batch_size, length), generator=generator)
    answer = src.flip(1) if task == "reverse" else src.sort(dim=1).values
    bos = torch.full((batch_size, 1), num_digits, dtype=torch.long)
    tgt = torch.cat([bos, answer], dim=1)  # (batch_size, length + 1)
    if device is not None:
        target = resolve_device(device)
        src, tgt = src.to(target), tgt.to(target)
    return Seq2SeqBatch(src=src, tgt=tgt, bos_id=num_digits, task=task)


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    for name, value in (("pred", pred), ("target", target)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, but got {type(value).__name__}")
    if pred.shape != target.shape:
        shapes = f"{tuple(pred.shape)} and {tuple(target.shape)}"
        raise ValueError(f"pred and target must have the same shape, but got {shapes}")
    if pred.dim() != 2 or pred.numel() == 0:
        raise ValueError(f"pred and target must be non-empty (batch, length) tensors, not shape {tuple(pred.shape)}")


def sequence_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows where every token of ``pred`` equals ``target``.

    Shape:
        pred, target: (b, length).
    """
    _check_pair(pred, target)
    return (pred == target).all(dim=1).float().mean().item()


def token_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of tokens of ``pred`` that equal ``target``.

    Shape:
        pred, target: (b, length).
    """
    _check_pair(pred, target)
    return (pred == target).float().mean().item()
