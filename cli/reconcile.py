"""`reconcile`: close the onboarding rows whose run ended without saying so.

A run that is terminated (or fails, or times out) cannot record its own end: its row stays
open, counts against its CSM's capacity and, once overdue, as lapsed on the scorecard.
`starter.py doctor` finds such rows; this command closes each from Temporal's record of how
and when its run ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from cli.app import app, connect, db_session, out, run, when
from models.enums import CancelReason, Stage
from service.onboardings import is_not_found, status_name
from workflows.contract import ONBOARDING_WORKFLOW

if TYPE_CHECKING:
    from sqlmodel import Session

    from models.onboarding import OnboardingStatus


@dataclass
class Orphan:
    """An open row whose onboarding run has ended (or is gone from Temporal)."""

    account_id: str
    status: str
    closed_at: datetime | None
    final: OnboardingStatus | None = None
    """What a run that completed returned (its row missed the last record)."""


async def find_orphans(client: Client, session: Session) -> list[Orphan]:
    from sqlmodel import col, select

    from models.onboarding import OnboardingStatus
    from models.tables import Onboarding

    rows = session.exec(select(Onboarding).where(col(Onboarding.closed_at).is_(None))).all()
    if not rows:
        return []
    # One listing of the running ones; only the rest are looked up one by one.
    running = {
        execution.id
        async for execution in client.list_workflows(
            f"WorkflowType = '{ONBOARDING_WORKFLOW}' AND ExecutionStatus = 'Running'"
        )
    }
    orphans = []
    for row in rows:
        if row.workflow_id in running:
            continue
        handle = client.get_workflow_handle(row.workflow_id, result_type=OnboardingStatus)
        try:
            described = await handle.describe()
        except RPCError as error:
            if not is_not_found(error):
                raise
            orphans.append(Orphan(row.account_id, "not found", None))
            continue
        if described.status is WorkflowExecutionStatus.RUNNING:
            continue  # visibility had not caught up
        final = None
        if described.status is WorkflowExecutionStatus.COMPLETED:
            final = await handle.result()
        orphans.append(
            Orphan(row.account_id, status_name(described.status), described.close_time, final)
        )
    return orphans


def close(session: Session, orphan: Orphan, now: datetime) -> str:
    from sqlmodel import col, select

    from models.tables import Onboarding, StageTransition

    """Close the orphan's row as its run ended; what was done, in words."""
    row = session.get(Onboarding, orphan.account_id)
    assert row is not None
    at = orphan.closed_at or now
    row.closed_at = at
    final = orphan.final
    if final is not None and final.stage.ended:
        row.stage = final.stage
        if final.stage is Stage.COMPLETED:
            row.completed_at = at
        elif final.stage is Stage.LAPSED:
            row.lapsed_at = at
        elif final.cancellation is not None:
            row.cancelled_at = final.cancellation.at
            row.cancel_reason = final.cancellation.reason
            row.cancel_note = final.cancellation.note
        outcome = f"closed as {final.stage}"
    else:
        row.stage = Stage.CANCELLED
        row.cancelled_at = at
        row.cancel_reason = CancelReason.OTHER
        row.cancel_note = f"run {orphan.status} in Temporal; closed by starter.py reconcile"
        outcome = f"closed as cancelled (run {orphan.status} {when(orphan.closed_at)})"
    session.add(row)
    for stay in session.exec(
        select(StageTransition).where(
            StageTransition.account_id == orphan.account_id,
            col(StageTransition.exited_at).is_(None),
        )
    ):
        stay.exited_at = at  # the stage it was in ended with the run
        session.add(stay)
    session.commit()
    return outcome


@app.command()
def reconcile(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the rows it would close.")
    ] = False,
) -> None:
    """Close the rows of onboardings whose run ended without recording it (terminated,
    failed, timed out): their CSM's capacity is freed and the scorecard counts them."""

    async def go() -> None:
        client = await connect()
        with db_session() as session:
            orphans = await find_orphans(client, session)
            if not orphans:
                out.print("nothing to reconcile: every open onboarding has a running workflow")
                return
            now = datetime.now().astimezone()
            for orphan in orphans:
                if dry_run:
                    out.print(f"{orphan.account_id}: run {orphan.status}; would close it")
                else:
                    out.print(f"{orphan.account_id}: {close(session, orphan, now)}")

    run(go())
