"""The cohort a scorecard is about, and the queries every database answers the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlmodel import SQLModel

from models import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from models.journey import Stage

# Core tables, not ORM classes: a year of onboardings is hundreds of thousands of rows.
ONBOARDING = SQLModel.metadata.tables["onboarding"]
TASK = SQLModel.metadata.tables["task"]
TICKET = SQLModel.metadata.tables["supportticket"]
TRANSITION = SQLModel.metadata.tables["stagetransition"]


@dataclass(frozen=True)
class Cohort:
    """Onboardings started in [start, end), judged at `as_of`."""

    start: datetime
    end: datetime
    as_of: datetime
    retention: timedelta

    def members(self) -> ColumnElement[bool]:
        """The condition on the onboarding table."""
        started = ONBOARDING.c.started_at
        return and_(started >= self.start, started < self.end)

    def matured(self, days: int) -> datetime:
        """Customers started by then are at least `days` old at `as_of`."""
        return self.as_of - timedelta(days=days)

    def adopt_tasks(self) -> Select[Any]:
        """Per member with any: its required Adopt tasks, and how many of them are done."""
        return (
            select(
                TASK.c.account_id,
                func.count().label("required"),
                func.count(TASK.c.done_at).label("done"),
            )
            .where(
                TASK.c.stage == Stage.ADOPT,
                TASK.c.required.is_(True),
                TASK.c.account_id.in_(select(ONBOARDING.c.account_id).where(self.members())),
            )
            .group_by(TASK.c.account_id)
        )
