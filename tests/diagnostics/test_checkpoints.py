import json
import os
import re

import pytest
import safetensors.torch
import torch
import torch.nn as nn
from safetensors import safe_open

from tests.diagnostics.models import x_decoder, x_encoder_decoder, xtlab_decoder
from xtlab.diagnostics import CheckpointError, checkpoints
from xtlab.diagnostics.checkpoint_records import (
    ARCHITECTURE_KEY,
    CHECKSUM_KEY,
    FORMAT_KEY,
    FORMAT_VERSION,
    content_checksum,
)
from xtlab.diagnostics.checkpoints import load_checkpoint, save_checkpoint
from xtlab.diagnostics.ties import inspect_ties
from xtlab.model import Decoder, Encoder, TransformerWrapper


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


@pytest.mark.parametrize("allow_unrecorded", [False, True])
def test_a_foreign_file_lists_every_difference_in_names_shapes_and_dtypes(tmp_path, allow_unrecorded):
    path = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"weight": torch.zeros(3, 2, dtype=torch.float64), "extra": torch.zeros(1)}, path)
    model = nn.Linear(2, 2)
    before = snapshot(model)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(model, path, allow_unrecorded=allow_unrecorded)
    message = str(caught.value)
    assert "missing in the file: bias (model (2,) float32)" in message
    assert "not in the model: extra (file (1,) float32)" in message
    assert "shape of weight: file (3, 2) vs model (2, 2)" in message
    assert "dtype of weight: file torch.float64 vs model torch.float32" in message
    assert_unchanged(model, before)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_file_without_records_loads_only_when_asked_and_says_what_is_not_checked(tmp_path, suffix):
    source, target = nn.Linear(2, 2), nn.Linear(2, 2)
    path = tmp_path / f"foreign{suffix}"
    if suffix == ".pt":
        torch.save(source.state_dict(), path)
    else:
        safetensors.torch.save_file(source.state_dict(), path)
    before = snapshot(target)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(target, path)
    message = str(caught.value)
    assert "carries no xtlab records" in message and "allow_unrecorded=True" in message
    assert "checksum" in message and "architecture" in message
    assert_unchanged(target, before)
    load_checkpoint(target, path, allow_unrecorded=True)
    assert_unchanged(target, snapshot(source))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_stripping_the_records_does_not_bypass_the_architecture_check(tmp_path, suffix):
    path = save_checkpoint(lm(Encoder), tmp_path / f"encoder{suffix}")
    if suffix == ".pt":
        content = torch.load(path, weights_only=True)
        del content[checkpoints.PT_RECORDS_KEY]
        torch.save(content, path)
    else:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
            aliases = handle.metadata()[checkpoints._ALIASES_KEY]
        safetensors.torch.save_file(tensors, path, metadata={checkpoints._ALIASES_KEY: aliases})
    with pytest.raises(CheckpointError, match="carries no xtlab records"):
        load_checkpoint(TransformerWrapper(20, 8, Decoder(16, 2, 2, attn_num_mem_kv=1)), path)


def test_a_pt_checkpoint_written_by_xtlab_carries_the_records(tmp_path):
    source, target = lm(), lm()
    path = save_checkpoint(source, tmp_path / "model.pt")
    content = torch.load(path, weights_only=True)
    assert checkpoints.PT_RECORDS_KEY in content
    load_checkpoint(target, path)
    assert_unchanged(target, snapshot(source))
    with pytest.raises(CheckpointError, match="Encoder"):
        load_checkpoint(TransformerWrapper(20, 8, Encoder(16, 2, 2, attn_num_mem_kv=1), tie_embedding=True), path)


def test_weights_only_pt_file_loads(tmp_path):
    source, target = NaivelyTied(), NaivelyTied()
    torch.save(source.state_dict(), tmp_path / "model.pt")
    load_checkpoint(target, tmp_path / "model.pt", allow_unrecorded=True)
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


# ---- records (architecture, checksum), dtypes, meta targets, paths ----


