"""Lab 00 — start here: the map of the labs, the device, how panels, predictions and exercises work.

The notebook imports this package as ``lab``; every name it uses is listed here."""

from xtlab.labs.tour.environment import (
    PACKAGES,
    WIDGETS_LIVE,
    WIDGETS_STATIC,
    WidgetCheck,
    package_versions,
    widget_check,
)
from xtlab.labs.tour.exercises import (
    EXERCISES,
    check_chance_every_block_runs,
)
from xtlab.labs.tour.model_map import (
    LAB_AREAS,
    SKIPPED_TYPES,
    SPECIAL_PARAMETERS,
    MapRow,
    course_model,
    lab_area_lines,
    model_map,
    plot_model_map,
)
from xtlab.labs.tour.panels import (
    all_blocks_probability,
    plot_all_blocks_probability,
    tour_panel,
)

check = EXERCISES.check  # lab.check(name, answer) -> PASS / NOT YET / TRY AGAIN
