"""CSM assignment."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import SessionFactory
from models.activities import CsmRequest
from models.journey import CsmRef
from models.tables import Csm, Onboarding


class AssignActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    @activity.defn
    def assign_csm(self, request: CsmRequest) -> CsmRef:
        """The active CSM serving the touch model with the fewest active onboardings (ties by
        id). Idempotent: an onboarding keeps a CSM who serves the touch model (so a switch to
        high-touch moves a pooled account to a named CSM, and a retry changes nothing)."""
        with self.sessions() as session:
            onboarding = session.get(Onboarding, request.account_id)
            if onboarding is None:
                raise RuntimeError(f"no onboarding row for {request.account_id}")
            if onboarding.csm_id is not None:
                current = session.get(Csm, onboarding.csm_id)
                if current is not None and request.touch_model in current.touch_models:
                    return CsmRef(id=current.id, name=current.name, email=current.email)
            load = dict(
                session.exec(  # type: ignore[arg-type]
                    select(Onboarding.csm_id, func.count())
                    .where(col(Onboarding.completed_at).is_(None))
                    .where(col(Onboarding.csm_id).is_not(None))
                    .where(Onboarding.account_id != request.account_id)
                    .group_by(Onboarding.csm_id)
                ).all()
            )
            candidates = [
                csm
                for csm in session.exec(select(Csm).where(Csm.active == True)).all()  # noqa: E712
                if request.touch_model in csm.touch_models
            ]
            if not candidates:
                # Retryable on purpose: the onboarding waits (visible as a failing activity in
                # the UI) until someone adds a CSM for this touch model to the roster.
                raise ApplicationError(
                    f"no active CSM serves touch model '{request.touch_model}'; "
                    "add one to the roster",
                    type="NoCsmAvailable",
                )
            chosen = min(candidates, key=lambda csm: (load.get(csm.id, 0), csm.id))
            onboarding.csm_id = chosen.id
            session.add(onboarding)
            session.commit()
            return CsmRef(id=chosen.id, name=chosen.name, email=chosen.email)
