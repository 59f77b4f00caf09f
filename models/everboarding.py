"""Everboarding's messages: learning never ends after onboarding."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from models.academy import CoursePlan, LearningPath
from models.journey import Cancel, CsmRef, Happened, Name, OnboardingRequest, Plan, Slug


class FeatureAnnouncement(BaseModel):
    """Payload of the `announce_feature` signal: a new feature for some plans."""

    id: Slug = Field(description="Dedupes repeated announcements.")
    name: Name
    summary: Name
    plans: list[Plan] = Field(min_length=1)


class Churn(Cancel):
    """Payload of the `customer_churned` signal: the customer has left."""

    at: Happened | None = None


class EverboardingState(BaseModel):
    """Everything a run hands to the next one when it continues as new."""

    started_at: datetime | None = None
    welcomed: bool = False
    digests_sent: int = 0
    next_digest_at: datetime | None = None
    checkins_sent: int = 0
    next_checkin_at: datetime | None = None
    courses_done: dict[str, datetime] = Field(
        default={}, description="Progress ids (`course` or `course/module`) and when."
    )
    pending_features: list[FeatureAnnouncement] = Field(
        default=[], description="Announced, waiting for the next digest."
    )
    features_seen: list[str] = Field(default=[], description="Ids announced so far.")
    tickets: list[tuple[str, datetime]] = Field(
        default=[], description="Support tickets reported and not yet recorded: (id, when)."
    )


class EverboardingInput(BaseModel):
    request: OnboardingRequest
    csm: CsmRef | None
    cadence: timedelta
    state: EverboardingState = EverboardingState()
    path: LearningPath = LearningPath()
    checkin_every: timedelta | None = Field(
        default=None, description="Adoption check-ins for the CSM (high-touch accounts)."
    )
    suggest: int = 2
    history_limit: int = Field(
        default=500, description="Continue as new beyond this many history events."
    )


class EverboardingStatus(BaseModel):
    account_id: str
    digests_sent: int
    next_digest_at: datetime | None
    checkins_sent: int = 0
    next_checkin_at: datetime | None = None
    next_courses: list[CoursePlan] = []
    pending_features: list[FeatureAnnouncement] = []
    courses_done: list[str] = []
    churned: Churn | None = None
