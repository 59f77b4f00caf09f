"""What `status`, `list` and `csm list` print, as models (their `--json` is these dumped).

In a module of their own, imported by those commands when they run: a pydantic model costs
its schema as it is defined, and `--help` needs none (cli/app.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from models.onboarding import OnboardingStatus


class StatusReport(OnboardingStatus):
    """The status query's answer plus what only the server knows: the runs' states."""

    workflow_status: str
    everboarding_status: str | None


class OnboardingLine(BaseModel):
    account_id: str
    workflow_status: str
    stage: str
    csm_id: str | None
    next_deadline: datetime | None
    started_at: datetime | None
    risk: str | None = None
    escalated: bool = False
    incidents: int = 0


class CsmLine(BaseModel):
    id: str
    name: str
    email: str
    touch_models: list[str]
    industries: list[str]
    chat: str | None
    active_onboardings: int
    capacity: int
    active: bool
