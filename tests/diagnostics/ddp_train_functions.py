"""Module-level training functions for the DDP runner tests (spawned ranks import them by name)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel


class TwoHeads(nn.Module):
    """A body and a head the forward pass uses, plus (optionally) a head it never uses."""

    def __init__(self, with_unused_head: bool) -> None:
        super().__init__()
        self.body = nn.Linear(4, 8)
        self.head = nn.Linear(8, 1)
        self.unused_head = nn.Linear(8, 3) if with_unused_head else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)))


def train_two_heads(rank: int, world_size: int, with_unused_head: bool, find_unused: bool) -> dict:
    torch.manual_seed(0)  # same initial weights on every rank
    model = DistributedDataParallel(TwoHeads(with_unused_head), find_unused_parameters=find_unused)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    data = torch.Generator().manual_seed(100 + rank)  # different data per rank: only the all-reduce syncs them
    for _ in range(3):
        x = torch.randn(8, 4, generator=data)
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
    return {name: parameter.detach().clone() for name, parameter in model.module.named_parameters()}


def fail_on_rank_one(rank: int, world_size: int, how: str) -> str:
    if rank == 1 and how == "raise":
        raise RuntimeError("rank one broke on purpose")
    if rank == 1 and how == "exit":
        os._exit(3)  # dies without a word, as a killed or crashed process would
    dist.barrier()  # rank 0 waits here for a rank that will never come
    return "unreachable"


def hang_on_rank_one(rank: int, world_size: int) -> int:
    if rank == 1:
        time.sleep(3600)
    return rank


def train_library_model(rank: int, world_size: int, library: str) -> float:
    """Two DDP steps on a real model whose forward leaves its output projection unused (the lab 05 bug):
    an x-transformers decoder read for embeddings only, or xtlab's XTransformer whose encoder keeps to_logits."""
    from tests.diagnostics.models import tokens, x_decoder

    torch.manual_seed(0)
    if library == "x_transformers":
        model = x_decoder(depth=1)
        batch = tokens()
        loss_fn = lambda ddp, batch: ddp(batch, return_embeddings=True).pow(2).mean()  # noqa: E731
    else:
        from xtlab.model import XTransformer

        model = XTransformer(
            dim=32, enc_num_tokens=20, enc_depth=1, enc_heads=2, enc_max_seq_len=8, dec_num_tokens=20,
            dec_depth=1, dec_heads=2, dec_max_seq_len=8, encoder_keeps_logits=True,
        )
        batch = (tokens() % 20, tokens(seed=1) % 20)
        loss_fn = lambda ddp, batch: ddp(*batch)  # noqa: E731
    ddp_model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.01)
    for _ in range(2):
        optimizer.zero_grad()
        loss = loss_fn(ddp_model, batch)
        loss.backward()
        optimizer.step()
    return float(loss)


def start_grandchild_then(rank: int, world_size: int, folder: str, how: str) -> int:
    """Start a long-sleeping child process, write its pid to ``folder/grandchild-<rank>.pid``, then end as ``how``
    says: ``"return"`` (success), ``"raise"`` / ``"exit"`` on rank 1 (failure; ``"exit"`` skips every finally),
    ``"hang"`` (until the timeout), ``"own_session"`` (the child leaves the rank's process group, then hang)."""
    child = subprocess.Popen([shutil.which("sleep") or "sleep", "600"], start_new_session=how == "own_session")
    (Path(folder) / f"grandchild-{rank}.pid").write_text(str(child.pid))
    if how == "return":
        return child.pid
    if rank == 1 and how == "raise":
        raise RuntimeError("rank one broke after starting a child")
    if rank == 1 and how == "exit":
        os._exit(3)
    if how in ("hang", "own_session"):
        time.sleep(3600)
    dist.barrier()
    return child.pid
