"""Widgets and plots: depends on xtlab.model and xtlab.diagnostics, never the other way round."""

from xtlab.viz.figures import show_figures_inline

show_figures_inline()  # in a notebook, a Figure returned by a cell is shown as an image
