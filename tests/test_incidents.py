"""A message that can never go as it is does not stall the onboarding: it becomes an
incident (status, search attribute, CS ops told), and a retry after the data is fixed sends
it. Against the time-skipping server, a real SMTP server that refuses the address for good,
and a real database."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.worker import Worker

from models.journey import (
    Cancel,
    CancelReason,
    Contact,
    MilestoneSignal,
    ResolveIncident,
    SetChampion,
    Stage,
)
from tests.conftest import (
    Mailbox,
    deal,
    eventually,
    idle,
    onboarding_input,
    reach,
    record_history,
)
from workflows.contract import Signals
from workflows.onboarding import OnboardingWorkflow

ACME = deal("acme")
NEW_CHAMPION = Contact(name="Ana Ruiz", email="ana.ruiz@acme-logistics.example")


async def test_a_refused_address_is_an_incident_the_onboarding_goes_on_and_a_retry_sends_it(
    client: Client, worker: Worker, mailbox: Mailbox, chat: tuple[list[dict], str]
) -> None:
    mailbox.refuse.add(str(ACME.champion.email))  # a typo'd address: the server bounces it
    handle = await client.start_workflow(
        OnboardingWorkflow.run,
        onboarding_input(ACME),
        id="onboarding-acme",
        task_queue=worker.task_queue,
    )
    await eventually(lambda: "onboarding-acme:incident:1" in mailbox.received())
    notice = mailbox.one("onboarding-acme:incident:1")
    assert "what_to_expect message could not be sent (RecipientRefused)" in str(
        notice.get_body(("plain",)).get_content()
    )
    assert str(ACME.champion.email) not in str(notice)  # no personal data in the incident
    await eventually(lambda: any("Incident on" in str(c) for c in chat[0]))

    status = await handle.query(OnboardingWorkflow.status)
    assert [(i.number, i.template, i.error_type) for i in status.incidents] == [
        (1, "what_to_expect", "RecipientRefused")
    ]
    await handle.signal(Signals.CONTRACT_SIGNED, MilestoneSignal(by="ae-001"))
    await reach(handle, Stage.KICKOFF)  # it went on: the welcome and invite fail too
    await idle(handle)
    status = await handle.query(OnboardingWorkflow.status)
    assert [i.template for i in status.incidents] == [
        "what_to_expect",
        "academy_invite",
        "welcome",
    ]

    await handle.execute_update(
        OnboardingWorkflow.set_champion, SetChampion(champion=NEW_CHAMPION, by="csm-007")
    )
    after = await handle.execute_update(
        OnboardingWorkflow.resolve_incident, ResolveIncident(retry=True, by="csm-007")
    )
    assert after.incidents == []
    await idle(handle)
    # The champion's mails go to the champion named now; the academy invite is the user's
    # own, sent to the same address again, refused again: a new incident.
    for key in ("depart:what-to-expect:retry1", "kickoff:welcome:retry3"):
        retried = mailbox.one(f"onboarding-acme:{key}")
        assert retried["To"].addresses[0].addr_spec == NEW_CHAMPION.email
    status = await handle.query(OnboardingWorkflow.status)
    assert [(i.number, i.template) for i in status.incidents] == [(4, "academy_invite")]
    assert status.incidents_raised == 4

    await handle.execute_update(
        OnboardingWorkflow.resolve_incident,
        ResolveIncident(number=4, retry=False, by="csm-007", note="Kenji left; Ana has access"),
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            OnboardingWorkflow.resolve_incident, ResolveIncident(retry=True, by="csm-007")
        )
    assert refused.value.cause.message == "acme has no open incident"  # type: ignore[attr-defined]
    await idle(handle)
    await record_history(handle, "onboarding-acme-incident")
    await handle.terminate("test over")


async def test_a_dismissed_incident_sends_nothing(
    client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    mailbox.refuse.add(str(ACME.champion.email))
    handle = await client.start_workflow(
        OnboardingWorkflow.run,
        onboarding_input(ACME),
        id="onboarding-acme",
        task_queue=worker.task_queue,
    )
    await eventually(lambda: "onboarding-acme:incident:1" in mailbox.received())
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            OnboardingWorkflow.resolve_incident,
            ResolveIncident(number=7, retry=False, by="csm-007"),
        )
    assert refused.value.cause.message == "incident #7 is not open (open: #1)"  # type: ignore[attr-defined]
    await handle.execute_update(
        OnboardingWorkflow.resolve_incident,
        ResolveIncident(number=1, retry=False, by="csm-007", note="customer left"),
    )
    await idle(handle)
    assert not any(":retry" in key for key in mailbox.received())
    status = await handle.query(OnboardingWorkflow.status)
    assert status.incidents == []
    await handle.terminate("test over")


async def test_an_incident_in_the_last_batch_is_told_and_closed_with_the_onboarding(
    client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    """The CSM cancels; the farewell to a mistyped address is refused: CS ops still hear of
    it, and the run does not close with an incident nobody can clear."""
    handle = await client.start_workflow(
        OnboardingWorkflow.run,
        onboarding_input(ACME),
        id="onboarding-acme",
        task_queue=worker.task_queue,
    )
    await eventually(lambda: "onboarding-acme:depart:what-to-expect" in mailbox.received())
    await idle(handle)
    mailbox.refuse.add(str(ACME.champion.email))
    await handle.execute_update(
        OnboardingWorkflow.cancel, Cancel(reason=CancelReason.PRICE, by="csm-007")
    )
    final = await handle.result()
    assert "onboarding-acme:incident:1" in mailbox.received()
    assert "farewell" in str(mailbox.one("onboarding-acme:incident:1").get_body(("plain",)))
    assert final.incidents == [] and final.incidents_raised == 1
