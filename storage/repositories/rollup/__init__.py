"""The roll-up of the index's counts per counter and local day (and local month): the same
tallies storage/stats.py counts from the answers, kept up to date in the transaction of every
change that moves a survey into or out of the index, so that a report over a period reads a
few hundred rows instead of every answer of the period (docs/reports.md, "The roll-up").

What is rolled up (the rule of storage/stats.py, one survey at a time): a survey completed
or partial that qualified (counted, or flagged as a repeat), counted on the local day of its
`started_at` in the zone of its unit's `rollup_units` row. `rollup_surveys` counts such
surveys in the index or held for review (not rejected ones); `rollup_tallies` sums the rated
answers (1–5, on an item with a factor) of those in the index. Each row exists twice: for its
local day (grain "day") and for its local month (grain "month", `day` the 1st), so that a
month, a quarter or a year reads month rows and a week or a range of days reads day rows.
`rollup_unit_surveys` and `rollup_unit_tallies` hold the month rows summed per unit (no
counter, channel or start method): the province view of whole months reads one row per unit,
month and criterion (`unit_tallies`, `unit_counts`). `_keys` names every table's key columns
in the order of its row keys, read from the model.

Writers never recompute a total: they take a survey's contribution out (`take_out`), change
the survey, and put its contribution back (`put_in`), each an INSERT … ON CONFLICT DO UPDATE
SET n = n + excluded.n on sorted keys, which two transactions may run at once on PostgreSQL
(each adds only its own surveys; rows are locked in the same order); the unit-month rows are
derived from the contribution's month rows and written with them. `rebuild_unit`
recomputes a unit from the raw rows; `compare_unit` tells what differs.

rows.py: the tables, their keys and a `Contribution`; write.py: `take_out` and `put_in`;
rebuild.py: `rebuild_unit` and `compare_unit`; read.py: what reports read.
"""

from storage.repositories.rollup.read import (
    RolledSurveys,
    RolledTally,
    channels_of,
    counts_of,
    rolled_surveys,
    rolled_tallies,
    rollup_covers,
    rollup_row_counts,
    rollup_zones,
    tallies_of,
    unit_counts,
    unit_tallies,
)
from storage.repositories.rollup.rebuild import (
    Difference,
    Span,
    compare_unit,
    months_span,
    rebuild_unit,
    rollup_zone,
)
from storage.repositories.rollup.rows import (
    ROLLUP_TABLES,
)
from storage.repositories.rollup.write import (
    put_in,
    take_out,
)

__all__ = [
    "ROLLUP_TABLES",
    "Difference",
    "RolledSurveys",
    "RolledTally",
    "Span",
    "channels_of",
    "compare_unit",
    "counts_of",
    "months_span",
    "put_in",
    "rebuild_unit",
    "rolled_surveys",
    "rolled_tallies",
    "rollup_covers",
    "rollup_row_counts",
    "rollup_zone",
    "rollup_zones",
    "take_out",
    "tallies_of",
    "unit_counts",
    "unit_tallies",
]
