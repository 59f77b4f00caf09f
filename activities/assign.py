"""CSM assignment with capacity, the pooled queue, and reassignment."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from infra.db import SessionFactory, onboarding_row
from infra.roster import active_loads
from models.activities import CsmRequest, ReassignRequest
from models.journey import QUEUE_ID, Contact, CsmRef
from models.tables import Csm, Onboarding, Reassignment, utcnow

# SQLite has no row locks; one worker process is the only supported shape there, so a
# process-wide lock serialises assignments (PostgreSQL uses row locks, see `_roster`).
_SQLITE_LOCK = threading.Lock()


def _ref(csm: Csm) -> CsmRef:
    return CsmRef(id=csm.id, name=csm.name, email=csm.email)


class AssignActivities:
    def __init__(self, sessions: SessionFactory, queue: Contact) -> None:
        self.sessions = sessions
        self.queue = queue

    @contextmanager
    def _roster(self) -> Iterator[tuple[Session, list[Csm]]]:
        """A session holding the roster locked, so concurrent assignments (a quarter-end
        batch on several workers) see each other's picks and never overfill a CSM."""
        with self.sessions() as session:
            if session.get_bind().dialect.name == "sqlite":
                with _SQLITE_LOCK:
                    yield session, list(session.exec(select(Csm).order_by(Csm.id)).all())
            else:
                # Rows locked in id order, so two transactions never wait on each other in a
                # circle; the load count below runs after the lock and sees committed picks.
                # An attempt interrupted mid-transaction (a cancelled activity thread) must
                # not leave the roster locked for every other assignment: the server ends
                # such a transaction, and a waiter gives up and is retried.
                session.execute(text("SET LOCAL lock_timeout = '15s'"))
                session.execute(text("SET LOCAL idle_in_transaction_session_timeout = '15s'"))
                locked = select(Csm).order_by(Csm.id).with_for_update()
                yield session, list(session.exec(locked).all())

    def _pooled(self, reason: str) -> CsmRef:
        return CsmRef(
            id=QUEUE_ID, name=self.queue.name, email=self.queue.email, pooled=True, reason=reason
        )

    @activity.defn
    def assign_csm(self, request: CsmRequest) -> CsmRef:
        """Among active CSMs serving the touch model and below capacity, prefer those who
        know the industry, then the lowest load relative to capacity, then the lower id.
        Nobody free: the pooled queue (never an overloaded CSM).

        Idempotent: an onboarding keeps a CSM who serves the touch model (so a retry changes
        nothing, and a switch to high-touch moves a pooled account to a named CSM)."""
        with self._roster() as (session, roster):
            onboarding = _own_row(session, request.account_id, request.run_id)
            current = next((c for c in roster if c.id == onboarding.csm_id), None)
            if current is not None and request.touch_model in current.touch_models:
                return _ref(current)
            load = active_loads(session, excluding=request.account_id)
            serving = [c for c in roster if c.active and request.touch_model in c.touch_models]
            free = [c for c in serving if load.get(c.id, 0) < c.capacity]
            industry = request.industry.lower()
            chosen = min(
                free,
                key=lambda c: (
                    industry not in (i.lower() for i in c.industries),
                    load.get(c.id, 0) / c.capacity,
                    c.id,
                ),
                default=None,
            )
            if chosen is None:
                onboarding.csm_id = None
                onboarding.queued_since = onboarding.queued_since or utcnow()
                session.add(onboarding)
                session.commit()
                reason = (
                    f"every CSM serving {request.touch_model}-touch is at capacity"
                    if serving
                    else f"no active CSM serves {request.touch_model}-touch"
                )
                activity.logger.warning("%s queued: %s", request.account_id, reason)
                return self._pooled(reason)
            onboarding.csm_id = chosen.id
            onboarding.queued_since = None
            session.add(onboarding)
            session.commit()
            return _ref(chosen)

    @activity.defn
    def reassign_csm(self, request: ReassignRequest) -> CsmRef:
        """Hand the onboarding to `request.to`, or refuse (non-retryable) with the reason:
        unknown, inactive, not serving the touch model, or at capacity."""
        with self._roster() as (session, roster):
            done = session.exec(
                select(Reassignment).where(
                    Reassignment.account_id == request.account_id,
                    Reassignment.number == request.number,
                )
            ).first()
            target = next((c for c in roster if c.id == request.to), None)
            if done is not None and target is not None:
                return _ref(target)  # a retry after the commit
            if target is None:
                known = ", ".join(c.id for c in roster if c.active) or "none"
                raise _refused(f"unknown CSM {request.to!r} (active: {known})")
            if not target.active:
                raise _refused(f"{target.id} is not active")
            if request.touch_model not in target.touch_models:
                raise _refused(
                    f"{target.id} does not serve {request.touch_model}-touch "
                    f"(serves {', '.join(target.touch_models)})"
                )
            onboarding = _own_row(session, request.account_id, request.run_id)
            if onboarding.csm_id == target.id:
                raise _refused(f"{request.account_id} is already with {target.id}")
            load = active_loads(session, excluding=request.account_id).get(target.id, 0)
            if load >= target.capacity and not request.over_capacity:
                raise _refused(
                    f"{target.id} is at capacity ({load} of {target.capacity} active "
                    "onboardings); pass --over-capacity to assign anyway"
                )
            session.add(
                Reassignment(
                    account_id=request.account_id,
                    number=request.number,
                    from_csm=onboarding.csm_id,
                    to_csm=target.id,
                    reason=request.reason,
                    by=request.by,
                    at=request.at,
                )
            )
            onboarding.csm_id = target.id
            onboarding.queued_since = None
            session.add(onboarding)
            session.commit()
            return _ref(target)


def _own_row(session: Session, account_id: str, run_id: str | None) -> Onboarding:
    """The account's onboarding row, unless a newer onboarding of the account owns it now
    (a late attempt of a terminated run must not move the new one's CSM)."""
    row = onboarding_row(session, account_id)
    if run_id is not None and row.run_id not in (run_id, None):
        raise _refused(f"{account_id} has started a newer onboarding", type="Superseded")
    return row


def _refused(message: str, type: str = "ReassignRefused") -> ApplicationError:
    """A refusal the workflow answers with (not a bug): one line in the worker's log. BENIGN
    keeps the SDK from logging it again as a failure with its traceback (it does so at
    DEBUG) and from counting it in the failure metrics."""
    activity.logger.info("refused: %s", message)
    return ApplicationError(
        message, type=type, non_retryable=True, category=ApplicationErrorCategory.BENIGN
    )
