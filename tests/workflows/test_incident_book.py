"""Incidents, without a server: one per failed message however often a batch is retried,
retries under a new key to the champion named by then, a bounded record of the closed ones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.activities import Effects, Mail, MailFailure, MailTemplate
from models.journey import Contact, ResolveIncident
from models.onboarding import IncidentState
from workflows.onboarding.incidents import KEEP_RESOLVED, Incidents

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KENJI = Contact(name="Kenji Mori", email="kenji@acme.example")
ANA = Contact(name="Ana Ruiz", email="ana@acme.example")


def failed(key: str, template: MailTemplate = MailTemplate.WELCOME) -> MailFailure:
    return MailFailure(key=key, template=template, error_type="RecipientRefused", reason="550")


def batch(*mails: Mail) -> Effects:
    return Effects(account_id="acme", at=T0, mails=list(mails))


def test_a_retried_batch_raises_each_incident_once() -> None:
    incidents = Incidents(IncidentState(), "acme")
    welcome = Mail(key="k:welcome", template=MailTemplate.WELCOME, to=KENJI)
    assert [
        i.number for i in incidents.raise_for([failed("k:welcome")], batch(welcome), KENJI, T0)
    ] == [1]
    assert incidents.raise_for([failed("k:welcome")], batch(welcome), KENJI, T0) == []
    assert [i.key for i in incidents.open] == ["k:welcome"]


def test_a_retry_goes_to_the_champion_named_now_under_a_new_key() -> None:
    incidents = Incidents(IncidentState(), "acme")
    welcome = Mail(key="k:welcome", template=MailTemplate.WELCOME, to=KENJI)
    invite = Mail(key="k:academy:x", template=MailTemplate.ACADEMY_INVITE, to=KENJI)
    failures = [failed("k:welcome"), failed("k:academy:x", MailTemplate.ACADEMY_INVITE)]
    incidents.raise_for(failures, batch(welcome, invite), KENJI, T0)

    retried = incidents.resolve(ResolveIncident(retry=True, by="csm-007"), ANA, T0)
    assert [(i.mail.key, i.mail.to) for i in retried if i.mail] == [
        ("k:welcome:retry1", ANA),
        ("k:academy:x:retry2", KENJI),  # the user's own invite: still theirs
    ]
    assert incidents.open == []
    assert retried[0].resolution == "retried by csm-007 as k:welcome:retry1"


def test_only_the_incidents_named_are_resolved_and_a_few_closed_ones_are_kept() -> None:
    incidents = Incidents(IncidentState(), "acme")
    mails = [Mail(key=f"k:{n}", template=MailTemplate.REMINDER, to=KENJI) for n in range(15)]
    incidents.raise_for([failed(m.key) for m in mails], batch(*mails), KENJI, T0)
    incidents.resolve(ResolveIncident(number=3, retry=False, by="x", note="gone"), KENJI, T0)
    assert 3 not in [i.number for i in incidents.open] and len(incidents.open) == 14
    assert incidents.state.resolved[0].resolution == "dismissed by x: gone"
    incidents.resolve(ResolveIncident(retry=False, by="x"), KENJI, T0)
    assert len(incidents.state.resolved) == KEEP_RESOLVED
    # The keys of closed incidents beyond those kept may be reported again by a retried
    # batch; the ones kept are not.
    assert incidents.raise_for([failed("k:14")], batch(mails[14]), KENJI, T0) == []


@pytest.mark.parametrize(
    ("number", "message"),
    [(None, "acme has no open incident"), (2, "acme has no open incident")],
)
def test_nothing_to_resolve_is_refused_with_a_reason(number: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Incidents(IncidentState(), "acme").check_resolve(
            ResolveIncident(number=number, retry=True, by="x")
        )


def test_an_unknown_number_is_refused_naming_the_open_ones() -> None:
    incidents = Incidents(IncidentState(), "acme")
    mail = Mail(key="k:welcome", template=MailTemplate.WELCOME, to=KENJI)
    incidents.raise_for([failed("k:welcome")], batch(mail), KENJI, T0)
    with pytest.raises(ValueError, match=r"incident #5 is not open \(open: #1\)"):
        incidents.check_resolve(ResolveIncident(number=5, retry=True, by="x"))
