"""Lab 05 exercises: an unused-parameter finder for any module and batch; fix the encoder–decoder so real DDP
trains it; choose the DDP settings for layer dropout. The last two are judged by real 2-process runs."""

from __future__ import annotations

from xtlab.course import ExerciseSet
from xtlab.labs.encoder_decoder_ddp.finder_exercise import FINDER_EXERCISE
from xtlab.labs.encoder_decoder_ddp.fix_exercise import FIX_EXERCISE
from xtlab.labs.encoder_decoder_ddp.settings_exercise import SETTINGS_EXERCISE

EXERCISES = ExerciseSet(FINDER_EXERCISE, FIX_EXERCISE, SETTINGS_EXERCISE)
