"""Damaged checkpoint files, generated from a seed: whatever the damage, loading raises exactly CheckpointError,
naming the file, and leaves the model unchanged (never a raw IndexError, KeyError, RuntimeError, ...)."""

import random

import pytest
import torch
import torch.nn as nn

from xtlab.diagnostics import CheckpointError
from xtlab.diagnostics.checkpoints import load_checkpoint, save_checkpoint
from xtlab.model import Decoder, TransformerWrapper

SEED = 20240601


def model() -> nn.Module:
    torch.manual_seed(0)
    return TransformerWrapper(20, 8, Decoder(8, 1, 2, attn_num_mem_kv=1), tie_embedding=True)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    """The bytes of a valid .safetensors and .pt checkpoint of ``model()``, and where the safetensors header ends."""
    folder = tmp_path_factory.mktemp("valid")
    safetensors_bytes = save_checkpoint(model(), folder / "model.safetensors").read_bytes()
    save_checkpoint(model(), folder / "model.pt")  # xtlab's .pt carries the records and checksum too
    header_end = 8 + int.from_bytes(safetensors_bytes[:8], "little")
    return {".safetensors": safetensors_bytes, ".pt": (folder / "model.pt").read_bytes(), "header_end": header_end}


def _cases() -> list[tuple[str, str, int]]:
    """(damage, suffix, case seed): 40 bit flips, 30 truncations, 30 files of random bytes."""
    rng = random.Random(SEED)
    cases = [("flip", ".safetensors", rng.randrange(2**32)) for _ in range(40)]
    cases += [("truncate", suffix, rng.randrange(2**32)) for suffix in (".safetensors", ".pt") for _ in range(15)]
    cases += [("random", suffix, rng.randrange(2**32)) for suffix in (".safetensors", ".pt") for _ in range(15)]
    return cases


def damaged(valid_files, damage: str, suffix: str, seed: int) -> bytes:
    rng = random.Random(seed)
    data = bytearray(valid_files[suffix])
    if damage == "flip":
        # half the flips land in the header (8-byte length + JSON), the rest anywhere, tensor data included
        end = valid_files["header_end"] if rng.random() < 0.5 else len(data)
        data[rng.randrange(end)] ^= 1 << rng.randrange(8)
        return bytes(data)
    if damage == "truncate":
        return bytes(data[: rng.randrange(len(data))])
    return rng.randbytes(rng.randrange(0, 4096))


@pytest.mark.parametrize(("damage", "suffix", "seed"), _cases())
def test_damaged_file_raises_exactly_checkpoint_error(tmp_path, valid_files, damage, suffix, seed):
    path = tmp_path / f"damaged{suffix}"
    path.write_bytes(damaged(valid_files, damage, suffix, seed))
    target = model()
    before = {key: value.clone() for key, value in target.state_dict().items()}
    with pytest.raises(Exception) as caught:
        load_checkpoint(target, path)
    assert type(caught.value) is CheckpointError, f"{type(caught.value).__name__}: {caught.value}"
    assert str(path) in str(caught.value)
    assert all(torch.equal(value, before[key]) for key, value in target.state_dict().items())


FLIPS_PER_FORMAT = 100


def flip_outcomes(valid_files, tmp_path, suffix: str, flips: int = FLIPS_PER_FORMAT, seed: int = SEED) -> dict:
    """Single-bit flips anywhere in an xtlab checkpoint: how many were refused, loaded the same values (a flip
    in bytes nothing reads: zip bookkeeping, header padding), or loaded changed values (silent damage)."""
    rng = random.Random(seed)
    reference = model().state_dict()
    outcomes = {"refused": 0, "loaded the same values": 0, "loaded changed values": 0}
    for attempt in range(flips):
        data = bytearray(valid_files[suffix])
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flipped-{attempt}{suffix}"
        path.write_bytes(bytes(data))
        target = model()
        with torch.no_grad():
            for value in target.state_dict().values():
                value.fill_(0.5)  # so a load that changed nothing is told from one that loaded the file
        try:
            load_checkpoint(target, path)
        except CheckpointError as err:
            assert str(path) in str(err)
            outcomes["refused"] += 1
            continue
        same = all(torch.equal(value, reference[key]) for key, value in target.state_dict().items())
        outcomes["loaded the same values" if same else "loaded changed values"] += 1
    return outcomes


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_no_bit_flip_in_an_xtlab_checkpoint_loads_changed_values(tmp_path, valid_files, suffix):
    outcomes = flip_outcomes(valid_files, tmp_path, suffix)
    print(f"{suffix}: {FLIPS_PER_FORMAT} single-bit flips: {outcomes}")
    assert outcomes["loaded changed values"] == 0, outcomes
    assert outcomes["refused"] >= FLIPS_PER_FORMAT * 0.8, outcomes  # nearly every byte is checked
