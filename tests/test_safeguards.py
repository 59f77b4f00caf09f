"""What the journey must get right beyond the happy path, each found wrong once: paused time
is not quiet time, reassignment and automatic assignment take turns, an escalation before
there is a CSM reaches the CS lead, and no timestamp from outside is taken as given."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.journey import (
    CompleteMilestone,
    Engagement,
    EngagementKind,
    Milestone,
    MilestoneSignal,
    PauseClock,
    ReassignCsm,
    ResumeClock,
    RiskLevel,
    Stage,
)
from models.tables import Onboarding
from tests.conftest import (
    Mailbox,
    academy,
    deal,
    eventually,
    idle,
    onboarding_input,
    pending,
    reach,
    record_history,
    roster_busy,
    start_in_adopt,
)
from tests.test_deadlines import LADDER_PLAYBOOK, escalation_mails
from tests.test_learning import set_capacity
from workflows.onboarding import OnboardingWorkflow

DAY = timedelta(days=1)
LEAD = "lena.park@example.com"


async def test_paused_time_is_not_quiet_time(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    """1 active day + 20 paused days is 1 day without engagement, not 21 (which would have
    escalated at once on resuming)."""
    handle, _ = await start_in_adopt(time_env, client, worker, LADDER_PLAYBOOK)
    await handle.signal(OnboardingWorkflow.engagement, Engagement(kind=EngagementKind.LOGIN))
    await time_env.sleep(DAY)
    await handle.execute_update(OnboardingWorkflow.pause, PauseClock(by="csm-007", reason="IT"))
    await time_env.sleep(20 * DAY)
    resumed = await handle.execute_update(OnboardingWorkflow.resume, ResumeClock(by="csm-007"))
    assert resumed.risk.level is RiskLevel.LOW, resumed.risk.reasons
    await idle(handle)
    assert escalation_mails(mailbox) == []
    await time_env.sleep(6 * DAY + timedelta(hours=1))  # 7 active days: medium, not high
    status = await handle.query(OnboardingWorkflow.status)
    assert status.risk.reasons == ["no engagement for 7 days"]
    assert escalation_mails(mailbox) == []
    await handle.terminate("test over")


async def test_a_pause_gives_the_escalation_its_time_again(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, LADDER_PLAYBOOK)
    await time_env.sleep(14 * DAY + timedelta(hours=1))  # raised, told the CSM; 2 days to ack
    await eventually(lambda: escalation_mails(mailbox) == ["onboarding-acme:escalation:1:csm"])
    await time_env.sleep(DAY)
    await handle.execute_update(OnboardingWorkflow.pause, PauseClock(by="csm-007", reason="IT"))
    await time_env.sleep(10 * DAY)
    await handle.execute_update(OnboardingWorkflow.resume, ResumeClock(by="csm-007"))
    await time_env.sleep(12 * timedelta(hours=1))  # 1.5 of the 2 days used: nobody else told
    await idle(handle)
    assert escalation_mails(mailbox) == ["onboarding-acme:escalation:1:csm"]
    await time_env.sleep(DAY)  # now the 2 days are up
    await eventually(lambda: "onboarding-acme:escalation:1:cs_lead" in escalation_mails(mailbox))
    await record_history(handle, "onboarding-acme-pause")
    await handle.terminate("test over")


async def test_an_escalation_before_there_is_a_csm_goes_to_the_cs_lead(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    # Still in depart (the contract is not signed): nobody is assigned yet.
    playbook = LADDER_PLAYBOOK.model_copy(
        update={"stages": LADDER_PLAYBOOK.stages | {"depart": LADDER_PLAYBOOK.stages["adopt"]}}
    )
    workflow_input = onboarding_input(deal("acme"))
    workflow_input.playbook = playbook
    handle = await client.start_workflow(
        OnboardingWorkflow.run, workflow_input, id="onboarding-acme", task_queue=worker.task_queue
    )
    await time_env.sleep(14 * DAY + timedelta(hours=1))
    await eventually(lambda: escalation_mails(mailbox) == ["onboarding-acme:escalation:1:cs_lead"])
    assert mailbox.one("onboarding-acme:escalation:1:cs_lead")["To"].addresses[0].addr_spec == LEAD
    status = await handle.query(OnboardingWorkflow.status)
    assert (status.stage, status.csm_id) == (Stage.DEPART, None)
    assert status.escalations[0].notified == ["cs_lead"]
    await handle.terminate("test over")


async def test_reassignment_waits_for_an_automatic_assignment_under_way(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    """Queued at handoff (no capacity); at kickoff the queue is tried again while a CS lead
    reassigns by hand. One after the other: the database and the workflow name one CSM."""
    set_capacity(session, csm_007=0, csm_009=0)
    signed = (await time_env.get_current_time()).astimezone(UTC)
    handle = await client.start_workflow(
        OnboardingWorkflow.run,
        onboarding_input(deal("acme", contract_signed_at=signed)),
        id="onboarding-acme",
        task_queue=worker.task_queue,
    )
    await reach(handle, Stage.KICKOFF)
    await idle(handle)
    set_capacity(session, csm_007=5, csm_009=5)
    with roster_busy():  # the roster is busy when the next try comes
        await handle.signal(OnboardingWorkflow.kickoff_held, MilestoneSignal(by="csm-007"))
        await eventually(lambda: pending(handle, "assign_csm"))
        reassigned = asyncio.create_task(
            handle.execute_update(
                OnboardingWorkflow.reassign_csm,
                ReassignCsm(to="csm-009", reason="Jonas knows them", by="lena"),
            )
        )
        await asyncio.sleep(0.5)
        assert not reassigned.done()  # it waits its turn: not even asked of the roster yet
        assert not await pending(handle, "reassign_csm")
    moved = await reassigned
    assert moved.id == "csm-009"
    await idle(handle)
    status = await handle.query(OnboardingWorkflow.status)
    session.expire_all()
    assert status.csm_id == session.get(Onboarding, "acme").csm_id == "csm-009"
    await handle.terminate("test over")


async def test_outside_timestamps_are_bounded(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, session: Session
) -> None:
    handle, entered = await start_in_adopt(time_env, client, worker, LADDER_PLAYBOOK)
    started = (await handle.query(OnboardingWorkflow.status)).history[0].entered_at

    # A person is told why not.
    for at, reason in (
        (datetime(2001, 1, 1, tzinfo=UTC), "is before what it follows"),
        (entered + 30 * DAY, "is in the future"),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                OnboardingWorkflow.complete_milestone,
                CompleteMilestone(milestone=Milestone.INTEGRATION_DONE, by="csm-007", at=at),
            )
        assert reason in refused.value.cause.message

    # A system's signal cannot be refused: its time is bounded instead, never taken as given.
    await handle.signal(
        OnboardingWorkflow.engagement,
        Engagement(kind=EngagementKind.LOGIN, at=datetime(2036, 1, 1, tzinfo=UTC)),
    )
    await handle.signal(
        OnboardingWorkflow.integration_done,
        MilestoneSignal(by="product", at=datetime(2001, 1, 1, tzinfo=UTC)),
    )
    status = await reach(handle, Stage.REVIEW)
    done = status.milestones[Milestone.INTEGRATION_DONE].at
    assert done >= status.milestones[Milestone.KICKOFF_HELD].at >= started
    assert status.last_engagement_at is not None and status.last_engagement_at <= entered + DAY
    await time_env.sleep(15 * DAY)  # a 2036 login would have kept the risk low
    status = await handle.query(OnboardingWorkflow.status)
    assert status.risk.level is RiskLevel.HIGH
    await idle(handle)
    session.expire_all()
    row = session.get(Onboarding, "acme")
    assert row.first_value_at >= row.contract_signed_at  # time to first value is never negative
    await handle.terminate("test over")


async def test_a_change_made_while_a_pass_is_under_way_is_looked_at(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    """A user added while the pass that grants another is still sending its mail is granted
    by the next pass, not left waiting for the next timer (days away)."""
    from models.journey import Contact, UsersAdded
    from tests.test_learning import grants

    handle, _ = await start_in_adopt(time_env, client, worker)
    mailbox.open.clear()
    try:
        first = UsersAdded(users=[Contact(name="Ana", email="ana@acme.example")], by="csm")
        await handle.signal(OnboardingWorkflow.users_added, first)
        await eventually(lambda: mailbox.held > 0)  # that pass is sending Ana's invitation
        second = UsersAdded(users=[Contact(name="Bo", email="bo@acme.example")], by="csm")
        await handle.signal(OnboardingWorkflow.users_added, second)
    finally:
        mailbox.open.set()
    await eventually(lambda: "bo@acme.example" in grants(session))
    await eventually(lambda: academy("bo@acme.example") in mailbox.received())
    await handle.terminate("test over")
