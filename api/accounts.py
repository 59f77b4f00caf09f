"""People's tools: where an onboarding is, the list, and a CSM's actions, each with a bearer
token whose name is who acted (`by`). An action refused by the onboarding answers 409 with
the reason the CLI prints; the same `Idempotency-Key` again answers as the first call did."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.guards import json_body, refuse
from api.intake import AccountId, Unprocessable, check_key, unprocessable
from api.state import person, state
from models.enums import RiskLevel, Stage
from workflows.contract import Updates

log = logging.getLogger("api")
router = APIRouter(prefix="/v1")
Person = Annotated[str, Depends(person)]


@dataclass(frozen=True)
class Action:
    update: str
    model: str  # in models.journey (imported when used: pydantic models cost their schema)
    result: str  # in models.journey or models.onboarding


ACTIONS = {
    "complete_milestone": Action(
        Updates.COMPLETE_MILESTONE, "CompleteMilestone", "MilestoneResult"
    ),
    "complete_task": Action(Updates.COMPLETE_TASK, "CompleteTask", "TaskStatus"),
    "extend": Action(Updates.EXTEND_DEADLINE, "ExtendDeadline", "TaskStatus"),
    "pause": Action(Updates.PAUSE, "PauseClock", "OnboardingStatus"),
    "resume": Action(Updates.RESUME, "ResumeClock", "OnboardingStatus"),
    "ack": Action(Updates.ACKNOWLEDGE_ESCALATION, "Acknowledge", "Escalation"),
    "reassign": Action(Updates.REASSIGN_CSM, "ReassignCsm", "CsmRef"),
    "cancel": Action(Updates.CANCEL, "Cancel", "OnboardingStatus"),
}
ActionName = Annotated[str, Path(description="One of: " + ", ".join(ACTIONS))]


def _json(model: Any) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/accounts/{account_id}", name="account_status", summary="Where an onboarding is")
async def account_status(request: Request, account_id: AccountId, who: Person) -> Response:
    from service.onboardings import status

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
    from service.onboardings import Filters, list_onboardings

    filters = Filters(stage, risk, csm, overdue, escalated, incidents)
    lines = await list_onboardings(await state(request).client(), filters)
    return JSONResponse([line.model_dump(mode="json") for line in lines])


@router.post("/accounts/{account_id}/actions/{name}", summary="A CSM's action on an onboarding")
async def action(
    request: Request,
    account_id: AccountId,
    name: ActionName,
    who: Person,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    from service.onboardings import act

    chosen = ACTIONS.get(name)
    if chosen is None:
        raise refuse(404, f"no action {name!r}; actions: {', '.join(ACTIONS)}")
    arg, result = _arguments(chosen, await json_body(request, empty_ok=True), who)
    answer = await act(
        await state(request).client(),
        account_id,
        chosen.update,
        arg,
        result,
        update_id=_update_id(who, name, idempotency_key),
    )
    log.info("%s on %s by %s: accepted", name, account_id, who)
    return _json(answer)


def _arguments(action: Action, body: bytes, who: str) -> tuple[Any, type[Any]]:
    """The update's input from the body, through the door, `by` being the token's name."""
    from pydantic import TypeAdapter, ValidationError

    from models import journey, onboarding
    from models.door import admit, door_context
    from models.playbook import Duration

    model = getattr(journey, action.model)
    result = getattr(journey, action.result, None) or getattr(onboarding, action.result)
    try:
        fields = json.loads(body)
    except ValueError as error:
        raise Unprocessable([("", f"Invalid JSON: {error}")]) from None
    if not isinstance(fields, dict):
        raise Unprocessable([("", "the body is a JSON object of the action's fields")])
    unknown = [key for key in fields if key not in model.model_fields or key == "by"]
    if unknown:
        raise Unprocessable(
            [
                (key, "is the API token's name" if key == "by" else "unknown field")
                for key in unknown
            ]
        )
    if fields.get("extend_by") is not None:  # "7d" as a playbook says it, or "P7D"
        try:
            fields["extend_by"] = TypeAdapter(Duration).validate_python(
                fields["extend_by"], context=door_context()
            )
        except ValidationError as error:
            message = error.errors()[0]["msg"].removeprefix("Value error, ")
            raise Unprocessable([("extend_by", message)]) from None
    try:
        return admit(model, fields | {"by": who}), result
    except ValidationError as error:
        raise unprocessable(error) from None


def _update_id(who: str, name: str, key: str | None) -> str | None:
    """The update's id from the caller's key: the same key from the same token for the same
    action is the same update, which Temporal answers once. Hashed: keys are the caller's."""
    if key is None:
        return None
    check_key(key)
    digest = hashlib.sha256(f"{who}\n{name}\n{key}".encode()).hexdigest()[:32]
    return f"api-{name}-{digest}"
