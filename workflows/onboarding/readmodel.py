"""What the database should say about this onboarding, against what it already says: each
batch of effects carries only the difference. One mechanism instead of "unsaved" flags set by
hand wherever something changes: whatever changed is found by comparing."""

from __future__ import annotations

from datetime import datetime

from models.activities import Effects, RowFacts, SupportTicketRecord, TaskDue
from models.journey import Escalation, StageVisit
from models.onboarding import RecordedState


def note_ticket(pending: list[tuple[str, datetime]], ticket: str, at: datetime) -> None:
    """A support ticket to put on record, once per id while it waits (the database's key
    sees to repeats across batches and runs)."""
    if all(known != ticket for known, _ in pending):
        pending.append((ticket, at))


def ticket_records(
    account_id: str, pending: list[tuple[str, datetime]]
) -> list[SupportTicketRecord]:
    return [SupportTicketRecord(account_id=account_id, ticket=t, at=at) for t, at in pending]


class ReadModel:
    def __init__(self, state: RecordedState, account_id: str) -> None:
        self.state = state
        self.account_id = account_id

    def ticket(self, ticket: str, at: datetime) -> None:
        note_ticket(self.state.tickets, ticket, at)

    def differences(
        self,
        row: RowFacts,
        visits: list[StageVisit],
        tasks: list[TaskDue],
        escalations: list[Escalation],
    ) -> dict[str, object]:
        """The parts of an `Effects` batch that bring the database up to date."""
        recorded = self.state
        changes: dict[str, object] = {}
        if row != recorded.row:
            changes["row"] = row
        new_visits = [
            visit.model_copy()
            for n, visit in enumerate(visits)
            if n >= len(recorded.visits) or recorded.visits[n] != visit
        ]
        if new_visits:
            changes["visits"] = new_visits
        if new_tasks := [t for t in tasks if recorded.tasks.get(t.id) != t]:
            changes["tasks"] = new_tasks
        if removed := sorted(recorded.tasks.keys() - {t.id for t in tasks}):
            changes["removed_tasks"] = removed  # a newer playbook dropped them
        if new_escalations := [e for e in escalations if recorded.escalations.get(e.number) != e]:
            changes["escalations"] = [e.model_copy(deep=True) for e in new_escalations]
        if recorded.tickets:
            changes["tickets"] = ticket_records(self.account_id, recorded.tickets)
        return changes

    def recorded(self, effects: Effects) -> None:
        """The batch is carried out: the database now holds what it carried."""
        state = self.state
        state.opened = state.opened or effects.opened is not None
        if effects.row is not None:
            state.row = effects.row
        for visit in effects.visits:
            known = [n for n, v in enumerate(state.visits) if v.stage is visit.stage]
            if known:
                state.visits[known[0]] = visit
            else:
                state.visits.append(visit)
        state.tasks.update({task.id: task for task in effects.tasks})
        for task_id in effects.removed_tasks:
            state.tasks.pop(task_id, None)
        state.escalations.update({e.number: e for e in effects.escalations})
        done = {record.ticket for record in effects.tickets}
        state.tickets = [(ticket, at) for ticket, at in state.tickets if ticket not in done]
