"""The DDP runs the Lab 05 notebook makes, in the order it makes them (one launch), and the scripted skips.

The layer-dropout runs use a decoder of depth 2: blocks 0-2 are layer 0's attn, cross and ff, blocks 3-5 layer 1's.
Their skips are scripted per rank (``skips[rank][step]``) so that each outcome shows on every machine; real layer
dropout draws them from each rank's own random stream, which exercise 3 uses.
"""

from __future__ import annotations

from xtlab.labs.encoder_decoder_ddp.scenarios import DDPScenario

LAYER_DROPOUT_DEPTH = 2
# at step 1 rank 0 skips layer 0's ff, rank 1 layer 1's cross-attention: both ranks skip, but not the same block.
# Every step skips something on every rank: with find_unused_parameters=True, a step without any unused parameter
# makes each rank print a performance warning (with a timestamp) to its stderr, which the notebook would show.
SKIPS_DIFFER = (((2,), (0,), (5,)), ((4,), (1,), (3,)))
# rank 0 runs every block at step 1, rank 1 skips one
ONE_RANK_SKIPS_NOTHING = (((), (), ()), ((4,), (), ()))
# the same block skipped on every rank
SAME_SKIPS = (((2,), (), ()), ((2,), (), ()))


def _dropout_run(name: str, skips, **settings) -> DDPScenario:
    return DDPScenario(name, depth=LAYER_DROPOUT_DEPTH, skips=skips, **settings)


def notebook_scenarios() -> tuple[DDPScenario, ...]:
    """Every run of the notebook's launch: the encoder's unused ``to_logits`` (default debug level, INFO, the
    ``find_unused_parameters`` escape hatch, the fix), then layer dropout under each DDP setting."""
    return (
        DDPScenario("encoder_keeps_logits", encoder_keeps_logits=True),
        DDPScenario("encoder_keeps_logits_info", encoder_keeps_logits=True, debug="INFO"),
        DDPScenario("encoder_keeps_logits_find_unused", encoder_keeps_logits=True, find_unused_parameters=True),
        DDPScenario("encoder_fixed", control_without_ddp=True),
        _dropout_run("skips_differ", SKIPS_DIFFER),
        _dropout_run("one_rank_skips_nothing", ONE_RANK_SKIPS_NOTHING),
        _dropout_run("same_skips_on_every_rank", SAME_SKIPS),
        _dropout_run("skips_differ_find_unused", SKIPS_DIFFER, find_unused_parameters=True, record_gradients=True),
        _dropout_run("skips_differ_static_graph", SKIPS_DIFFER, static_graph=True),
    )
