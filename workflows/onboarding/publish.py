"""What the onboarding shows: its search attributes (filters in the Web UI and `starter.py
list`), the run's current details in the Web UI, and the `status` query's answer. Derived from
the state every time, never kept by hand. No PII in the first two."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

from models.journey import Milestone, RiskAssessment
from models.onboarding import Incident, OnboardingStatus
from workflows.contract import (
    SA_CSM,
    SA_ESCALATED,
    SA_INCIDENTS,
    SA_NEXT_DEADLINE,
    SA_OVERDUE,
    SA_RISK,
    SA_STAGE,
    SA_TOUCH_MODEL,
)
from workflows.onboarding.core import Onboarding


@dataclass(frozen=True)
class Publication:
    attributes: dict[str, Any]
    """Search attribute name → value (None: unset)."""
    details: str


KEYS: dict[str, SearchAttributeKey[Any]] = {
    key.name: key for key in (SA_STAGE, SA_TOUCH_MODEL, SA_RISK, SA_OVERDUE, SA_ESCALATED, SA_CSM)
} | {SA_NEXT_DEADLINE.name: SA_NEXT_DEADLINE, SA_INCIDENTS.name: SA_INCIDENTS}


def publication(o: Onboarding, now: datetime, *, ended_as_ended: bool = True) -> Publication:
    """`ended_as_ended`: an ended run shows nothing overdue and no live risk. Runs that ended
    before 0.4 recorded their last overdue steps and risk in the search attributes (commands
    in their history), so they replay with False (patch FINISHED_STATE in workflow.py)."""
    ended = o.journey.ended
    deadline = None if ended else o.checklist.next_deadline()
    overdue = [] if ended else o.checklist.overdue(now)
    risk = RiskAssessment() if ended else o.state.risk.assessment
    indexed_overdue, indexed_risk = (
        (overdue, risk) if ended_as_ended else (o.checklist.overdue(now), o.state.risk.assessment)
    )
    csm = o.csm.current
    attributes: dict[str, Any] = {
        SA_STAGE.name: o.journey.stage.value,
        SA_TOUCH_MODEL.name: o.touch_model.value,
        SA_RISK.name: indexed_risk.level.value,
        SA_OVERDUE.name: bool(indexed_overdue),
        SA_ESCALATED.name: o.risk.open_escalation() is not None,
        SA_CSM.name: csm.id if csm else None,
        SA_NEXT_DEADLINE.name: deadline,
    }
    incidents = o.incidents.open
    if o.state.incidents.raised:  # unset until the first: no upsert in a run that has none
        attributes[SA_INCIDENTS.name] = len(incidents)
    milestones = o.state.journey.milestones
    lines = [
        f"**Stage:** {o.journey.stage}",
        f"**Next deadline:** {_when(deadline)}",
        f"**CSM:** {csm.id if csm else 'not assigned yet'}",
        f"**Overdue:** {', '.join(overdue) or 'nothing'}",
        f"**Clock:** {_clock(o)}",
        f"**Risk:** {'-' if ended else risk.level} {'; '.join(risk.reasons)}".rstrip(),
        f"**Academy:** {o.learning.summary(now)}",
        *([f"**Incidents:** {_incidents(incidents)}"] if incidents else []),
        "",
        *(
            f"- {m}: done {_when(milestones[m].at)}" if m in milestones else f"- {m}: open"
            for m in Milestone
        ),
    ]
    return Publication(attributes=attributes, details="  \n".join(lines))


def _incidents(incidents: list[Incident]) -> str:
    return "; ".join(f"#{i.number} {i.template} {i.error_type}" for i in incidents)


def _clock(o: Onboarding) -> str:
    if o.journey.ended:
        return f"stopped ({o.journey.stage})"
    return "paused" if o.checklist.paused else "running"


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "-"


def changed_attributes(
    before: Publication | None, after: Publication
) -> list[SearchAttributeUpdate[Any]]:
    """The search attribute updates that take `before` to `after` (all of them at first)."""
    updates: list[SearchAttributeUpdate[Any]] = []
    for name, value in after.attributes.items():
        if before is not None and before.attributes.get(name) == value:
            continue
        key = KEYS[name]
        updates.append(key.value_unset() if value is None else key.value_set(value))
    return updates


def status(o: Onboarding, now: datetime) -> OnboardingStatus:
    journey, risk, learning = o.state.journey, o.state.risk, o.state.learning
    return OnboardingStatus(
        account_id=o.request.account_id,
        account_name=o.request.account_name,
        plan=o.request.plan,
        touch_model=o.request.touch_model,
        playbook=o.playbook.name,
        playbook_version=o.playbook.version,
        playbook_adoptions=o.state.playbook.adoptions,
        stage=journey.stage,
        stage_entered_at=o.journey.entered_at,
        next_deadline=None if o.journey.ended else o.checklist.next_deadline(),
        csm_id=o.csm.current.id if o.csm.current else None,
        milestones=journey.milestones,
        pending_milestones=o.journey.pending_milestones(),
        first_value_at=(
            journey.milestones[Milestone.INTEGRATION_DONE].at
            if o.journey.applied(Milestone.INTEGRATION_DONE)
            else None
        ),
        everboarding_workflow_id=journey.everboarding_id,
        history=journey.history,
        tasks=list(o.state.clock.tasks.values()),
        overdue=[] if o.journey.ended else o.checklist.overdue(now),
        paused_since=o.state.clock.paused_at,
        cancellation=journey.cancellation,
        # An ended run has no live risk (its escalations stay on record below).
        risk=(
            RiskAssessment()
            if o.journey.ended
            else risk.assessment
            if o.checklist.paused
            else o.risk.assess(now)
        ),
        escalations=risk.escalations,
        champion=risk.champion,
        last_engagement_at=risk.last_engagement_at,
        engagements=risk.engagements,
        high_touch_since=risk.high_touch_since,
        csm_pooled=o.csm.pooled,
        learning=o.learning.courses(now),
        academy_users=learning.academy_users,
        waiting_for_courses=o.learning.waiting_for_courses(now),
        users_waiting=len(learning.users_waiting),
        users_refused=learning.refused_users,
        closes_at=o.closes_at(),
        run=o.state.run,
        incidents=o.incidents.open,
        incidents_raised=o.state.incidents.raised,
        stage_deadlines={name: plan.deadline for name, plan in o.playbook.stages.items()},
        locale=o.request.locale,
        timezone=o.request.timezone,
    )
