"""The onboarding scorecard: the KPIs customer-success leadership reads (time to first value,
activation, completion, retention, support tickets of new customers, the funnel), computed
over the database, never by asking workflows.

The cohort is every onboarding *started* in [start, end). Figures that need time to mature
(retention after N days, tickets in a customer's first 30/90 days) count only the customers
for whom that time has passed by `as_of`. The README (Scorecard) gives each definition.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row, and_
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from models.journey import JOURNEY, Stage
from models.tables import Onboarding, StageTransition, SupportTicket, Task
from reports.dimensions import DIMENSIONS

ONBOARDING = SQLModel.metadata.tables["onboarding"]

TICKET_WINDOWS = (30, 90)
DAY = timedelta(days=1)
# The funnel: every stage of the journey, then completion (cancelled and lapsed are off it).
FUNNEL = list(JOURNEY)


class TimeToFirstValue(BaseModel):
    """Contract signed → integration done, in days."""

    median_days: float | None
    p90_days: float | None
    count: int


class Rate(BaseModel):
    rate: float | None
    """`count / of`; None when `of` is 0 (nothing to judge yet)."""
    count: int
    of: int


class Completion(Rate):
    completed: int
    cancelled: int
    lapsed: int


class Tickets(BaseModel):
    days: int
    per_customer: float | None
    tickets: int
    customers: int


class StageFigures(BaseModel):
    now: int
    """In this stage now."""
    reached: int
    """Entered this stage at some point."""
    median_days: float | None
    """Median time spent in it, over those who left it."""


class Figures(BaseModel):
    onboardings: int
    time_to_first_value: TimeToFirstValue
    activation: Rate
    completion: Completion
    retention: Rate
    support_tickets: list[Tickets]
    funnel: dict[str, StageFigures]


class Distributions(BaseModel):
    """The cohort's raw values behind the medians, for the charts."""

    time_to_first_value_days: list[float]
    stage_days: dict[str, list[float]]


class Scorecard(BaseModel):
    start: datetime
    end: datetime
    as_of: datetime
    retention_days: int
    overall: Figures
    by: dict[str, dict[str, Figures]]
    distributions: Distributions


@dataclass
class _Customer:
    """One onboarding with what the figures need, loaded once."""

    row: Row[Any]
    """The onboarding table's columns."""
    adopt_required: int = 0
    adopt_done: int = 0
    tickets: list[datetime] = field(default_factory=list)
    stays: dict[str, tuple[datetime, datetime | None]] = field(default_factory=dict)


def build(
    session: Session,
    start: datetime,
    end: datetime,
    as_of: datetime,
    retention_days: int = 90,
    dimensions: Sequence[str] = DIMENSIONS,
) -> Scorecard:
    customers = _load(session, start, end)
    retention = timedelta(days=retention_days)
    by: dict[str, dict[str, Figures]] = {}
    for dimension in dimensions:
        groups: dict[str, list[_Customer]] = defaultdict(list)
        for customer in customers:
            groups[str(getattr(customer.row, dimension))].append(customer)
        by[dimension] = {
            value: _figures(groups[value], as_of, retention) for value in sorted(groups)
        }
    return Scorecard(
        start=start,
        end=end,
        as_of=as_of,
        retention_days=retention_days,
        overall=_figures(customers, as_of, retention),
        by=by,
        distributions=Distributions(
            time_to_first_value_days=ttfv_days(customers), stage_days=stage_days(customers)
        ),
    )


def ttfv_days(customers: Iterable[_Customer]) -> list[float]:
    return sorted(
        (c.row.first_value_at - c.row.contract_signed_at) / DAY
        for c in customers
        if c.row.first_value_at is not None and c.row.contract_signed_at is not None
    )


def stage_days(customers: Iterable[_Customer]) -> dict[str, list[float]]:
    """Time spent in each stage, over the stays that ended."""
    spent: dict[str, list[float]] = {str(stage): [] for stage in FUNNEL}
    for customer in customers:
        for stage, (entered, exited) in customer.stays.items():
            if exited is not None and stage in spent:
                spent[stage].append((exited - entered) / DAY)
    return spent


