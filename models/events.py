"""Facts other systems report over HTTP (`POST /v1/accounts/{id}/events`): one event or a
list, each `{"type": ..., "at"?: ..., ...}`, checked at the door as a whole before any is
sent, and each turned into the signal the workflow already takes (workflows/contract.py).

`by` defaults to the reporting source (the `X-Source` of the request), so the record says
which system reported what."""

from __future__ import annotations

import json
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from models import door, limits
from models.door import admit
from models.enums import ChampionLossReason, EngagementKind
from models.journey import (
    ChampionChanged,
    Contact,
    Engagement,
    Happened,
    MilestoneSignal,
    Note,
    TaskSignal,
    Text,
    UsersAdded,
    Who,
)
from workflows.contract import Signals

MAX_EVENTS = 100  # in one request


class _Event(BaseModel):
    # An unknown field is a mistake worth naming (a typo'd `task_id` would otherwise vanish).
    model_config = ConfigDict(extra="forbid")

    at: Happened | None = None

    def signal(self, source: str) -> tuple[str, BaseModel]:
        raise NotImplementedError


class MilestoneEvent(_Event):
    type: Literal["contract_signed", "kickoff_held", "integration_done", "review_passed"]
    by: Who | None = None
    note: Note | None = None

    def signal(self, source: str) -> tuple[str, BaseModel]:
        return self.type, MilestoneSignal(by=self.by or source, at=self.at, note=self.note)


class TaskDoneEvent(_Event):
    type: Literal["task_done"]
    task_id: Text
    by: Who | None = None

    def signal(self, source: str) -> tuple[str, BaseModel]:
        return Signals.TASK_DONE, TaskSignal(task_id=self.task_id, by=self.by or source, at=self.at)


class EngagementEvent(_Event):
    """What the customer did, `count` times (a product reports a batch as one event)."""

    type: Literal["engagement"]
    kind: EngagementKind
    value: Text | None = None
    count: int = Field(default=1, ge=1, le=1_000_000)

    def signal(self, source: str) -> tuple[str, BaseModel]:
        return Signals.ENGAGEMENT, Engagement(
            kind=self.kind, value=self.value, at=self.at, count=self.count
        )


class SupportTicketEvent(_Event):
    """A ticket the customer opened (the support desk): engagement of its own kind."""

    type: Literal["support_ticket"]
    ticket: Text | None = None
    count: int = Field(default=1, ge=1, le=1_000_000)

    def signal(self, source: str) -> tuple[str, BaseModel]:
        return Signals.ENGAGEMENT, Engagement(
            kind=EngagementKind.SUPPORT_TICKET, value=self.ticket, at=self.at, count=self.count
        )


class ChampionChangedEvent(_Event):
    type: Literal["champion_changed"]
    reason: ChampionLossReason
    new_champion: Contact | None = None

    def signal(self, source: str) -> tuple[str, BaseModel]:
        return Signals.CHAMPION_CHANGED, ChampionChanged(
            reason=self.reason, new_champion=self.new_champion, at=self.at
        )


class UsersAddedEvent(_Event):
    type: Literal["users_added"]
    users: Annotated[
        list[Contact],
        Field(min_length=1),
        door.at_most(limits.MAX_USERS, "users"),
        door.distinct_addresses("user"),
    ]
    by: Who | None = None

    def signal(self, source: str) -> tuple[str, BaseModel]:
        return Signals.USERS_ADDED, UsersAdded(users=self.users, by=self.by or source)


Event = Annotated[
    MilestoneEvent
    | TaskDoneEvent
    | EngagementEvent
    | SupportTicketEvent
    | ChampionChangedEvent
    | UsersAddedEvent,
    Field(discriminator="type"),
]
# Engagement counts for the everboarding once the onboarding has ended; the rest do not.
LIVES_ON = {Signals.ENGAGEMENT}
_TAGS = {
    tag
    for model in get_args(get_args(Event)[0])
    for tag in get_args(model.model_fields["type"].annotation)
}


class OneEvent(RootModel[Event]):
    pass


class EventList(RootModel[Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS)]]):
    pass


def admit_events(body: bytes) -> list[Event]:
    """The request's events through the door, all or none: a ValidationError names each wrong
    field as `count` (one event) or `2.count` (the third of a list)."""
    try:
        data = json.loads(body)
    except ValueError as error:
        raise ValidationError.from_exception_data(
            "events",
            [{"type": "json_invalid", "loc": (), "input": "", "ctx": {"error": str(error)}}],
        ) from None
    try:
        if isinstance(data, list):
            return admit(EventList, data).root
        return [admit(OneEvent, data).root]
    except ValidationError as error:
        raise _without_tags(error) from None


def _without_tags(error: ValidationError) -> ValidationError:
    """pydantic puts the event's type into the location (`0.engagement.count`): the type is
    the caller's own word, the position and field are what it needs."""
    details: list[InitErrorDetails] = []
    for e in error.errors():
        loc = tuple(part for n, part in enumerate(e["loc"]) if not (n <= 1 and part in _TAGS))
        message = e["msg"]
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            given = e["input"].get("type") if isinstance(e["input"], dict) else None
            known = ", ".join(sorted(_TAGS))
            loc += ("type",)
            message = f"{given!r} is not an event type" if given else "is required"
            message += f" (types: {known})"
        elif e["type"] == "model_attributes_type":
            message = 'an event is an object, {"type": ...}'
        details.append(
            {"type": PydanticCustomError(e["type"], message), "loc": loc, "input": e["input"]}
        )
    return ValidationError.from_exception_data(error.title, details)
