"""Moving running onboardings to a new version of their playbook: which runs, what each would
change (the `playbook_preview` query), and the change itself (the `adopt_playbook` update,
refused by the run if it would now do something other than the preview said)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from service.errors import Conflict, Invalid, NoWorker, Rejected
from service.onboardings import QUERY_TIMEOUT
from workflows.contract import ONBOARDING_WORKFLOW, Queries, Updates

if TYPE_CHECKING:
    from models.migration import MigrationPlan, PlaybookOffer


def running_query(where: str | None) -> str:
    """Running onboardings, narrowed by `where` (Invalid if its brackets do not pair: it
    could otherwise reach past the running ones, `1=1) OR (1=1`)."""
    query = f"WorkflowType = '{ONBOARDING_WORKFLOW}' AND ExecutionStatus = 'Running'"
    if not (where and where.strip()):
        return query
    depth, quote = 0, ""
    for char in where:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char in "()":
            depth += 1 if char == "(" else -1
            if depth < 0:
                break
    if depth or quote:
        raise Invalid("--where: its brackets or quotes do not pair")
    return f"{query} AND ({where})"


async def running_onboardings(client: Client, where: str | None) -> AsyncIterator[str]:
    """The workflow ids of the running onboardings `where` (a visibility query, as the Web
    UI takes) lets through; Invalid naming what Temporal said of a query it refuses."""
    try:
        async for execution in client.list_workflows(running_query(where)):
            yield execution.id
    except RPCError as error:
        if error.status is RPCStatusCode.INVALID_ARGUMENT:
            raise Invalid(f"--where: Temporal cannot use it: {error.message}") from None
        raise


async def preview(client: Client, workflow_id: str, offer: PlaybookOffer) -> MigrationPlan:
    from models.migration import MigrationPlan

    handle = client.get_workflow_handle(workflow_id)
    try:
        return await handle.query(
            Queries.PLAYBOOK_PREVIEW, offer, result_type=MigrationPlan, rpc_timeout=QUERY_TIMEOUT
        )
    except WorkflowQueryFailedError as error:
        raise Rejected(str(error)) from None
    except RPCError as error:
        if error.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            raise NoWorker(f"no worker answered within {QUERY_TIMEOUT.seconds} s") from None
        raise


async def apply(
    client: Client, workflow_id: str, offer: PlaybookOffer, by: str, plan: MigrationPlan
) -> MigrationPlan:
    """Adopt `offer` as `plan` (its preview) says: the run refuses if it would now do
    something else. The update's id is the plan's, so a retried apply gets the first answer
    instead of migrating twice, and a later migration (a rollback, then forward again) is
    another update."""
    from models.migration import AdoptPlaybook, MigrationPlan

    update = AdoptPlaybook(**offer.model_dump(), by=by, expect=plan.digest)
    handle = client.get_workflow_handle(workflow_id)
    try:
        return await handle.execute_update(
            Updates.ADOPT_PLAYBOOK,
            update,
            id=f"migrate-{plan.number}-{plan.digest}",
            result_type=MigrationPlan,
        )
    except WorkflowUpdateFailedError as error:
        raise Rejected(getattr(error.cause, "message", None) or str(error)) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        raise NoWorker("no worker answered the update in time") from None
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise Conflict(f"{workflow_id} ended before it could be changed") from None
        raise
