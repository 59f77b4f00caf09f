"""A running onboarding: a person's action (a validated update), a system's facts (signals),
where it is (the status query), and the list of all of them (visibility)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from models.enums import RiskLevel, Stage
from service.errors import Conflict, NotFound, NoWorker, Rejected
from workflows.contract import (
    ONBOARDING_WORKFLOW,
    SA_CSM,
    SA_ESCALATED,
    SA_INCIDENTS,
    SA_NEXT_DEADLINE,
    SA_OVERDUE,
    SA_RISK,
    SA_STAGE,
    Queries,
    everboarding_id,
    onboarding_id,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

    from models.everboarding import EverboardingStatus
    from service.views import OnboardingLine, StatusReport

R = TypeVar("R")

# A query needs a worker to answer; say so instead of hanging.
QUERY_TIMEOUT = timedelta(seconds=10)


def is_not_found(error: RPCError) -> bool:
    return error.status == RPCStatusCode.NOT_FOUND


def status_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


async def existing_onboarding(client: Client, account: str) -> WorkflowHandle[Any, Any]:
    return (await _described(client, account))[0]


async def _described(
    client: Client, account: str
) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
    """The account's onboarding and how its run stands (one call); NotFound if none."""
    handle = client.get_workflow_handle(onboarding_id(account))
    try:
        return handle, await handle.describe()
    except RPCError as error:
        if is_not_found(error):
            raise NotFound(f"no onboarding for account {account}") from None
        raise


async def act(
    client: Client,
    account: str,
    update: str,
    arg: BaseModel,
    result: type[R],
    *,
    update_id: str | None = None,
) -> R:
    """Send a person's action; Rejected with the validator's reason when refused. The same
    `update_id` again (a retried request) gets the first call's answer: Temporal keeps an
    update's outcome by its id for as long as the run."""
    handle = await existing_onboarding(client, account)
    try:
        return await handle.execute_update(update, arg, id=update_id, result_type=result)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        raise Rejected(getattr(cause, "message", None) or str(error)) from None
    except RPCError as error:
        if is_not_found(error):
            raise Conflict(f"the onboarding of {account} has already ended") from None
        raise


async def status(client: Client, account: str) -> StatusReport:
    """The status query's answer, with the runs' states."""
    from models.onboarding import OnboardingStatus
    from service.views import StatusReport

    handle, description = await _described(client, account)
    try:
        onboarding = await handle.query(
            Queries.STATUS, result_type=OnboardingStatus, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as error:
        # The client's own deadline surfaces as CANCELLED, the server's as DEADLINE_EXCEEDED.
        if error.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED):
            raise NoWorker(f"no worker answered within {QUERY_TIMEOUT.seconds} s") from None
        raise
    return StatusReport(
        **onboarding.model_dump(),
        workflow_status=status_name(description.status),
        everboarding_status=await _run_status(client, onboarding.everboarding_workflow_id),
    )


