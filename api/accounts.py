"""People's tools: where an onboarding is, the list, and a CSM's actions, each with a bearer
token whose name is who acted (`by`). An action refused by the onboarding answers 409 with
the reason the CLI prints; the same `Idempotency-Key` again answers as the first call did."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.errors import Unprocessable, check_key, parse_json, unprocessable
from api.guards import json_body, refuse
from api.intake import AccountId, IdempotencyKey
from api.state import Person, state
from models import journey
from models.door import admit, door_context
from models.enums import RiskLevel, Stage
from models.onboarding import OnboardingStatus
from models.playbook import Duration
from service.onboardings import Filters, act, list_onboardings, status
from workflows.contract import Updates

log = logging.getLogger("api")
router = APIRouter(prefix="/v1")


@dataclass(frozen=True)
class Action:
    update: str
    model: type[BaseModel]
    result: type[BaseModel]


ACTIONS = {
    "complete_milestone": Action(
        Updates.COMPLETE_MILESTONE, journey.CompleteMilestone, journey.MilestoneResult
    ),
    "complete_task": Action(Updates.COMPLETE_TASK, journey.CompleteTask, journey.TaskStatus),
    "extend": Action(Updates.EXTEND_DEADLINE, journey.ExtendDeadline, journey.TaskStatus),
    "pause": Action(Updates.PAUSE, journey.PauseClock, OnboardingStatus),
    "resume": Action(Updates.RESUME, journey.ResumeClock, OnboardingStatus),
    "ack": Action(Updates.ACKNOWLEDGE_ESCALATION, journey.Acknowledge, journey.Escalation),
    "reassign": Action(Updates.REASSIGN_CSM, journey.ReassignCsm, journey.CsmRef),
    "cancel": Action(Updates.CANCEL, journey.Cancel, OnboardingStatus),
}
ActionName = Annotated[str, Path(description="One of: " + ", ".join(ACTIONS))]


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/accounts/{account_id}", name="account_status", summary="Where an onboarding is")
async def account_status(request: Request, account_id: AccountId, who: Person) -> Response:
    return _json(await status(await state(request).client(), account_id))


@router.get("/onboardings", summary="Every onboarding, newest first (as `starter.py list --json`)")
async def onboardings(
    request: Request,
    who: Person,
    stage: Stage | None = None,
    risk: RiskLevel | None = None,
    csm: Annotated[str | None, Query(max_length=63)] = None,
    overdue: bool = False,
    escalated: bool = False,
    incidents: bool = False,
) -> JSONResponse:
    filters = Filters(stage, risk, csm, overdue, escalated, incidents)
    lines = await list_onboardings(await state(request).client(), filters)
    return JSONResponse([line.model_dump(mode="json") for line in lines])


@router.post("/accounts/{account_id}/actions/{name}", summary="A CSM's action on an onboarding")
async def action(
    request: Request,
    account_id: AccountId,
    name: ActionName,
    who: Person,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    chosen = ACTIONS.get(name)
    if chosen is None:
        raise refuse(404, f"no action {name!r}; actions: {', '.join(ACTIONS)}")
    arg = _arguments(chosen, await json_body(request, empty_ok=True), who)
    answer = await act(
        await state(request).client(),
        account_id,
        chosen.update,
        arg,
        chosen.result,
        update_id=_update_id(who, name, idempotency_key),
    )
    log.info("%s on %s by %s: accepted", name, account_id, who)
    return _json(answer)


def _arguments(action: Action, body: bytes, who: str) -> BaseModel:
    """The update's input from the body, through the door, `by` being the token's name."""
    fields: Any = parse_json(body)
    if not isinstance(fields, dict):
        raise Unprocessable([("", "the body is a JSON object of the action's fields")])
    unknown = [key for key in fields if key not in action.model.model_fields or key == "by"]
    if unknown:
        said = {"by": "is the API token's name; leave it out"}
        raise Unprocessable([(key, said.get(key, "unknown field")) for key in unknown])
    if fields.get("extend_by") is not None:  # "7d" as a playbook says it, or "P7D"
        try:
            fields["extend_by"] = TypeAdapter(Duration).validate_python(
                fields["extend_by"], context=door_context()
            )
        except ValidationError as error:
            message = error.errors()[0]["msg"].removeprefix("Value error, ")
            raise Unprocessable([("extend_by", message)]) from None
    try:
        return admit(action.model, fields | {"by": who})
    except ValidationError as error:
        raise unprocessable(error) from None


def _update_id(who: str, name: str, key: str | None) -> str | None:
    """The update's id from the caller's key: the same key from the same token for the same
    action is the same update, which Temporal answers once for the run (the fields sent
    with it the second time are not looked at). Hashed: keys are the caller's."""
    if key is None:
        return None
    check_key(key)
    digest = hashlib.sha256(f"{who}\n{name}\n{key}".encode()).hexdigest()[:32]
    return f"api-{name}-{digest}"
