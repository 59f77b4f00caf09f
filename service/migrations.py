"""Moving running onboardings to a new version of their playbook: which runs, what each would
change (the `playbook_preview` query), and the change itself (the `adopt_playbook` update,
refused by the run if it would now do something other than the preview said)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from temporalio.client import Client, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from service.errors import Invalid, NoWorker, Rejected
from service.onboardings import QUERY_TIMEOUT
from workflows.contract import ONBOARDING_WORKFLOW, Queries, Updates

if TYPE_CHECKING:
    from models.migration import MigrationPlan, PlaybookOffer


def running_query(where: str | None) -> str:
    query = f"WorkflowType = '{ONBOARDING_WORKFLOW}' AND ExecutionStatus = 'Running'"
    return f"{query} AND ({where})" if where and where.strip() else query


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
    client: Client, workflow_id: str, offer: PlaybookOffer, by: str, expect: str
) -> MigrationPlan:
    """Adopt `offer` as previewed (`expect`: the preview's digest). The update's id is the
    plan's, so a retried apply gets the first answer instead of migrating twice."""
    from models.migration import AdoptPlaybook, MigrationPlan

    update = AdoptPlaybook(**offer.model_dump(), by=by, expect=expect)
    handle = client.get_workflow_handle(workflow_id)
    try:
        return await handle.execute_update(
            Updates.ADOPT_PLAYBOOK,
            update,
            id=f"migrate-{offer.file.version()}-{expect}",
            result_type=MigrationPlan,
        )
    except WorkflowUpdateFailedError as error:
        raise Rejected(getattr(error.cause, "message", None) or str(error)) from None
