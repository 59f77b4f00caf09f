"""What both workflows do with an engagement signal that the scorecard needs on record."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.records import RecordActivities
    from models.activities import SupportTicketRecord
    from models.journey import Engagement, EngagementKind
    from workflows.activity_options import run_activity

# The scorecard's records add activities (a support ticket's, and the onboarding row's after a
# resumed pause): runs from before replay without them.
SCORECARD_PATCH = "scorecard-v1"


async def record_support_ticket(account_id: str, signal: Engagement) -> None:
    """A support ticket goes into the database (tickets per new customer); other kinds of
    engagement only move the workflow's own state."""
    if signal.kind is not EngagementKind.SUPPORT_TICKET or not workflow.patched(SCORECARD_PATCH):
        return
    at = signal.at or workflow.now()
    await run_activity(
        RecordActivities.record_support_ticket,
        SupportTicketRecord(account_id=account_id, ticket=signal.value or at.isoformat(), at=at),
        summary=f"record support ticket {signal.value or ''}".strip(),
    )
