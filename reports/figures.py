"""The scorecard's figures as they are printed, exported as JSON and drawn (README,
Scorecard, defines each one)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from models.journey import JOURNEY, Stage

TICKET_WINDOWS = (30, 90)
# The funnel: every stage of the journey, then completion (cancelled and lapsed are off it).
FUNNEL = list(JOURNEY)
FUNNEL_ROWS = [*FUNNEL, Stage.CANCELLED, Stage.LAPSED]
"""The funnel's rows: the journey, then the two ways off it (no time in stage for those)."""


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
