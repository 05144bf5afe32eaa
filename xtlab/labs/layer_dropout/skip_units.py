"""What layer dropout skips, measured: whole transformer layers (attention and feed-forward both) versus single
blocks, and whether a skipped block's sublayers are called at all in the forward pass."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xtlab.course import CallCounter
from xtlab.labs.layer_dropout.experiments import LayerDropoutRun, build_model, wilson_interval


@dataclass(frozen=True)
class WholeLayerSkips:
    """How often a whole layer (its attention block and its feed-forward block at the same step) was skipped.

    Attributes:
        layer_steps: (step, layer) cells. skipped: cells where both blocks of the layer were skipped.
        interval: 95% Wilson interval of the skipped share.
        expected: ``p ** 2``, the chance both independent blocks are skipped.
    """

    layer_steps: int
    skipped: int
    interval: tuple[float, float]
    expected: float

    @property
    def fraction(self) -> float:
        return self.skipped / self.layer_steps


def whole_layer_skips(run: LayerDropoutRun) -> WholeLayerSkips:
    """Count the (step, layer) cells of ``run`` where attention and feed-forward were both skipped."""
    if not isinstance(run, LayerDropoutRun):
        raise TypeError(f"run must be a LayerDropoutRun, but got {type(run).__name__}")
    labels = run.block_labels
    layers = [(labels[i], labels[i + 1]) for i in range(0, len(labels) - 1, 2)]
    skipped = sum(attn in step and ff in step for step in map(set, run.reported_skips) for attn, ff in layers)
    cells = len(layers) * run.steps
    return WholeLayerSkips(cells, skipped, wilson_interval(skipped, cells), run.effective_layer_dropout ** 2)


@dataclass(frozen=True)
class SkippedBlockCalls:
    """Training forward passes of the library's stack with every block's sublayers counted.

    Attributes:
        passes: forward passes run. skipped_blocks: (pass, block) cells the stack reported skipped.
        skipped_but_called: of those, cells where the block's norm or fn still ran (0 when bypassed).
        run_but_not_called: cells the stack ran whose fn was not called once (0 when it works).
    """

    passes: int
    skipped_blocks: int
    skipped_but_called: int
    run_but_not_called: int

    @property
    def bypassed(self) -> bool:
        return self.skipped_blocks > 0 and self.skipped_but_called == 0 and self.run_but_not_called == 0


def skipped_block_calls(layer_dropout: float = 0.1, depth: int = 4, passes: int = 50, seed: int = 0
                        ) -> SkippedBlockCalls:
    """Count, for every training forward pass of the lab's decoder, the calls of each block's norm and fn."""
    with torch.random.fork_rng(devices=[]):
        model = build_model(11, depth, layer_dropout, seed=seed).train()
        blocks = list(model.attn_layers.layers)
        tokens = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(seed))
        skipped = skipped_called = run_missing = 0
        for _ in range(passes):
            modules = {f"{i}.{part}": getattr(block, part) for i, block in enumerate(blocks) for part in ("norm", "fn")}
            with CallCounter(modules) as calls, torch.no_grad():
                model(tokens)
            reported = set(model.attn_layers.last_skipped)
            for i in range(len(blocks)):
                ran = calls.counts[f"{i}.norm"] + calls.counts[f"{i}.fn"]
                if i in reported:
                    skipped += 1
                    skipped_called += ran > 0
                else:
                    run_missing += calls.counts[f"{i}.fn"] == 0
    return SkippedBlockCalls(passes, skipped, skipped_called, run_missing)
