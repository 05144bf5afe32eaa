"""Lab 05 exercises, in the notebook's order: an unused-parameter finder for any module and batch; the core of DDP's
gradient averaging (a reducer, on 2 real gloo ranks); fix the encoder–decoder so real DDP trains it; load a
checkpoint saved before the fix; choose the DDP settings for layer dropout. The reducer, the fix and the settings
are judged by real 2-process runs; loading a checkpoint is judged on one process."""

from __future__ import annotations

from xtlab.course import ExerciseSet
from xtlab.labs.encoder_decoder_ddp.checkpoint_exercise import CHECKPOINT_EXERCISE
from xtlab.labs.encoder_decoder_ddp.finder_exercise import FINDER_EXERCISE
from xtlab.labs.encoder_decoder_ddp.fix_exercise import FIX_EXERCISE
from xtlab.labs.encoder_decoder_ddp.reducer_exercise import REDUCER_EXERCISE
from xtlab.labs.encoder_decoder_ddp.settings_exercise import SETTINGS_EXERCISE

EXERCISES = ExerciseSet(FINDER_EXERCISE, REDUCER_EXERCISE, FIX_EXERCISE, CHECKPOINT_EXERCISE, SETTINGS_EXERCISE)
