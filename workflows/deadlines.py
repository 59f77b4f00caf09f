"""Deadline arithmetic for the onboarding workflow: pure functions, no clock of their own."""

from __future__ import annotations

from datetime import datetime, timedelta

from models.journey import Stage, TaskStatus
from models.playbook import ReminderPolicy

# Who owns finishing each waiting stage (DESIGN.md §2): their people get its reminders.
STAGE_OWNER = {
    Stage.DEPART: "ae",
    Stage.KICKOFF: "csm",
    Stage.ADOPT: "customer",
    Stage.REVIEW: "csm",
}


def next_reminder(item: TaskStatus, policy: ReminderPolicy) -> datetime | None:
    """The next reminder time for an open step, or None when its reminders are used up.

    Times before the step became active or before its last reminder are skipped, so a moved
    deadline re-plans from where the reminders stood, and an outage never causes a burst.
    """
    if item.done_at is not None or item.active_from is None:
        return None
    after = max(item.active_from, item.last_reminded_at or item.active_from)
    return next((t for t in policy.schedule(item.due_at) if t > after), None)


def shift(item: TaskStatus, by: timedelta) -> None:
    """Move a step's clock (a resumed pause): due time and reminder position alike."""
    item.due_at += by
    if item.active_from is not None:
        item.active_from += by
    if item.last_reminded_at is not None:
        item.last_reminded_at += by
