import os

import pytest
import safetensors.torch
import torch
import torch.nn as nn
from diagnostics_models import x_decoder, x_encoder_decoder, xtlab_decoder

from xtlab.diagnostics import checkpoints
from xtlab.diagnostics.checkpoints import load_checkpoint, save_checkpoint
from xtlab.diagnostics.ties import inspect_ties


class NaivelyTied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.token_emb = nn.Embedding(10, 4)
        self.to_logits = nn.Linear(4, 10, bias=False)
        self.to_logits.weight = self.token_emb.weight


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.state_dict().items()}


def assert_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())


def test_tied_model_round_trips_with_one_stored_tensor(tmp_path):
    source, target = NaivelyTied(), NaivelyTied()
    path = save_checkpoint(source, tmp_path / "tied.safetensors")
    assert set(safetensors.torch.load_file(path)) == {"token_emb.weight"}
    report = load_checkpoint(target, path)
    assert torch.equal(target.token_emb.weight, source.token_emb.weight)
    assert target.to_logits.weight is target.token_emb.weight
    assert report.tied_keys == (("token_emb.weight", "to_logits.weight"),) and report.untied_in_model == ()


def test_checkpoint_tie_into_an_untied_model_is_reported(tmp_path):
    class Untied(NaivelyTied):
        def __init__(self) -> None:
            super().__init__()
            self.to_logits.weight = nn.Parameter(torch.randn(10, 4))

    path = save_checkpoint(NaivelyTied(), tmp_path / "tied.safetensors")
    report = load_checkpoint(Untied(), path)
    assert report.untied_in_model == (("token_emb.weight", "to_logits.weight"),)


@pytest.mark.parametrize(
    "build", [x_decoder, lambda: x_encoder_decoder(tie_token_emb=True), lambda: xtlab_decoder(tie_embedding=True)]
)
def test_real_models_round_trip(tmp_path, build):
    source, target = build(), build()
    load_checkpoint(target, save_checkpoint(source, tmp_path / "model.safetensors"))
    assert_unchanged(target, snapshot(source))
    assert inspect_ties(target).tied == inspect_ties(source).tied


def test_a_failed_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = save_checkpoint(NaivelyTied(), tmp_path / "model.safetensors")
    before = path.read_bytes()

    def interrupted(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(NaivelyTied(), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


@pytest.mark.parametrize("damage", ["truncate", "corrupt_header"])
def test_damaged_file_is_refused_and_model_left_unchanged(tmp_path, damage):
    path = save_checkpoint(x_decoder(), tmp_path / "model.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:8] + b"\xff" * 32 + data[40:])
    model = x_decoder()
    before = snapshot(model)
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_checkpoint(model, path)
    assert_unchanged(model, before)


def test_mismatched_checkpoint_lists_missing_unexpected_and_shapes(tmp_path):
    path = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"weight": torch.zeros(3, 2), "extra": torch.zeros(1)}, path)
    model = nn.Linear(2, 2)
    before = snapshot(model)
    with pytest.raises(ValueError) as caught:
        load_checkpoint(model, path)
    message = str(caught.value)
    assert "missing keys: ['bias']" in message and "unexpected keys: ['extra']" in message
    assert "weight: checkpoint (3, 2) vs model (2, 2)" in message
    assert_unchanged(model, before)


def test_weights_only_pt_file_loads(tmp_path):
    source, target = NaivelyTied(), NaivelyTied()
    torch.save(source.state_dict(), tmp_path / "model.pt")
    load_checkpoint(target, tmp_path / "model.pt")
    assert_unchanged(target, snapshot(source))


def test_tied_keys_with_different_values_are_refused(tmp_path):
    state = {"token_emb.weight": torch.zeros(10, 4), "to_logits.weight": torch.ones(10, 4)}
    torch.save(state, tmp_path / "disagree.pt")
    model = NaivelyTied()
    before = snapshot(model)
    with pytest.raises(ValueError, match="different values for keys"):
        load_checkpoint(model, tmp_path / "disagree.pt")
    assert_unchanged(model, before)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_malicious_pickle_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"weight": RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="refused to load .*not a weights-only checkpoint"):
        load_checkpoint(nn.Linear(2, 2), tmp_path / "evil.pt")
    assert not (tmp_path / "pwned-by-pickle").exists()


def test_pickle_of_something_else_is_refused(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="holds a list, not a state_dict"):
        load_checkpoint(nn.Linear(2, 2), tmp_path / "list.pt")


@pytest.mark.parametrize(
    ("call", "error", "named"),
    [
        (lambda tmp: save_checkpoint(nn.Linear(1, 1), tmp / "model.ckpt"), ValueError, "model.ckpt"),
        (lambda tmp: save_checkpoint("model", tmp / "m.safetensors"), TypeError, "got str: 'model'"),
        (lambda tmp: load_checkpoint(nn.Linear(1, 1), 42), TypeError, "path must be a str or os.PathLike, but got int"),
        (lambda tmp: load_checkpoint(nn.Linear(1, 1), tmp / "absent.safetensors"), FileNotFoundError, "absent"),
        (lambda tmp: load_checkpoint(nn.Linear(1, 1), tmp / "weights.npz"), ValueError, "weights.npz"),
    ],
)
def test_bad_input_is_named(tmp_path, call, error, named):
    with pytest.raises(error, match=named):
        call(tmp_path)
