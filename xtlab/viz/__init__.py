"""Widgets and plots: depends on xtlab.model and xtlab.diagnostics, never the other way round."""