def lm(layers=Decoder, dtype=torch.float32):
    torch.manual_seed(0)
    return TransformerWrapper(20, 8, layers(16, 2, 2, attn_num_mem_kv=1), tie_embedding=layers is Decoder).to(dtype)


def test_the_file_records_its_architecture_and_checksum(tmp_path):
    path = save_checkpoint(lm(), tmp_path / "model.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata[FORMAT_KEY] == FORMAT_VERSION and len(metadata[CHECKSUM_KEY]) == 64
    record = json.loads(metadata[ARCHITECTURE_KEY])
    assert record["model"] == "TransformerWrapper" and record["modules"]["attn_layers"] == "Decoder"
    assert record["config"]["attn_layers.causal"] is True


def test_an_encoder_checkpoint_is_refused_by_a_decoder_listing_the_differences(tmp_path):
    path = save_checkpoint(lm(Encoder), tmp_path / "encoder.safetensors")
    model = TransformerWrapper(20, 8, Decoder(16, 2, 2, attn_num_mem_kv=1))
    before = snapshot(model)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(model, path)
    message = str(caught.value)
    assert str(path) in message and "attn_layers: checkpoint Encoder, model Decoder" in message
    assert "attn_layers.causal: checkpoint False, model True" in message
    assert_unchanged(model, before)
    load_checkpoint(model, path, check_architecture=False)  # the same keys and shapes: loads when asked to
    assert_unchanged(model, snapshot(lm(Encoder)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.int64, torch.complex64, torch.float16])
def test_another_dtype_is_refused_not_cast(tmp_path, dtype):
    path = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"weight": torch.ones(2, 2, dtype=dtype), "bias": torch.ones(2, dtype=dtype)}, path)
    model = nn.Linear(2, 2)
    before = snapshot(model)
    with pytest.raises(CheckpointError, match=f"dtype of weight: file {dtype} vs model torch.float32"):
        load_checkpoint(model, path)
    assert_unchanged(model, before)


def test_a_float64_model_refuses_its_float32_checkpoint(tmp_path):
    path = save_checkpoint(lm(), tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="file torch.float32 vs model torch.float64"):
        load_checkpoint(lm(dtype=torch.float64), path)


def test_a_meta_device_model_is_refused_instead_of_loading_nothing(tmp_path):
    path = save_checkpoint(lm(), tmp_path / "model.safetensors")
    with torch.device("meta"):
        model = TransformerWrapper(20, 8, Decoder(16, 2, 2, attn_num_mem_kv=1), tie_embedding=True)
    with pytest.raises(CheckpointError, match="meta device.*to_empty"):
        load_checkpoint(model, path)


def test_a_flipped_bit_in_the_data_is_refused_by_the_checksum(tmp_path):
    path = save_checkpoint(lm(), tmp_path / "model.safetensors")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # inside the last tensor's bytes: the header still parses
    path.write_bytes(bytes(data))
    model = lm()
    before = snapshot(model)
    with pytest.raises(CheckpointError, match="truncated or corrupted.*checksum does not match"):
        load_checkpoint(model, path)
    assert_unchanged(model, before)


