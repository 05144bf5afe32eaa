"""Lab 05 experiments on one process: train the encoder–decoder on a seq2seq task, find the encoder's unused
``to_logits`` and weigh what it wastes. The real multi-process DDP runs are in ``scenarios`` and ``launch``."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from xtlab._checks import check_int
from xtlab.data.seq2seq import make_seq2seq_batch, seq2seq_vocab_size, sequence_accuracy, token_accuracy
from xtlab.device import resolve_device
from xtlab.diagnostics.unused_parameters import UnusedParameter, find_unused_parameters
from xtlab.model import AttentionLayers, XTransformer
from xtlab.seeding import seed_everything
from xtlab.threads import one_cpu_thread
from xtlab.training import train

SEQ_LENGTH = 6  # digits per source row


def head_kwargs(dim: int, heads: int) -> dict[str, int]:
    """``enc_``/``dec_attn_dim_head = dim // heads`` when the library takes a head width: x-transformers' default
    head is 64 wide whatever ``dim``, which would make this tiny model's attention several times bigger."""
    if "attn_dim_head" in inspect.signature(AttentionLayers.__init__).parameters:
        return {"enc_attn_dim_head": max(dim // heads, 1), "dec_attn_dim_head": max(dim // heads, 1)}
    return {}


def build_seq2seq_model(*, encoder_keeps_logits: bool = False, dim: int = 32, depth: int = 1, heads: int = 2,
                        num_tokens: int | None = None, length: int = SEQ_LENGTH, dec_layer_dropout: float = 0.0,
                        seed: int = 0) -> XTransformer:
    """A small ``XTransformer`` for the digit tasks, built on the CPU from ``seed`` (same weights on every device).

    Args:
        encoder_keeps_logits: the bug — the encoder owns a ``to_logits`` its forward never uses.
        dim, depth, heads: width, layers per stack, attention heads. num_tokens: vocabulary (default digits + BOS).
        length: source length (the target is one longer: BOS first). dec_layer_dropout: decoder layer dropout.
    """
    seed_everything(seed)
    vocab = seq2seq_vocab_size() if num_tokens is None else num_tokens
    return XTransformer(dim=dim, enc_num_tokens=vocab, enc_depth=depth, enc_heads=heads, enc_max_seq_len=length,
                        dec_num_tokens=vocab, dec_depth=depth, dec_heads=heads, dec_max_seq_len=length + 1,
                        encoder_keeps_logits=encoder_keeps_logits, dec_layer_dropout=dec_layer_dropout,
                        **head_kwargs(dim, heads))


@dataclass(frozen=True)
class Seq2SeqRun:
    """A seq2seq training run.

    Attributes:
        task: ``"reverse"`` or ``"sort"``. losses: training loss per step.
        accuracy_before / accuracy_after: fraction of held-out rows decoded exactly right, before and after.
        token_accuracy_after: fraction of held-out digits right after training. held_out: number of held-out rows.
        example_src / example_pred: one held-out row and the model's answer after training.
    """

    task: str
    losses: list[float]
    accuracy_before: float
    accuracy_after: float
    token_accuracy_after: float
    held_out: int
    example_src: list[int]
    example_pred: list[int]


def _decode(model: XTransformer, src: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    return model.generate(src, start, src.shape[1]).cpu()


def train_seq2seq(task: str = "reverse", steps: int = 80, *, encoder_keeps_logits: bool = False,
                  batch_size: int = 32, held_out: int = 256, lr: float = 3e-3, seed: int = 0,
                  device: str | torch.device | None = None) -> Seq2SeqRun:
    """Train a small encoder–decoder on ``task`` and measure exact-match accuracy on held-out rows.

    Training rows come from generator ``seed + 1``, held-out rows from ``seed + 1000`` (a different stream).
    """
    with one_cpu_thread():
        return _train_seq2seq(task, steps, encoder_keeps_logits, batch_size, held_out, lr, seed, device)


def _train_seq2seq(task, steps, encoder_keeps_logits, batch_size, held_out, lr, seed, device) -> Seq2SeqRun:
    target = resolve_device(device)
    model = build_seq2seq_model(encoder_keeps_logits=encoder_keeps_logits, seed=seed).to(target)
    train_rows = torch.Generator().manual_seed(seed + 1)
    test = make_seq2seq_batch(task, held_out, SEQ_LENGTH, generator=torch.Generator().manual_seed(seed + 1000),
                              device=target)

    def batch_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        batch = make_seq2seq_batch(task, batch_size, SEQ_LENGTH, generator=train_rows)
        return batch.src, batch.tgt

    answer = test.answer.cpu()
    before = sequence_accuracy(_decode(model, test.src, test.start_tokens), answer)
    history = train(model, batch_fn, steps, lr=lr, loss_fn=seq2seq_loss)
    pred = _decode(model, test.src, test.start_tokens)
    return Seq2SeqRun(task, history.losses, before, sequence_accuracy(pred, answer), token_accuracy(pred, answer),
                      held_out, test.src[0].tolist(), pred[0].tolist())


def seq2seq_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The lab's :data:`xtlab.training.LossFn`: ``model(src, tgt)`` with ``src, tgt = batch``, the teacher-forced
    cross-entropy an ``XTransformer`` returns."""
    src, tgt = batch
    return model(src, tgt)


def seq2seq_batch(batch_size: int = 4, seed: int = 0,
                  device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(src, tgt)``: one reverse batch from generator ``seed``, the batch the finder and the readiness hooks use
    with :func:`seq2seq_loss`; ``device=None`` leaves it on the CPU, where :func:`build_seq2seq_model` builds."""
    check_int("seed", seed, minimum=0)
    batch = make_seq2seq_batch("reverse", batch_size, SEQ_LENGTH, generator=torch.Generator().manual_seed(seed),
                               device=device)
    return batch.src, batch.tgt


def autograd_graph_size(output: torch.Tensor) -> int:
    """The autograd nodes reachable from ``output``'s ``grad_fn`` (one ``AccumulateGrad`` per parameter used
    included): the graph DDP's reducer walks after every forward when ``find_unused_parameters=True``
    (``prepare_for_backward`` searches it for the parameters it cannot reach), and never walks without the flag."""
    seen, stack = set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return len(seen)


def encoder_unused_parameters(encoder_keeps_logits: bool, dim: int = 32) -> list[UnusedParameter]:
    """Run the unused-parameter finder on the lab's model, with or without the bug."""
    with one_cpu_thread():
        model = build_seq2seq_model(encoder_keeps_logits=encoder_keeps_logits, dim=dim)
        return find_unused_parameters(model, seq2seq_loss, seq2seq_batch())


_SHAPE_ONLY_INITS = {"normal_", "uniform_", "zero_", "zeros_", "ones_", "fill_", "trunc_normal_", "constant_",
                     "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "orthogonal_"}


class _SkipInit(TorchFunctionMode):
    """Skip random initialisation: on the meta device it would only cost time (torch compiles meta kernels)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in _SHAPE_ONLY_INITS:
            return args[0] if args else kwargs["tensor"]
        if func in (torch.randn, torch.rand):
            return torch.empty(*args, **kwargs)
        return func(*args, **kwargs)


def build_shape_only(vocab_size: int, dim: int, *, encoder_keeps_logits: bool = True) -> XTransformer:
    """The lab's ``XTransformer`` at any size on the meta device: real modules and shapes, no memory."""
    heads = 2 if dim % 2 == 0 else 1
    with torch.device("meta"), _SkipInit():
        return build_seq2seq_model(encoder_keeps_logits=encoder_keeps_logits, dim=dim, heads=heads,
                                   num_tokens=vocab_size)


@functools.lru_cache(maxsize=4)
def _unused_names(encoder_keeps_logits: bool) -> tuple[str, ...]:
    # which parameters are unused depends on the architecture, not on its size: find them once on a small model
    return tuple(p.name for p in encoder_unused_parameters(encoder_keeps_logits))


@dataclass(frozen=True)
class WasteReport:
    """What the unused parameters of a model of this size cost.

    Attributes:
        vocab_size, dim, dtype: the model's size and parameter dtype.
        unused_names: parameters the finder named. wasted_params / wasted_bytes: their elements and bytes.
        total_params: every parameter of the buggy model. components: (name, params, unused) per sub-module.
    """

    vocab_size: int
    dim: int
    dtype: str
    unused_names: tuple[str, ...]
    wasted_params: int
    wasted_bytes: int
    total_params: int
    components: tuple[tuple[str, int, bool], ...]

    @property
    def wasted_fraction(self) -> float:
        """Share of the model's parameters that are unused."""
        return self.wasted_params / self.total_params


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _component(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[1] != "attn_layers" else f"{parts[0]}.attn_layers"


@functools.lru_cache(maxsize=256)
def wasted_by_encoder_logits(vocab_size: int, dim: int, dtype: str = "float32", *,
                             encoder_keeps_logits: bool = True) -> WasteReport:
    """Parameters and bytes the unused parameters hold, counted on a real (meta) model of that size.

    The finder runs on a small real model of the same architecture; the named parameters are then counted on
    the model built at ``vocab_size`` x ``dim`` on the meta device (shapes without memory).

    Raises:
        ValueError: sizes < 2 or an unknown dtype name.
    """
    for name, value in (("vocab_size", vocab_size), ("dim", dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an int >= 2, but got {value!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, but got {dtype!r}")
    model = build_shape_only(vocab_size, dim, encoder_keeps_logits=encoder_keeps_logits).to(DTYPES[dtype])
    unused = set(_unused_names(encoder_keeps_logits))
    params = dict(model.named_parameters())
    components: dict[str, list] = {}
    for name, param in params.items():
        entry = components.setdefault(_component(name), [0, False])
        entry[0] += param.numel()
        entry[1] = entry[1] or name in unused
    wasted = [params[name] for name in sorted(unused)]
    return WasteReport(vocab_size, dim, dtype, tuple(sorted(unused)), sum(p.numel() for p in wasted),
                       sum(p.numel() * p.element_size() for p in wasted), sum(p.numel() for p in params.values()),
                       tuple((name, count, flag) for name, (count, flag) in components.items()))
