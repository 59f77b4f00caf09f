"""Who looks after the account: the CSM (or the pooled queue) and reassignments. The roster
itself lives in the database; its activities answer, this keeps the workflow's side."""

from __future__ import annotations

from models.journey import Contact, CsmRef, ReassignCsm
from models.onboarding import CsmState


class CsmDesk:
    def __init__(self, state: CsmState, account_id: str) -> None:
        self.state = state
        self.account_id = account_id

    @property
    def current(self) -> CsmRef | None:
        return self.state.current

    @property
    def pooled(self) -> bool:
        return self.state.current is not None and self.state.current.pooled

    @property
    def contact(self) -> Contact | None:
        """Whom CSM mail goes to: the CSM, or the queue's inbox while pooled."""
        csm = self.state.current
        return Contact(name=csm.name, email=csm.email) if csm else None

    @property
    def named(self) -> Contact | None:
        """A CSM of their own (not the queue)."""
        return None if self.pooled else self.contact

    def assigned(self, csm: CsmRef) -> bool:
        """Take the roster's answer; True when it changed who looks after the account."""
        before, self.state.current = self.state.current, csm
        return before is None or before.id != csm.id

    def check_reassign(self, update: ReassignCsm, busy: bool) -> None:
        if self.state.current is None:
            raise ValueError(f"{self.account_id} has no CSM yet; one is assigned at handoff")
        if update.to == self.state.current.id:
            raise ValueError(f"{self.account_id} is already with {update.to}")
        if busy:
            raise ValueError("another reassignment of this account is under way")

    @property
    def next_reassignment(self) -> int:
        return self.state.reassignments + 1

    def reassigned(self, number: int, to: CsmRef) -> CsmRef | None:
        """Record a reassignment; returns who had the account."""
        before = self.state.current
        self.state.reassignments = number
        self.state.current = to
        return before