def test_a_file_without_records_loads_with_the_opt_in(tmp_path):
    source = lm()
    path = save_checkpoint(source, tmp_path / "model.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        metadata = {checkpoints._ALIASES_KEY: handle.metadata()[checkpoints._ALIASES_KEY]}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    safetensors.torch.save_file(tensors, path, metadata=metadata)  # as written before the records existed
    target = TransformerWrapper(20, 8, Decoder(16, 2, 2, attn_num_mem_kv=1), tie_embedding=True)
    with pytest.raises(CheckpointError, match="carries no xtlab records"):
        load_checkpoint(target, path)
    load_checkpoint(target, path, allow_unrecorded=True)
    assert_unchanged(target, snapshot(source))


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({"xtlab.aliases": "[1, 2]"}, "alias record must map key names to key names"),
        ({"xtlab.aliases": '{"bias": 3}'}, "alias record"),
        ({"xtlab.aliases": '{"bias": "absent"}'}, "points at missing key 'absent'"),
        ({"xtlab.aliases": "{"}, "truncated or corrupted"),
        ({"xtlab.sha256": "00"}, "lacks ['xtlab.format', 'xtlab.architecture']"),
        ({"xtlab.format": "9", "xtlab.architecture": "{}", "xtlab.sha256": "00"}, "this xtlab reads format '2'"),
    ],
)
def test_crafted_metadata_is_one_clear_error(tmp_path, metadata, named):
    path = tmp_path / "crafted.safetensors"
    safetensors.torch.save_file({"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}, path, metadata=metadata)
    with pytest.raises(CheckpointError, match=re.escape(named)):
        load_checkpoint(nn.Linear(2, 2), path)


def test_a_malformed_architecture_record_with_a_valid_checksum_is_refused(tmp_path):
    tensors = {"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}
    metadata = {FORMAT_KEY: FORMAT_VERSION, ARCHITECTURE_KEY: '{"model": 3}'}
    metadata[CHECKSUM_KEY] = content_checksum(metadata, tensors)
    safetensors.torch.save_file(tensors, tmp_path / "crafted.safetensors", metadata=metadata)
    with pytest.raises(CheckpointError, match="architecture record is malformed"):
        load_checkpoint(nn.Linear(2, 2), tmp_path / "crafted.safetensors")


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({"weight": torch.zeros(2, 2).to_sparse(), "bias": torch.zeros(2)}, "sparse"),
        ({1: torch.zeros(2, 2), "bias": torch.zeros(2)}, "str keys, tensor values"),
        ({"weight": [0.0], "bias": torch.zeros(2)}, "'weight': list"),
        ({"weight": torch.zeros(2, 2, dtype=torch.int64), "bias": torch.zeros(2)}, "torch.int64"),
        ((torch.zeros(2, 2),), "holds a tuple"),
    ],
)
def test_crafted_pt_files_are_one_clear_error(tmp_path, content, named):
    torch.save(content, tmp_path / "crafted.pt")
    with pytest.raises(CheckpointError, match=re.escape(named)):
        load_checkpoint(nn.Linear(2, 2), tmp_path / "crafted.pt")


def test_a_damaged_pt_file_names_the_file_not_the_zip_reader(tmp_path):
    torch.save(nn.Linear(2, 2).state_dict(), tmp_path / "model.pt")
    data = (tmp_path / "model.pt").read_bytes()
    (tmp_path / "model.pt").write_bytes(data[: len(data) - 30])
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "model.pt"))):
        load_checkpoint(nn.Linear(2, 2), tmp_path / "model.pt")


def test_saving_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "store").mkdir()
    target = save_checkpoint(nn.Linear(2, 2), tmp_path / "store" / "v1.safetensors")
    link = tmp_path / "latest.safetensors"
    link.symlink_to(target)
    source = nn.Linear(2, 2)
    save_checkpoint(source, link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    loaded = nn.Linear(2, 2)
    load_checkpoint(loaded, target)
    assert_unchanged(loaded, snapshot(source))
    assert sorted(os.listdir(tmp_path / "store")) == ["v1.safetensors"]  # no temporary file left behind


def test_a_missing_folder_is_named_not_the_temporary_file(tmp_path):
    path = tmp_path / "absent" / "model.safetensors"
    with pytest.raises(FileNotFoundError) as caught:
        save_checkpoint(nn.Linear(2, 2), path)
    assert str(path) in str(caught.value) and ".partial" not in str(caught.value)


def test_an_os_error_while_saving_names_the_path_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_checkpoint(nn.Linear(2, 2), tmp_path / "model.safetensors")
    before = path.read_bytes()

    def disk_full(tensors, filename, metadata=None):
        raise OSError(28, "No space left on device", filename)

    monkeypatch.setattr(checkpoints, "save_file", disk_full)
    with pytest.raises(OSError) as caught:
        save_checkpoint(nn.Linear(2, 2), path)
    assert caught.value.errno == 28 and str(path) in str(caught.value) and ".partial" not in str(caught.value)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.safetensors"]
