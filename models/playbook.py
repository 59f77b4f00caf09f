"""Playbooks: what a CS team tunes without code, and how a file becomes one.

A playbook file (TOML under `playbooks/`) holds defaults per stage plus overrides per touch
model. `PlaybookFile.resolve(touch_model)` flattens it into the `Playbook` one onboarding
runs with; that resolved copy travels in the workflow input.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    model_validator,
)

from models import door

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> object:
    """Accept `14d`, `36h`, `90s`, `30m`, `2w`; anything else goes on to pydantic (ISO 8601)."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        try:
            return timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
        except OverflowError:
            return value  # pydantic then says it is not a valid duration
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


Duration = Annotated[
    timedelta,
    # Before-validators run last-listed first: the door sees the value as the file wrote it.
    BeforeValidator(parse_duration),
    door.unit_required,
    AfterValidator(_positive),
    door.not_too_long,
    Field(description="e.g. 14d, 36h, 90s"),
]

# Stage names are spelled out rather than importing `Stage` to keep this module free of the
# journey models (which import it).
StageName = Literal["depart", "handoff", "kickoff", "adopt", "review", "expand"]
TouchModelName = Literal["high", "low", "tech", "community"]


class TaskPlan(BaseModel):
    """A step on the customer's checklist."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    title: str
    titles: dict[str, str] = Field(
        default={}, description='The title in other languages: {ja = "..."}.'
    )
    owner: Literal["customer", "csm", "se"] = "customer"
    due: Duration = Field(description="Due this long after the task's stage is entered.")
    required: bool = True


class StagePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadline: Duration
    automated: bool = Field(
        default=False,
        description="The stage ends by itself once its entry actions are done (no milestone).",
    )
    tasks: list[TaskPlan] = []
    tasks_complete_stage: bool = Field(
        default=False,
        description="Completing the stage's last required task records its milestone.",
    )


Owner = Literal["customer", "csm", "se", "ae"]
Recipient = Literal["champion", "csm", "ae"]


class ReminderPolicy(BaseModel):
    """When reminders go out around a due time, and to whom (by the owner of the step)."""

    model_config = ConfigDict(extra="forbid")

    before: list[Duration] = [timedelta(days=2)]
    at_due: bool = True
    overdue_every: Duration = timedelta(days=3)
    overdue_max: int = Field(default=3, ge=0, description="Overdue reminders, at most.")
    recipients: dict[Owner, list[Recipient]] = {
        "customer": ["champion"],
        "csm": ["csm"],
        "se": ["csm"],
        "ae": ["ae"],
    }

    def schedule(self, due: datetime) -> list[datetime]:
        """Every reminder time for a step due at `due`, in order."""
        times = {due - lead for lead in self.before}
        if self.at_due:
            times.add(due)
        times |= {due + self.overdue_every * n for n in range(1, self.overdue_max + 1)}
        return sorted(times)


class RiskThresholds(BaseModel):
    """When motivation risk turns medium or high (champion loss is always high)."""

    model_config = ConfigDict(extra="forbid")

    quiet_medium: Duration = Field(default=timedelta(days=7), description="No engagement for")
    quiet_high: Duration = timedelta(days=14)
    missed_medium: int = Field(default=1, ge=1, description="Deadlines missed")
    missed_high: int = Field(default=2, ge=1)
    unanswered_medium: int = Field(default=2, ge=1, description="Champion reminders unanswered")
    unanswered_high: int = Field(default=4, ge=1)


class LadderStep(BaseModel):
    """One level of the escalation ladder: who is told, and how long they have to ack."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["csm", "cs_lead", "head_of_cs"]
    name: str | None = Field(default=None, description="For cs_lead / head_of_cs.")
    email: EmailStr | None = None
    ack_within: Duration = timedelta(days=2)

    @model_validator(mode="after")
    def _leads_named(self) -> LadderStep:
        if self.role != "csm" and not (self.name and self.email):
            raise ValueError(f"{self.role} needs a name and an email")
        return self


class EscalationPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: Literal["medium", "high"] = "high"
    switch_to_high_touch: bool = Field(
        default=False,
        description="A low- or tech-touch customer at high risk gets a named CSM and human "
        "reminders for the rest of the journey.",
    )
    ladder: list[LadderStep] = Field(default=[LadderStep(role="csm")], min_length=1)


class ChannelPolicy(BaseModel):
    """Mail always goes out; chat adds a message for internal people (escalations)."""

    model_config = ConfigDict(extra="forbid")

    chat: bool = True


