"""Lab 00 — start here: the map of the labs, the device, how panels, predictions and exercises work.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.tour.exercises import (
    EXERCISES,
    check_chance_every_block_runs,
)
from xtlab.labs.tour.panels import (
    all_blocks_probability,
    plot_all_blocks_probability,
    tour_panel,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
