"""Everboarding's messages: learning never ends after onboarding."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from models.journey import CsmRef, OnboardingRequest


class EverboardingState(BaseModel):
    """Everything a run hands to the next one when it continues as new."""

    welcomed: bool = False
    digests_sent: int = 0


class EverboardingInput(BaseModel):
    request: OnboardingRequest
    csm: CsmRef | None
    cadence: timedelta
    state: EverboardingState = EverboardingState()


class EverboardingStatus(BaseModel):
    account_id: str
    digests_sent: int
    next_digest_at: datetime | None
