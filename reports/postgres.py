"""The tallies computed by PostgreSQL: two queries, each grouped by cell (hash aggregates
over the cohort, no sorting), return the counts and, as arrays, the values behind the
medians. reports/rows.py says the same in Python, for the other databases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, cast, extract, func, or_, select
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlmodel import Session

from reports.cohort import ONBOARDING, TICKET, TRANSITION, Cohort
from reports.figures import TICKET_WINDOWS
from reports.tally import Cell, Tally

MICROSECONDS_A_DAY = 86_400_000_000.0


def tallies(session: Session, cohort: Cohort, dimensions: Sequence[str]) -> dict[Cell, Tally]:
    connection = session.connection()
    cells: defaultdict[Cell, Tally] = defaultdict(Tally)
    for row in connection.execute(_onboardings(cohort, dimensions)):
        tally = cells[tuple(str(row._mapping[name]) for name in dimensions)]
        tally.onboardings += row.onboardings
        tally.ttfv_days += row.ttfv_days or []
        tally.activated += row.activated
        tally.completed += row.completed
        tally.cancelled += row.cancelled
        tally.lapsed += row.lapsed
        tally.retention_due += row.retention_due
        tally.retained += row.retained
        for days in TICKET_WINDOWS:
            tally.matured[days] += row._mapping[f"matured_{days}"]
            tally.tickets[days] += row._mapping[f"tickets_{days}"]
        tally.now[row.stage] += row.onboardings
        # Completion and the stage they are in leave no transition row of their own.
        tally.reached[row.stage] += row.onboardings
    for row in connection.execute(_stays(cohort, dimensions)):
        tally = cells[tuple(str(row._mapping[name]) for name in dimensions)]
        # Reached: a stay in the stage, or in it now; those in it now with a stay counted once.
        tally.reached[row.stage] += row.stays - row.current
        tally.stage_days[row.stage] += row.days or []
    return cells


def _days(later: Any, earlier: Any) -> ColumnElement[float]:
    """Days between two timestamps as Python's `(later - earlier) / timedelta(days=1)` gives
    them: exact microseconds, then one floating-point division."""
    microseconds = cast(extract("epoch", later - earlier) * 1_000_000, DOUBLE_PRECISION[float]())
    return microseconds / MICROSECONDS_A_DAY


def _onboardings(cohort: Cohort, dimensions: Sequence[str]) -> Select[Any]:
    """Per cell and current stage: the counts of the figures, and the TTFV values."""
    o = ONBOARDING
    adopt = cohort.adopt_tasks().subquery()
    tickets = _tickets(cohort).subquery()
    ttfv = _days(o.c.first_value_at, o.c.contract_signed_at)
    retention_due = o.c.completed_at <= cohort.as_of - cohort.retention
    count = func.count
    return (
        select(
            *(o.c[name] for name in dimensions),
            o.c.stage,
            count().label("onboardings"),
            func.array_agg(ttfv).filter(ttfv.is_not(None)).label("ttfv_days"),
            count()
            .filter(
                # Every required Adopt task done; a playbook without any: first value reached.
                case(
                    (func.coalesce(adopt.c.required, 0) > 0, adopt.c.done == adopt.c.required),
                    else_=o.c.first_value_at.is_not(None),
                )
            )
            .label("activated"),
            count(o.c.completed_at).label("completed"),
            count(o.c.cancelled_at).label("cancelled"),
            count()
            .filter(
                or_(
                    o.c.lapsed_at.is_not(None),
                    and_(o.c.closed_at.is_(None), o.c.lapses_at < cohort.as_of),
                )
            )
            .label("lapsed"),
            count().filter(retention_due).label("retention_due"),
            count()
            .filter(
                retention_due,
                or_(
                    o.c.churned_at.is_(None),
                    o.c.churned_at - o.c.completed_at > cohort.retention,
                ),
            )
            .label("retained"),
            *(
                count().filter(o.c.started_at <= cohort.matured(days)).label(f"matured_{days}")
                for days in TICKET_WINDOWS
            ),
            *(
                func.coalesce(
                    func.sum(tickets.c[f"tickets_{days}"]).filter(
                        o.c.started_at <= cohort.matured(days)
                    ),
                    0,
                ).label(f"tickets_{days}")
                for days in TICKET_WINDOWS
            ),
        )
        .select_from(
            o.outerjoin(adopt, adopt.c.account_id == o.c.account_id).outerjoin(
                tickets, tickets.c.account_id == o.c.account_id
            )
        )
        .where(cohort.members())
        .group_by(*(o.c[name] for name in dimensions), o.c.stage)
    )


def _tickets(cohort: Cohort) -> Select[Any]:
    """Per member with any: the tickets opened in its first days, per window."""
    opened, started = TICKET.c.opened_at, ONBOARDING.c.started_at
    return (
        select(
            TICKET.c.account_id,
            *(
                func.count()
                .filter(opened >= started, opened - started < timedelta(days=days))
                .label(f"tickets_{days}")
                for days in TICKET_WINDOWS
            ),
        )
        .join_from(TICKET, ONBOARDING, ONBOARDING.c.account_id == TICKET.c.account_id)
        .where(cohort.members())
        .group_by(TICKET.c.account_id)
    )


def _stays(cohort: Cohort, dimensions: Sequence[str]) -> Select[Any]:
    """Per cell and stage: the stays in it, those of onboardings in it now, and the days
    spent in it over the stays that ended."""
    o, t = ONBOARDING, TRANSITION
    days = _days(t.c.exited_at, t.c.entered_at)
    return (
        select(
            *(o.c[name] for name in dimensions),
            t.c.stage,
            func.count().label("stays"),
            func.count().filter(t.c.stage == o.c.stage).label("current"),
            func.array_agg(days).filter(t.c.exited_at.is_not(None)).label("days"),
        )
        .join_from(t, o, o.c.account_id == t.c.account_id)
        .where(cohort.members())
        .group_by(*(o.c[name] for name in dimensions), t.c.stage)
    )
