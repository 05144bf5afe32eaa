"""A lab package exports its names lazily (xtlab.labs.lazy_exports): each imported on first use, once."""

import subprocess
import sys

import pytest

from xtlab.labs import layer_dropout, weight_tying


@pytest.mark.parametrize("lab", [layer_dropout, weight_tying], ids=lambda lab: lab.__name__)
def test_every_exported_name_resolves_and_unknown_ones_are_refused(lab):
    assert "check" in lab.__all__ and set(lab.__all__) <= set(dir(lab))
    for name in lab.__all__:
        assert getattr(lab, name) is not None
    assert lab.check == lab.EXERCISES.check
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lab.nope  # noqa: B018


def test_one_name_imports_its_module_only():
    code = ("import sys\nfrom xtlab.labs import weight_tying as lab\nlab.ArticleTiedLinear\n"
            "print('xtlab.labs.weight_tying.sharing' in sys.modules, 'x_transformers' in sys.modules, "
            "'matplotlib' in sys.modules, 'ArticleTiedLinear' in vars(lab))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False", "False", "True"]