class StageOverride(BaseModel):
    """Per-touch-model changes to a stage; unset fields keep the default."""

    model_config = ConfigDict(extra="forbid")

    deadline: Duration | None = None
    automated: bool | None = None
    tasks: list[TaskPlan] | None = None
    tasks_complete_stage: bool | None = None


class TouchModelOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stages: dict[StageName, StageOverride] = {}
    reminders: ReminderPolicy | None = None
    channels: ChannelPolicy | None = None


class EverboardingPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence: Duration = timedelta(days=30)
    checkin_every: Duration | None = Field(
        default=timedelta(days=90),
        description="High-touch accounts: remind the CSM to check adoption this often.",
    )
    suggest: int = Field(default=2, ge=1, description="Advanced courses suggested per digest.")


class LearningPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review_gate: list[str] = Field(
        default=[],
        description="Course ids that must be finished before Review (those on the path).",
    )


class PlaybookFile(BaseModel):
    """The shape of a playbook file."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    stages: dict[StageName, StagePlan]
    touch_models: dict[TouchModelName, TouchModelOverride] = {}
    reminders: ReminderPolicy = ReminderPolicy()
    risk: RiskThresholds = RiskThresholds()
    escalation: EscalationPolicy = EscalationPolicy()
    channels: ChannelPolicy = ChannelPolicy()
    max_extension: Duration = Field(
        default=timedelta(days=30), description="How far a CSM may move one deadline in total."
    )
    lapse_after: Duration = Field(
        default=timedelta(days=14),
        description="Grace before an onboarding overdue past max_extension, with no sign of "
        "life for this long, closes as lapsed.",
    )
    everboarding: EverboardingPlan = EverboardingPlan()
    learning: LearningPolicy = LearningPolicy()

    @model_validator(mode="after")
    def _every_stage_planned(self) -> PlaybookFile:
        missing = [stage for stage in get_args(StageName) if stage not in self.stages]
        if missing:
            raise ValueError(f"stages: missing {', '.join(missing)}")
        return self

    def reminder_problems(self) -> list[str]:
        """Reminders `before` a due time longer than a stage's deadline would go out before
        the stage begins: refused for every touch model, naming where each value is set."""
        problems: list[str] = []
        for touch_model in [None, *get_args(TouchModelName)]:
            override = self.touch_models.get(touch_model) if touch_model else None
            reminders, where = self.reminders, "reminders"
            if override and override.reminders:
                reminders, where = override.reminders, f"touch_models.{touch_model}.reminders"
            for stage, plan in self.stages.items():
                deadline, field = plan.deadline, f"stages.{stage}.deadline"
                changed = override.stages.get(stage) if override else None
                if changed and changed.deadline is not None:
                    deadline = changed.deadline
                    field = f"touch_models.{touch_model}.stages.{stage}.deadline"
                for n, lead in enumerate(reminders.before):
                    problem = (
                        f"{where}.before.{n}: {spoken(lead)} before due is longer than "
                        f"{field} ({spoken(deadline)}): it would come before the stage starts"
                    )
                    if lead > deadline and problem not in problems:
                        problems.append(problem)
        return problems

    def version(self) -> str:
        """The file's content hash: 12 hex digits of the SHA-256 of what it says (its
        validated values, keys sorted, so a comment or a reordering of its tables is not a
        new version; the order of a stage's tasks is: it is the checklist's). Recorded per
        run, it tells which runs a `starter.py migrate` would change."""
        values = self.model_dump(mode="json")
        canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_DIGITS]

    def resolve(self, name: str, touch_model: str, locale: str = "en") -> Playbook:
        """The playbook one onboarding runs with: its touch model's overrides applied, its
        tasks titled in the customer's language where the file gives one, and the file's
        version."""
        resolved = self._resolve(name, touch_model).in_locale(locale)
        return resolved.model_copy(update={"version": self.version()})

    def _resolve(self, name: str, touch_model: str) -> Playbook:
        override = self.touch_models.get(touch_model, TouchModelOverride())  # type: ignore[call-overload]
        stages: dict[str, StagePlan] = {}
        for stage, plan in self.stages.items():
            changes = override.stages.get(stage)
            if changes:
                plan = StagePlan.model_validate(
                    plan.model_dump() | changes.model_dump(exclude_none=True)
                )
            stages[stage] = plan
        return Playbook(
            name=name,
            touch_model=touch_model,
            stages=stages,
            reminders=override.reminders or self.reminders,
            risk=self.risk,
            escalation=self.escalation,
            channels=override.channels or self.channels,
            max_extension=self.max_extension,
            lapse_after=self.lapse_after,
            everboarding=self.everboarding,
            learning=self.learning,
        )


VERSION_DIGITS = 12


class Playbook(BaseModel):
    """One onboarding's playbook, resolved for its touch model."""

    name: str
    version: str | None = Field(
        default=None, description="The file's content hash (None: started before 0.4)."
    )
    touch_model: str
    stages: dict[str, StagePlan]
    # Defaults keep onboardings started before reminders existed decodable.
    reminders: ReminderPolicy = ReminderPolicy()
    risk: RiskThresholds = RiskThresholds()
    escalation: EscalationPolicy = EscalationPolicy()
    channels: ChannelPolicy = ChannelPolicy()
    max_extension: timedelta = timedelta(days=30)
    lapse_after: timedelta = timedelta(days=14)
    everboarding: EverboardingPlan
    learning: LearningPolicy = LearningPolicy()

    def stage(self, stage: str) -> StagePlan:
        return self.stages[stage]

    def in_locale(self, locale: str) -> Playbook:
        stages = {
            name: plan.model_copy(
                update={"tasks": [localized(task, locale) for task in plan.tasks]}
            )
            for name, plan in self.stages.items()
        }
        return self.model_copy(update={"stages": stages})


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T", bound=BaseModel)


