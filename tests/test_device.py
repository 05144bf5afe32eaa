import pytest
import torch

from xtlab.device import default_device, describe_device, resolve_device
from xtlab.seeding import seed_everything


def test_default_device_follows_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device().type == expected


def test_resolve_device_none_is_default():
    assert resolve_device(None) == default_device()


def test_resolve_device_accepts_strings_and_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_resolve_device_rejects_wrong_type():
    with pytest.raises(TypeError, match="42"):
        resolve_device(42)


def test_resolve_device_rejects_unknown_name():
    with pytest.raises(ValueError, match="toaster"):
        resolve_device("toaster")


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without a GPU")
def test_resolve_device_rejects_cuda_without_gpu():
    with pytest.raises(ValueError, match="cuda"):
        resolve_device("cuda")


def test_describe_device_names_the_type():
    assert describe_device("cpu").startswith("cpu (")


def test_seed_everything_reproduces_draws():
    seed_everything(3)
    a = torch.rand(4)
    seed_everything(3)
    assert torch.equal(a, torch.rand(4))


@pytest.mark.parametrize("bad, err", [(-1, ValueError), (1.5, TypeError), ("7", TypeError), (True, TypeError)])
def test_seed_everything_rejects_bad_seed(bad, err):
    with pytest.raises(err, match=str(bad) if bad != "7" else "'7'"):
        seed_everything(bad)
