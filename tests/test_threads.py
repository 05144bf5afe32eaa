import pytest
import torch

from xtlab.threads import one_cpu_thread


def test_one_cpu_thread_sets_and_restores():
    before = torch.get_num_threads()
    with one_cpu_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_one_cpu_thread_restores_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), one_cpu_thread():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