async def everboarding(client: Client, account: str) -> EverboardingStatus | None:
    """The account's running everboarding's status query, or None (none runs)."""
    from models.everboarding import EverboardingStatus

    handle = client.get_workflow_handle(everboarding_id(account))
    try:
        if not await running(handle):
            return None
        return await handle.query(
            Queries.STATUS, result_type=EverboardingStatus, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as error:
        if is_not_found(error):
            return None
        raise


async def _run_status(client: Client, workflow_id: str | None) -> str | None:
    if workflow_id is None:
        return None
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as error:
        if is_not_found(error):
            return None
        raise
    return status_name(description.status)


@dataclass(frozen=True)
class Filters:
    stage: Stage | None = None
    risk: RiskLevel | None = None
    csm: str | None = None
    overdue: bool = False
    escalated: bool = False
    incidents: bool = False

    def query(self) -> str:
        """The visibility query (values quoted as JSON strings: a CSM id cannot inject)."""
        query = [f"WorkflowType = '{ONBOARDING_WORKFLOW}'"]
        for key, value in ((SA_STAGE, self.stage), (SA_RISK, self.risk), (SA_CSM, self.csm)):
            if value is not None:
                query.append(f"{key.name} = {json.dumps(str(value))}")
        flags = ((SA_OVERDUE, self.overdue), (SA_ESCALATED, self.escalated))
        query += [f"{key.name} = true" for key, on in flags if on]
        if self.incidents:
            query.append(f"{SA_INCIDENTS.name} > 0")
        return " AND ".join(query)


async def list_onboardings(client: Client, filters: Filters) -> list[OnboardingLine]:
    """Every onboarding the filters let through, newest first."""
    from service.views import OnboardingLine

    lines = []
    async for execution in client.list_workflows(filters.query()):
        # From visibility only (the search attributes the workflow keeps current): works
        # with no worker running and costs one call per page, not one per onboarding.
        found = execution.typed_search_attributes
        risk = found.get(SA_RISK)  # set by the workflow, not by the starter
        stage = found.get(SA_STAGE) or "-"
        lines.append(
            OnboardingLine(
                account_id=execution.id.removeprefix(onboarding_id("")),
                workflow_status=status_name(execution.status),
                stage=stage if risk else f"{stage} (no worker yet)",
                csm_id=found.get(SA_CSM),
                next_deadline=found.get(SA_NEXT_DEADLINE),
                started_at=execution.start_time,
                risk=risk,
                escalated=bool(found.get(SA_ESCALATED)),
                incidents=found.get(SA_INCIDENTS) or 0,
            )
        )
    return lines


async def running(handle: WorkflowHandle[Any, Any]) -> bool:
    return (await handle.describe()).status is WorkflowExecutionStatus.RUNNING


async def running_everboarding(client: Client, account: str) -> WorkflowHandle[Any, Any]:
    """The account's everboarding, if it runs; else NotFound or Conflict saying why not."""
    handle = client.get_workflow_handle(everboarding_id(account))
    try:
        if await running(handle):
            return handle
    except RPCError as error:
        if not is_not_found(error):
            raise
    try:
        onboarding = await client.get_workflow_handle(onboarding_id(account)).describe()
    except RPCError as error:
        if is_not_found(error):
            raise NotFound(f"no onboarding for account {account}") from None
        raise
    if onboarding.status is WorkflowExecutionStatus.RUNNING:
        raise Conflict(
            f"{account} is still onboarding (no everboarding yet); "
            "use `starter.py cancel` to end an onboarding"
        )
    raise Conflict(f"{account} has no running everboarding")


async def signal_all(
    client: Client,
    account: str,
    signals: list[tuple[str, BaseModel]],
    *,
    lives_on: set[str],
    request_ids: list[str] | None = None,
) -> list[str]:
    """Send the signals in order to the account's onboarding; once it has ended, those named
    in `lives_on` go to its everboarding, and any other makes the whole list a Conflict
    before anything is sent. Answers where each went ("onboarding" or "everboarding").

    With `request_ids` (one a signal), Temporal takes each signal once per run: a list sent
    again after a failure part-way delivers only what had not arrived."""
    handle, description = await _described(client, account)
    targets: list[WorkflowHandle[Any, Any]] = []
    if description.status is WorkflowExecutionStatus.RUNNING:
        targets = [handle] * len(signals)
    else:
        ended = [name for name, _ in signals if name not in lives_on]
        if ended:
            raise Conflict(
                f"the onboarding of {account} has already ended; {', '.join(ended)} "
                "no longer applies (nothing was sent)"
            )
        everboarding = await running_everboarding(client, account)
        targets = [everboarding] * len(signals)
    ids: list[str | None] = list(request_ids) if request_ids else [None] * len(signals)
    for (name, arg), target, request_id in zip(signals, targets, ids, strict=True):
        try:
            if request_id is None:
                await target.signal(name, arg)
            else:
                await _signal_once(client, target.id, name, arg, request_id)
        except RPCError as error:
            if is_not_found(error):  # it ended since we looked
                raise Conflict(f"the {target.id} run has just ended; {name} was not sent") from None
            raise
    return ["onboarding" if t is handle else "everboarding" for t in targets]


def request_id(*parts: str) -> str:
    """A signal's request id made from what the request is (the same parts, the same id):
    the server takes a signal with a given id once per run."""
    digest = hashlib.sha256("\n".join(parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16]))


async def _signal_once(
    client: Client, workflow_id: str, name: str, arg: BaseModel, request_id: str
) -> None:
    """A signal with our request id, which the server remembers for the run and drops a
    second time (the SDK's `signal` makes a new id each call, so it cannot say "again")."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest

    request = SignalWorkflowExecutionRequest(
        namespace=client.namespace,
        workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        signal_name=name,
        identity=client.identity,
        request_id=request_id,
    )
    request.input.payloads.extend(await client.data_converter.encode([arg]))
    await client.workflow_service.signal_workflow_execution(request, retry=True)