def localized(item: T, locale: str) -> T:
    """`item` titled in `locale` where it has a title for it; its other titles dropped, so
    what an onboarding carries is what it shows."""
    titles: dict[str, str] = getattr(item, "titles", {})
    title = titles.get(locale, getattr(item, "title"))  # noqa: B009
    return item.model_copy(update={"title": title, "titles": {}})


def spoken(value: timedelta) -> str:
    """A duration the way playbooks write it (`14d`, `36h`), for messages."""
    seconds = int(value.total_seconds())
    for unit in "dhm":
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


class PlaybookError(Exception):
    """A playbook that cannot be used; the message names the file and the field."""


def load_playbook(directory: Path, name: str) -> PlaybookFile:
    """A playbook file, validated on its own and against the academy catalogue beside it."""
    path = directory / f"{name}.toml"
    if not path.is_file():
        known = sorted(
            p.stem for p in directory.glob("*.toml") if p.stem not in ("csms", "academy")
        )
        raise PlaybookError(f"unknown playbook {name!r} (known: {', '.join(known) or 'none'})")
    playbook = load_toml(path, PlaybookFile, PlaybookError)
    problems = playbook.reminder_problems()
    if playbook.learning.review_gate:
        # Imported here: the academy's models use this module's Duration and load_toml.
        from models.academy import ACADEMY_FILE, load_academy

        catalogue = [course.id for course in load_academy(directory).courses]
        problems += [
            f"learning.review_gate.{n}: {course!r} is not a course of {ACADEMY_FILE}.toml "
            f"(courses: {', '.join(catalogue)})"
            for n, course in enumerate(playbook.learning.review_gate)
            if course not in catalogue
        ]
    if problems:
        raise PlaybookError(f"{path}: {'; '.join(problems)}")
    return playbook


def load_toml(path: Path, model: type[M], error: type[Exception]) -> M:
    """Read and validate one of the CS team's TOML files (playbook, academy, roster), with
    the door's checks; any problem becomes `error` with the file and, for a wrong value, the
    field named."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return model.model_validate(data, context=door.door_context())
    except FileNotFoundError as err:
        raise error(f"{path}: no such file") from err
    except OSError as err:
        raise error(f"cannot read {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise error(f"{path}: {door.not_utf8(err.object, err.start)}") from err
    except tomllib.TOMLDecodeError as err:
        raise error(f"{path}: not valid TOML: {err}") from err
    except ValidationError as err:
        raise error(f"{path}: {format_validation_error(err)}") from err


def format_validation_error(err: ValidationError) -> str:
    """One line per wrong field, each naming the field by its dotted path."""
    lines = []
    for error in err.errors():
        field = ".".join(str(part) for part in error["loc"])
        # pydantic prefixes our own checks' words with "Value error, ": not for people.
        message = error["msg"].removeprefix("Value error, ")
        # No field: the document as a whole (not JSON at all, or a whole-document check).
        lines.append(f"{field}: {message}" if field else message)
    return "; ".join(lines)
