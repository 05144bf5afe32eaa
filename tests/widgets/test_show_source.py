"""Show the mechanism: the real source lines, numbered as in the file, with marked lines."""

import inspect

import pytest

from xtlab.model import AttentionLayers
from xtlab.widgets import show_source


def test_shows_the_library_lines_with_file_and_line_numbers():
    source = show_source(AttentionLayers.draw_skips, emphasize=["torch.rand"])
    lines, first = inspect.getsourcelines(AttentionLayers.draw_skips)
    assert source.first_line == first and source.text == "".join(lines).rstrip("\n")
    assert source.path == "xtlab/model/attention_layers.py"
    marked = [n for n, line in enumerate(source.lines, start=first) if "torch.rand" in line]
    assert source.emphasized == tuple(marked) and marked
    text = repr(source)
    assert text.startswith("# AttentionLayers.draw_skips") and f">{marked[0]}" in text.replace(" ", "")


def test_html_view_is_highlighted():
    html = show_source(AttentionLayers.draw_skips)._repr_html_()
    assert "<pre" in html and "draw_skips" in html


def test_installed_packages_are_shown_from_their_package_folder():
    from x_transformers import TransformerWrapper

    assert show_source(TransformerWrapper.forward).path.startswith("x_transformers/")


@pytest.mark.parametrize(("obj", "emphasize"), [(42, ()), (len, ()), (AttentionLayers, "skip")])
def test_bad_input_is_refused(obj, emphasize):
    with pytest.raises(TypeError):
        show_source(obj, emphasize)
