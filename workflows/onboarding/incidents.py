"""Incidents: messages that can never go as they are (refused for good, invalid, a broken
template). The onboarding records them, tells CS ops and goes on; ops fix the data and retry
(a new key: the failed one stays failed) or dismiss them. Owns `state.incidents`."""

from __future__ import annotations

from datetime import datetime

from models.activities import Effects, MailFailure, MailTemplate
from models.journey import Contact, ResolveIncident
from models.onboarding import Incident, IncidentState

KEEP_RESOLVED = 10  # resolved incidents kept for `status` (the outbox keeps all failures)


class Incidents:
    def __init__(self, state: IncidentState, account_id: str) -> None:
        self.state = state
        self.account_id = account_id

    @property
    def open(self) -> list[Incident]:
        return self.state.open

    def raise_for(
        self, failures: list[MailFailure], batch: Effects, champion: Contact, now: datetime
    ) -> list[Incident]:
        """One incident per failed message not already known (a retried batch reports the
        same failures again)."""
        known = {i.key for i in (*self.state.open, *self.state.resolved)}
        raised = []
        for failure in failures:
            if failure.key in known:
                continue
            mail = next((m for m in batch.mails if m.key == failure.key), None)
            self.state.raised += 1
            incident = Incident(
                number=self.state.raised,
                key=failure.key,
                template=failure.template,
                error_type=failure.error_type,
                reason=failure.reason,
                at=now,
                mail=mail,
                # An academy invite is the user's own, whoever the champion is now.
                to_champion=mail is not None
                and mail.to == champion
                and mail.template is not MailTemplate.ACADEMY_INVITE,
            )
            self.state.open.append(incident)
            known.add(failure.key)
            raised.append(incident)
        return raised

    def close_all(self, now: datetime) -> bool:
        """The onboarding ends: every open incident closes with it. True if there were any."""
        closing = self.state.open
        for incident in closing:
            incident.resolved_at, incident.resolution = now, "closed with the onboarding"
            incident.mail = None
        self.state.open = []
        self.state.resolved = [*self.state.resolved, *closing][-KEEP_RESOLVED:]
        return bool(closing)

    def check_resolve(self, resolve: ResolveIncident) -> None:
        if not self.state.open:
            raise ValueError(f"{self.account_id} has no open incident")
        numbers = [i.number for i in self.state.open]
        if resolve.number is not None and resolve.number not in numbers:
            shown = ", ".join(f"#{n}" for n in numbers)
            raise ValueError(f"incident #{resolve.number} is not open (open: {shown})")

    def resolve(self, resolve: ResolveIncident, champion: Contact, now: datetime) -> list[Incident]:
        """Close the incident named (every open one without a number); for a retry, the
        message to send again, under a new key and to the champion named now when it was
        theirs, is in each incident's `mail`."""
        chosen = [i for i in self.state.open if resolve.number in (None, i.number)]
        for incident in chosen:
            self.state.open.remove(incident)
            incident.resolved_at = now
            if resolve.retry and incident.mail is not None:
                retried = incident.mail.model_copy(
                    update={
                        "key": f"{incident.key}:retry{incident.number}",
                        "to": champion if incident.to_champion else incident.mail.to,
                    }
                )
                incident.mail = retried
                incident.resolution = f"retried by {resolve.by} as {retried.key}"
            else:
                incident.mail = None
                incident.resolution = f"dismissed by {resolve.by}" + (
                    f": {resolve.note}" if resolve.note else ""
                )
            self.state.resolved = [*self.state.resolved, incident][-KEEP_RESOLVED:]
        return chosen
