"""The one check every entry point that takes token ids shares: dtype, shape, device and range."""

from __future__ import annotations

import torch
from torch import Tensor

from xtlab._checks import check_device, check_dtype, check_tensor

# the dtypes nn.Embedding indexes with; int8/int16/uint8 would fail deep inside the embedding
TOKEN_DTYPES = (torch.int64, torch.int32)


def check_token_ids(name: str, x, num_tokens: int, device: torch.device) -> Tensor:
    """``x`` as (b, n) token ids of dtype int64/int32, on ``device``, each in ``[0, num_tokens)``.

    Args:
        name: the argument's name for messages. x: the value given. num_tokens: the vocabulary size.
        device: the model's device (a meta tensor holds no ids to check, so it is refused on a real model).

    The range check reads two numbers back from the device. Under ``torch.compile`` it is left out: reading a
    value back would split the compiled graph in two (and wait for the device) on every call; the embedding's
    own index check still refuses an id out of range there, with torch's message instead of this one.
    """
    check_tensor(name, x)
    check_dtype(name, x, TOKEN_DTYPES, " (integer token ids)")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (batch, seq_len), but got {tuple(x.shape)}")
    check_device(name, x, device)
    if x.numel() > 0 and x.device.type != "meta" and not torch.compiler.is_compiling():
        low, high = torch.aminmax(x)  # one pass, one device sync for both ends
        low, high = int(low), int(high)
        if low < 0 or high >= num_tokens:
            bad = low if low < 0 else high
            raise ValueError(f"token id {bad} is out of range: ids must be in [0, {num_tokens})")
    return x
