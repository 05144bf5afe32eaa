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


@pytest.mark.parametrize("name", ["mps", "xpu"])
def test_an_accelerator_that_is_absent_is_refused(name, monkeypatch):
    from xtlab import device as device_module

    monkeypatch.setitem(device_module._OTHER_ACCELERATORS, name, lambda: False)
    with pytest.raises(ValueError, match=f"asks for {name.upper()}, but it is not available here"):
        resolve_device(name)
    monkeypatch.setitem(device_module._OTHER_ACCELERATORS, name, lambda: True)
    assert resolve_device(name).type == name


def test_on_this_machine_mps_and_xpu_are_refused_unless_present():
    from xtlab import device as device_module

    for name, available in device_module._OTHER_ACCELERATORS.items():
        if not available():
            with pytest.raises(ValueError, match=name.upper()):
                resolve_device(name)


@pytest.mark.parametrize("name", ["meta", "hpu", "mtia"])
def test_other_device_types_are_refused_naming_what_xtlab_runs_on(name):
    with pytest.raises(ValueError, match=f"of type '{name}'; xtlab runs on 'cpu', 'cuda', 'mps' or 'xpu'"):
        resolve_device(name)


def test_a_cuda_index_this_machine_lacks_is_refused():
    with pytest.raises(ValueError, match="cuda:99"):
        resolve_device("cuda:99")


def test_the_largest_seeds_torch_takes_are_accepted_and_one_more_is_refused():
    seed_everything(2**64 - 1)
    with pytest.raises(ValueError, match=r"<= 2\*\*64 - 1 = 18446744073709551615 .* got 18446744073709551616"):
        seed_everything(2**64)
    with pytest.raises(ValueError, match="seed must be <= 2"):
        seed_everything(10**100)


@pytest.mark.parametrize(("bad", "err", "named"), [(-1, ValueError, "world_size must be >= 1, but got -1"),
                                                   (0, ValueError, "world_size must be >= 1, but got 0"),
                                                   ("x", TypeError, "world_size must be an int"),
                                                   (True, TypeError, "world_size must be an int")])
def test_default_backend_refuses_a_bad_world_size(bad, err, named):
    from xtlab.diagnostics.ddp_runner import default_backend

    with pytest.raises(err, match=named):
        default_backend(bad)
    assert default_backend(1) in ("gloo", "nccl")
