"""The onboarding workflow's input, its state and its `status` answer.

The state is one model with one sub-model per concern. It is what a run hands to the next
when it continues as new, so it evolves like every other message: fields are added with
defaults, never renamed or removed. Each sub-model is owned by one component of
`workflows/onboarding/` (named in its docstring), which is what writes it; the workflow keeps
only `run`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from models.academy import CourseStatus, LearningPath
from models.activities import Mail, MailTemplate, RowFacts, TaskDue
from models.journey import (
    Cancellation,
    ChampionChange,
    Contact,
    CsmRef,
    EngagementKind,
    Escalation,
    Milestone,
    MilestoneRecord,
    OnboardingRequest,
    Plan,
    RiskAssessment,
    Stage,
    StageVisit,
    TaskStatus,
    TouchModel,
)
from models.migration import PlaybookAdoption
from models.playbook import Playbook


class JourneyState(BaseModel):
    """Where the customer is (`stages.Journey`)."""

    started_at: datetime
    stage: Stage = Stage.DEPART
    history: list[StageVisit]
    entered: bool = Field(default=False, description="The current stage's entry actions are done.")
    milestones: dict[Milestone, MilestoneRecord] = {}
    cancellation: Cancellation | None = None
    last_activity_at: datetime = Field(
        description="The last sign of life: engagement, a milestone, a task, a CSM's action "
        "(lapsing counts from it)."
    )
    everboarding_id: str | None = None


class ClockState(BaseModel):
    """The stage's deadline, the checklist's due dates, reminders and the pause
    (`checklist.Checklist`)."""

    stage_clock: TaskStatus | None = None
    tasks: dict[str, TaskStatus] = {}
    paused_at: datetime | None = None
    removed: dict[str, TaskStatus] = Field(
        default={},
        description="Open tasks a newer playbook dropped, as they stood: migrating back "
        "restores them with their reminders counted.",
    )


class RiskState(BaseModel):
    """Engagement, the champion, the risk assessment and the escalation ladder
    (`risk.RiskWatch`)."""

    assessment: RiskAssessment = RiskAssessment()
    """The level last recorded (and published); `status` reads a fresh one."""
    quiet_from: datetime
    """Quiet time counts from here: the last engagement, moved on by time spent paused."""
    last_engagement_at: datetime | None = None
    engagements: dict[EngagementKind, int] = {}
    missed: list[str] = Field(default=[], description="Steps whose deadline passed, once each.")
    champion: Contact
    champion_change: ChampionChange | None = None
    champion_losses: int = 0
    champion_named_at: datetime | None = None
    ask_for_champion: bool = False
    champion_reminders: list[datetime] = Field(
        default=[], description="Reminders to the champion since quiet time began."
    )
    escalations: list[Escalation] = []
    armed: bool = Field(default=True, description="Risk fell below the escalation level since.")
    high_touch_since: datetime | None = None


class LearningState(BaseModel):
    """Course progress and academy access (`learning.Learning`)."""

    courses_done: dict[str, datetime] = Field(
        default={}, description="Progress ids (`course` or `course/module`) and when."
    )
    academy_opened_at: datetime | None = None
    users_waiting: list[Contact] = []
    academy_users: list[str] = Field(default=[], description="Emails granted, lower case.")
    refused_users: int = Field(default=0, description="Users added after the onboarding ended.")


class CsmState(BaseModel):
    """Who looks after the account (`csm.CsmDesk`)."""

    current: CsmRef | None = None
    reassignments: int = 0


class RecordedState(BaseModel):
    """What the database already holds of this onboarding, as far as this run knows
    (`readmodel.ReadModel`): each pass records only the difference."""

    opened: bool = False
    row: RowFacts | None = None
    visits: list[StageVisit] = []
    tasks: dict[str, TaskDue] = {}
    escalations: dict[int, Escalation] = {}
    tickets: list[tuple[str, datetime]] = Field(
        default=[], description="Support tickets reported and not yet recorded: (id, when)."
    )


class Incident(BaseModel):
    """A message that could not be sent and that the onboarding went on without: shown to
    ops until someone retries it (once the data is fixed) or dismisses it."""

    number: int
    key: str
    """The failed message's business key."""
    template: MailTemplate
    error_type: str
    reason: str
    """Free of personal data."""
    at: datetime
    mail: Mail | None = None
    """What a retry sends again (None for a chat post: chats are not sent again)."""
    to_champion: bool = False
    """A retry goes to the champion named by then (the address may be what was wrong)."""
    resolved_at: datetime | None = None
    resolution: str | None = None


