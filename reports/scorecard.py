"""The onboarding scorecard: the KPIs customer-success leadership reads (time to first value,
activation, completion, retention, support tickets of new customers, the funnel), computed
over the database, never by asking workflows.

The cohort is every onboarding *started* in [start, end). Figures that need time to mature
(retention after N days, tickets in a customer's first 30/90 days) count only the customers
for whom that time has passed by `as_of`. The README (Scorecard) gives each definition.

The database tallies each cell (one combination of the breakdowns' values) once: PostgreSQL
in SQL (reports/postgres.py), any other database in Python from the rows (reports/rows.py).
The overall figures and each breakdown's add those tallies up (reports/tally.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session

from reports import postgres, rows
from reports.cohort import Cohort
from reports.dimensions import DIMENSIONS
from reports.figures import Figures, Scorecard
from reports.tally import Tally


def build(
    session: Session,
    start: datetime,
    end: datetime,
    as_of: datetime,
    retention_days: int = 90,
    dimensions: Sequence[str] = DIMENSIONS,
) -> Scorecard:
    cohort = Cohort(start=start, end=end, as_of=as_of, retention=timedelta(days=retention_days))
    source = postgres if session.connection().dialect.name == "postgresql" else rows
    cells = source.tallies(session, cohort, dimensions)
    overall = Tally.total(cells.values())
    by: dict[str, dict[str, Figures]] = {}
    for position, dimension in enumerate(dimensions):
        groups: defaultdict[str, list[Tally]] = defaultdict(list)
        for cell, tally in cells.items():
            groups[cell[position]].append(tally)
        by[dimension] = {value: Tally.total(groups[value]).figures() for value in sorted(groups)}
    return Scorecard(
        start=start,
        end=end,
        as_of=as_of,
        retention_days=retention_days,
        overall=overall.figures(),
        by=by,
        distributions=overall.distributions(),
    )
