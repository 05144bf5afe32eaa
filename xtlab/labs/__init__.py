"""One package per lab: its experiments (pure functions), plots, panels and exercises.

A notebook imports one lab package (``from xtlab.labs import layer_dropout as lab``) and ``xtlab`` itself.
Arrows point one way: labs -> diagnostics -> model; nothing in xtlab imports a lab.
"""
