"""Autoregressive sampling without a cache: greedy (temperature 0) or temperature sampling."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xtlab.model.checks import check_int, check_tensor


def generate_tokens(model: nn.Module, prompts: Tensor, seq_len: int, *, temperature: float = 0.0,
                    context: Tensor | None = None, context_mask: Tensor | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
    """Append ``seq_len`` tokens to ``prompts`` (b, n >= 1); return the new tokens (b, seq_len).

    The model sees at most its last ``max_seq_len`` tokens. Runs in eval mode, restoring the mode after.
    """
    check_tensor("prompts", prompts)
    if prompts.dim() != 2 or prompts.shape[1] < 1:
        raise ValueError(f"prompts must have shape (batch, n >= 1), but got {tuple(prompts.shape)}")
    check_int("seq_len", seq_len, minimum=1)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature must be a float >= 0 (0 = greedy), but got {temperature!r}")
    was_training = model.training
    model.eval()
    try:
        out = prompts
        for _ in range(seq_len):
            window = out[:, -model.max_seq_len:]
            logits = model(window, context=context, context_mask=context_mask)[:, -1]  # (b, vocab)
            if temperature == 0:
                token = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                token = torch.multinomial(probs.cpu(), 1, generator=generator).to(out.device)
            out = torch.cat((out, token), dim=1)
    finally:
        model.train(was_training)
    return out[:, prompts.shape[1]:]
