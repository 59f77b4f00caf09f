"""The tallies computed in Python from the cohort's rows: for databases without
PostgreSQL's interval arithmetic (SQLite). Each figure follows its definition in the README
line by line; reports/postgres.py says the same in SQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlmodel import Session

from reports.cohort import ONBOARDING, TICKET, TRANSITION, Cohort
from reports.figures import TICKET_WINDOWS
from reports.tally import Cell, Tally

DAY = timedelta(days=1)
Stay = tuple[str, datetime, datetime | None]
"""A stage, when the onboarding entered it, when it left it (None: still in it)."""
_COLUMNS = (
    "account_id",
    "stage",
    "started_at",
    "contract_signed_at",
    "first_value_at",
    "completed_at",
    "cancelled_at",
    "lapsed_at",
    "closed_at",
    "lapses_at",
    "churned_at",
)


def tallies(session: Session, cohort: Cohort, dimensions: Sequence[str]) -> dict[Cell, Tally]:
    connection = session.connection()
    o = ONBOARDING
    members = connection.execute(
        select(*(o.c[name] for name in (*_COLUMNS, *dimensions))).where(cohort.members())
    ).all()
    adopt = {row.account_id: row for row in connection.execute(cohort.adopt_tasks())}
    tickets: defaultdict[str, list[datetime]] = defaultdict(list)
    for account, opened in connection.execute(
        select(TICKET.c.account_id, TICKET.c.opened_at)
        .join(o, o.c.account_id == TICKET.c.account_id)
        .where(cohort.members())
    ):
        tickets[account].append(opened)
    stays: defaultdict[str, list[Stay]] = defaultdict(list)
    t = TRANSITION
    for account, stage, entered, exited in connection.execute(
        select(t.c.account_id, t.c.stage, t.c.entered_at, t.c.exited_at)
        .join(o, o.c.account_id == t.c.account_id)
        .where(cohort.members())
    ):
        stays[account].append((stage, entered, exited))

    cells: defaultdict[Cell, Tally] = defaultdict(Tally)
    count = _Counter(cohort)
    for row in members:
        tally = cells[tuple(str(row._mapping[name]) for name in dimensions)]
        count.onboarding(tally, row, adopt.get(row.account_id))
        count.tickets(tally, row.started_at, tickets[row.account_id])
        count.stays(tally, row.stage, stays[row.account_id])
    return cells


class _Counter:
    """Adds one onboarding at a time to a tally, judged at the cohort's `as_of`."""

    def __init__(self, cohort: Cohort) -> None:
        self.as_of = cohort.as_of
        self.retention = cohort.retention
        self.matured = {days: cohort.matured(days) for days in TICKET_WINDOWS}

    def onboarding(self, tally: Tally, row: Row[Any], adopt: Row[Any] | None) -> None:
        tally.onboardings += 1
        if row.first_value_at is not None and row.contract_signed_at is not None:
            tally.ttfv_days.append((row.first_value_at - row.contract_signed_at) / DAY)
        # Every required Adopt task done; a playbook without any activates at first value.
        if adopt is not None and adopt.required:
            tally.activated += adopt.done == adopt.required
        else:
            tally.activated += row.first_value_at is not None
        tally.completed += row.completed_at is not None
        tally.cancelled += row.cancelled_at is not None
        # Closed as lapsed, or still open and overdue by more than the playbook allows a
        # deadline to move.
        tally.lapsed += row.lapsed_at is not None or (
            row.closed_at is None and row.lapses_at is not None and row.lapses_at < self.as_of
        )
        if row.completed_at is not None and row.completed_at + self.retention <= self.as_of:
            tally.retention_due += 1
            tally.retained += (
                row.churned_at is None or row.churned_at > row.completed_at + self.retention
            )
        tally.now[row.stage] += 1

    def tickets(self, tally: Tally, started: datetime, opened: list[datetime]) -> None:
        for days, matured in self.matured.items():
            if started <= matured:
                window_end = started + timedelta(days=days)
                tally.matured[days] += 1
                tally.tickets[days] += sum(started <= at < window_end for at in opened)

    def stays(self, tally: Tally, now: str, stays: list[Stay]) -> None:
        # Completion and the stage they are in leave no transition row of their own.
        for reached in {now, *(stage for stage, _, _ in stays)}:
            tally.reached[reached] += 1
        for stage, entered, exited in stays:
            if exited is not None:
                tally.stage_days[stage].append((exited - entered) / DAY)