class IncidentState(BaseModel):
    """Incidents (`incidents.Incidents`); the closed ones only as many as `KEEP_RESOLVED`."""

    open: list[Incident] = []
    resolved: list[Incident] = []
    raised: int = Field(default=0, description="Incidents raised so far (numbers them).")


class PlaybookState(BaseModel):
    """The playbook versions the run went through (`core.Onboarding.adopt_playbook`)."""

    adoptions: list[PlaybookAdoption] = []


class OnboardingState(BaseModel):
    journey: JourneyState
    clock: ClockState = ClockState()
    risk: RiskState
    learning: LearningState = LearningState()
    csm: CsmState = CsmState()
    recorded: RecordedState = RecordedState()
    incidents: IncidentState = IncidentState()
    playbook: PlaybookState = PlaybookState()
    run: int = Field(default=1, description="Runs in this onboarding's continue-as-new chain.")


class OnboardingInput(BaseModel):
    """The workflow's input: the request plus the playbook and learning path resolved when
    it started, and, when a run continues as new, the state it carries on with.

    Carrying them resolved means editing a playbook or the academy never changes the replay
    of a running onboarding.
    """

    request: OnboardingRequest
    playbook: Playbook
    path: LearningPath = LearningPath()
    state: OnboardingState | None = None


class OnboardingStatus(BaseModel):
    """The `status` query's answer."""

    account_id: str
    account_name: str
    plan: Plan
    touch_model: TouchModel
    playbook: str
    playbook_version: str | None = Field(
        default=None, description="The playbook file's content hash (None: before 0.4)."
    )
    playbook_adoptions: list[PlaybookAdoption] = Field(
        default=[], description="Migrations to newer playbook versions (`starter.py migrate`)."
    )
    stage: Stage
    stage_entered_at: datetime
    next_deadline: datetime | None
    csm_id: str | None
    milestones: dict[Milestone, MilestoneRecord]
    pending_milestones: list[Milestone] = Field(
        description="Recorded early; applied when their stage is reached."
    )
    first_value_at: datetime | None
    everboarding_workflow_id: str | None
    history: list[StageVisit]
    tasks: list[TaskStatus] = []
    overdue: list[str] = Field(
        default=[], description='What is past its deadline: "stage" or task ids.'
    )
    paused_since: datetime | None = None
    cancellation: Cancellation | None = None
    risk: RiskAssessment = RiskAssessment()
    escalations: list[Escalation] = []
    champion: Contact | None = None
    last_engagement_at: datetime | None = None
    engagements: dict[EngagementKind, int] = Field(
        default={}, description="Engagement signals taken, by kind."
    )
    high_touch_since: datetime | None = Field(
        default=None, description="Switched to high-touch handling at high risk."
    )
    csm_pooled: bool = Field(default=False, description="Waiting in the pooled queue.")
    learning: list[CourseStatus] = []
    academy_users: list[str] = Field(default=[], description="Emails granted academy access.")
    waiting_for_courses: list[str] = Field(
        default=[], description="Courses the playbook wants finished before Review."
    )
    users_waiting: int = Field(default=0, description="Users waiting for academy access.")
    users_refused: int = Field(
        default=0, description="Users a system added after the onboarding ended (not granted)."
    )
    closes_at: datetime | None = Field(
        default=None,
        description="When the onboarding closes as lapsed if nothing happens before.",
    )
    run: int = Field(default=1, description="Runs in the continue-as-new chain so far.")
    incidents: list[Incident] = Field(
        default=[], description="Open incidents: messages that could not be sent."
    )
    incidents_raised: int = 0
    stage_deadlines: dict[str, timedelta] = Field(
        default={}, description="Each stage's deadline on the run's own playbook version."
    )
    locale: str = Field(default="en", description="The customer's language (the deal's).")
    timezone: str | None = Field(default=None, description="The customer's zone (the deal's).")
