"""What `status` and `list` answer (the CLI's `--json` and the API's JSON are these dumped).

A pydantic model costs its schema as it is defined: imported by the code that answers, never
by `--help` (cli/app.py)."""

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
