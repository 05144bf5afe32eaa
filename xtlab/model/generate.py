"""Autoregressive sampling without a cache: greedy (temperature 0) or temperature sampling."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xtlab._checks import check_int, check_number, check_optional, check_type
from xtlab.model.token_ids import check_token_ids


def generate_tokens(model: nn.Module, prompts: Tensor, seq_len: int, *, temperature: float = 0.0,
                    context: Tensor | None = None, context_mask: Tensor | None = None,
                    generator: torch.Generator | None = None) -> Tensor:
    """Append ``seq_len`` tokens to ``prompts`` (b, n >= 1); return the new tokens (b, seq_len).

    The model sees at most its last ``max_seq_len`` tokens. Runs in eval mode, restoring the mode after.

    Args:
        model: a ``TransformerWrapper`` with logits. prompts: (b, n >= 1) token ids. seq_len: tokens to add (>= 1).
        temperature: 0 for greedy, else a finite number > 0 dividing the logits before sampling.
        context, context_mask: for a cross-attending decoder, passed to every forward call.
        generator: the ``torch.Generator`` sampling draws from (CPU), or None for the global one.
    """
    check_token_ids("prompts", prompts, model.num_tokens, model.token_emb.weight.device)
    if prompts.shape[1] < 1:
        raise ValueError(f"prompts must have shape (batch, n >= 1), but got {tuple(prompts.shape)}")
    check_int("seq_len", seq_len, minimum=1)
    check_number("temperature", temperature, minimum=0.0)  # nan and inf would reach multinomial as nan probabilities
    check_optional("generator", generator, check_type, torch.Generator, "a torch.Generator or None")
    if generator is not None and generator.device.type != "cpu":  # sampling draws on the CPU, for every device
        raise ValueError(f"generator must be a CPU torch.Generator, but got one on {generator.device}")
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