def _load(session: Session, start: datetime, end: datetime) -> list[_Customer]:
    in_cohort = and_(col(Onboarding.started_at) >= start, col(Onboarding.started_at) < end)
    # Plain rows, not ORM objects: a year of onboardings is tens of thousands of them.
    rows = session.execute(
        sa_select(ONBOARDING).where(in_cohort).order_by(col(Onboarding.started_at))
    ).all()
    customers = {row.account_id: _Customer(row=row) for row in rows}

    def of_cohort(query: Any, account_id: Any) -> Any:
        """`query` over a table with an `account_id`, narrowed to the cohort's accounts."""
        return query.join(Onboarding, col(Onboarding.account_id) == col(account_id)).where(
            in_cohort
        )

    tasks = session.exec(
        of_cohort(select(Task.account_id, Task.done_at), Task.account_id).where(
            Task.stage == Stage.ADOPT, col(Task.required).is_(True)
        )
    ).all()
    for account, done_at in tasks:
        customers[account].adopt_required += 1
        customers[account].adopt_done += done_at is not None
    tickets = session.exec(
        of_cohort(
            select(SupportTicket.account_id, SupportTicket.opened_at), SupportTicket.account_id
        )
    ).all()
    for account, opened_at in tickets:
        customers[account].tickets.append(opened_at)
    stays = session.exec(
        of_cohort(
            select(
                StageTransition.account_id,
                StageTransition.stage,
                StageTransition.entered_at,
                StageTransition.exited_at,
            ),
            StageTransition.account_id,
        )
    ).all()
    for account, stage, entered, exited in stays:
        customers[account].stays[stage] = (entered, exited)
    return list(customers.values())


def _figures(customers: list[_Customer], as_of: datetime, retention: timedelta) -> Figures:
    return Figures(
        onboardings=len(customers),
        time_to_first_value=_ttfv(customers),
        activation=_rate(sum(_activated(c) for c in customers), len(customers)),
        completion=_completion(customers, as_of),
        retention=_retention(customers, as_of, retention),
        support_tickets=[_tickets(customers, as_of, days) for days in TICKET_WINDOWS],
        funnel=_funnel(customers),
    )


def _rate(count: int, of: int) -> Rate:
    return Rate(rate=count / of if of else None, count=count, of=of)


def _ttfv(customers: list[_Customer]) -> TimeToFirstValue:
    days = ttfv_days(customers)
    return TimeToFirstValue(median_days=_median(days), p90_days=_p90(days), count=len(days))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _p90(values: list[float]) -> float | None:
    """The 90th percentile, interpolated between the closest ranks (as spreadsheets do)."""
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _activated(customer: _Customer) -> bool:
    """Every required Adopt task done; a playbook without any activates at first value."""
    if customer.adopt_required:
        return customer.adopt_done == customer.adopt_required
    return customer.row.first_value_at is not None


def _completion(customers: list[_Customer], as_of: datetime) -> Completion:
    completed = sum(c.row.completed_at is not None for c in customers)
    cancelled = sum(c.row.cancelled_at is not None for c in customers)
    lapsed = sum(_lapsed(c, as_of) for c in customers)
    judged = completed + cancelled + lapsed
    return Completion(
        rate=completed / judged if judged else None,
        count=completed,
        of=judged,
        completed=completed,
        cancelled=cancelled,
        lapsed=lapsed,
    )


def _lapsed(customer: _Customer, as_of: datetime) -> bool:
    """Closed as lapsed, or still open and overdue by more than the playbook allows a
    deadline to move."""
    row = customer.row
    if row.lapsed_at is not None:
        return True
    return row.closed_at is None and row.lapses_at is not None and row.lapses_at < as_of


def _retention(customers: list[_Customer], as_of: datetime, after: timedelta) -> Rate:
    eligible = [
        c.row
        for c in customers
        if c.row.completed_at is not None and c.row.completed_at + after <= as_of
    ]
    retained = sum(
        row.churned_at is None or row.churned_at > row.completed_at + after  # type: ignore[operator]
        for row in eligible
    )
    return _rate(retained, len(eligible))


def _tickets(customers: list[_Customer], as_of: datetime, days: int) -> Tickets:
    window = timedelta(days=days)
    matured = [c for c in customers if c.row.started_at + window <= as_of]
    count = sum(
        c.row.started_at <= opened < c.row.started_at + window
        for c in matured
        for opened in c.tickets
    )
    return Tickets(
        days=days,
        per_customer=count / len(matured) if matured else None,
        tickets=count,
        customers=len(matured),
    )


def _funnel(customers: list[_Customer]) -> dict[str, StageFigures]:
    spent = stage_days(customers)
    now = Counter(c.row.stage for c in customers)
    # Completion and the stage they are in leave no transition row of their own.
    reached = Counter(stage for c in customers for stage in {*c.stays, c.row.stage})
    return {
        str(stage): StageFigures(
            now=now[stage],
            reached=reached[stage],
            median_days=_median(spent.get(stage, [])),
        )
        for stage in [*FUNNEL, Stage.CANCELLED, Stage.LAPSED]
    }
