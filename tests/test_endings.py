"""Every way an onboarding ends, on the time-skipping server with a real database and SMTP:
cancelled by the CSM mid-pass, cancelled from Temporal, lapsed, terminated and started again.
Afterwards the row, the CSM's load and the scorecard agree."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import Session, select
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.roster import active_loads
from models.journey import (
    Cancel,
    CancelReason,
    CompleteMilestone,
    Contact,
    Engagement,
    EngagementKind,
    Milestone,
    MilestoneSignal,
    Stage,
    UsersAdded,
)
from models.tables import Notification, Onboarding, StageTransition, Task
from reports import scorecard
from reports.figures import Completion
from tests.conftest import (
    Mailbox,
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
from tests.test_deadlines import LADDER_PLAYBOOK, PLAYBOOK
from workflows.onboarding import OnboardingWorkflow

DAY = timedelta(days=1)
CHAMPION = "kenji.mori@acme-logistics.example"
CSM = "mei.tanaka@example.com"
LEAD = "lena.park@example.com"
ANA = Contact(name="Ana", email="ana@acme.example")


def row(session: Session, account: str = "acme") -> Onboarding:
    session.expire_all()
    found = session.get(Onboarding, account)
    assert found is not None
    return found


def completion(session: Session) -> Completion:
    first = row(session).started_at
    card = scorecard.build(session, first - DAY, first + DAY, as_of=first + 400 * DAY)
    return card.overall.completion


async def test_a_cancel_from_temporal_closes_the_books_tells_the_csm_and_not_the_customer(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker)
    assert active_loads(session) == {"csm-007": 1}

    await handle.cancel()  # as the Web UI's "Request Cancellation" or `temporal workflow cancel`
    with pytest.raises(WorkflowFailureError) as ended:
        await handle.result()
    assert isinstance(ended.value.cause, CancelledError)
    assert (await handle.describe()).status is WorkflowExecutionStatus.CANCELED

    onboarding = row(session)
    assert (onboarding.stage, onboarding.cancel_reason) == ("cancelled", "other")
    assert onboarding.cancel_note == "cancelled in Temporal (Web UI or CLI)"
    assert onboarding.closed_at is not None and onboarding.cancelled_at is not None
    assert active_loads(session) == {}  # Mei's seat is free again
    notice = mailbox.one("onboarding-acme:cancelled:notice")
    assert notice["To"].addresses[0].addr_spec == CSM
    assert notice["Cc"].addresses[0].addr_spec == LEAD  # the standard ladder's CS lead
    assert mailbox.to(CHAMPION) and not any(":cancelled:" in k for k in _to(mailbox, CHAMPION))
    exited = session.exec(select(StageTransition).where(StageTransition.stage == "adopt")).one()
    assert exited.exited_at == onboarding.closed_at
    c = completion(session)
    assert (c.cancelled, c.completed, c.lapsed) == (1, 0, 0)
    await record_history(handle, "onboarding-acme-cancelled-in-temporal")


async def test_a_cancel_from_temporal_takes_the_roster_s_answer_first(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    """Cancelled while the roster chooses the CSM at handoff: the choice is taken (so that
    CSM is told, and their seat freed), no entry action follows, the run ends CANCELED."""
    handle = await client.start_workflow(
        OnboardingWorkflow.run,
        onboarding_input(deal("acme")),
        id="onboarding-acme",
        task_queue=worker.task_queue,
    )
    await reach(handle, Stage.DEPART)
    await idle(handle)
    with roster_busy():
        await handle.signal(OnboardingWorkflow.contract_signed, MilestoneSignal(by="ae-001"))
        await eventually(lambda: pending(handle, "assign_csm"))
        await handle.cancel()
        await asyncio.sleep(0.3)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status is WorkflowExecutionStatus.CANCELED
    notice = mailbox.one("onboarding-acme:cancelled:notice")
    assert notice["To"].addresses[0].addr_spec == CSM  # the CSM the roster had just chosen
    onboarding = row(session)
    assert (onboarding.stage, onboarding.csm_id) == ("cancelled", "csm-007")
    assert onboarding.closed_at is not None and active_loads(session) == {}
    assert "onboarding-acme:kickoff:welcome" not in mailbox.received()  # no entry actions
    assert not session.exec(select(Task)).all()


async def test_a_cancel_from_temporal_answers_an_update_under_way_first(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    from models.journey import ReassignCsm

    handle, _ = await start_in_adopt(time_env, client, worker)
    with roster_busy():  # the roster is busy with the reassignment
        reassigned = asyncio.create_task(
            handle.execute_update(
                OnboardingWorkflow.reassign_csm,
                ReassignCsm(to="csm-009", reason="Jonas knows them", by="lena"),
            )
        )
        await eventually(lambda: pending(handle, "reassign_csm"))
        await handle.cancel()
        await asyncio.sleep(0.3)
    assert (await reassigned).id == "csm-009"  # the lead gets an answer, not a lost update
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert mailbox.one("onboarding-acme:cancelled:notice")["To"].addresses[0].addr_spec == (
        "jonas.berg@example.com"
    )
    onboarding = row(session)
    assert (onboarding.stage, onboarding.csm_id) == ("cancelled", "csm-009")
    assert active_loads(session) == {}
    history = await handle.fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]


async def test_a_cancel_from_temporal_while_a_batch_is_sending_records_after_it(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, PLAYBOOK)
    mailbox.open.clear()
    try:
        weeks = asyncio.create_task(time_env.sleep(5 * DAY + timedelta(hours=1)))
        await eventually(lambda: mailbox.held > 0)  # the first add-users reminder, sending
        await handle.cancel()
        await asyncio.sleep(0.3)
    finally:
        mailbox.open.set()
    await weeks
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert "onboarding-acme:adopt:task:add-users:reminder:1" in mailbox.received()
    assert "onboarding-acme:cancelled:notice" in mailbox.received()
    onboarding = row(session)
    assert onboarding.stage == "cancelled" and onboarding.closed_at is not None


def _to(mailbox: Mailbox, address: str) -> list[str]:
    return [str(m["X-Onboarding-Key"]) for m in mailbox.to(address)]


async def test_a_silent_onboarding_lapses_after_every_allowance_and_a_sign_of_life_delays_it(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    # Adopt's deadline 30 d, max_extension 14 d, lapse_after 14 d (the default): a silent
    # customer closes 58 days after entering Adopt; a login on day 50 moves that to day 64.
    handle, entered = await start_in_adopt(time_env, client, worker, PLAYBOOK)
    status = await handle.query(OnboardingWorkflow.status)
    assert status.closes_at == entered + 58 * DAY
    await time_env.sleep(50 * DAY)
    await handle.signal(OnboardingWorkflow.engagement, Engagement(kind=EngagementKind.LOGIN))
    await eventually(lambda: _closes_around(handle, entered + 64 * DAY))
    await time_env.sleep(10 * DAY)  # day 60: past the first date, not the second
    assert (await handle.query(OnboardingWorkflow.status)).stage is Stage.ADOPT
    assert row(session).closed_at is None

    await time_env.sleep(5 * DAY)  # day 65
    final = await handle.result()
    assert final.stage is Stage.LAPSED
    assert [v.stage for v in final.history][-2:] == [Stage.ADOPT, Stage.LAPSED]
    onboarding = row(session)
    assert onboarding.stage == "lapsed" and onboarding.lapsed_at == onboarding.closed_at
    assert onboarding.lapsed_at >= entered + 64 * DAY
    assert active_loads(session) == {}
    notice = mailbox.one("onboarding-acme:lapsed:notice")
    assert notice["To"].addresses[0].addr_spec == CSM
    assert "no sign of life since" in notice.get_content()
    assert not any(":lapsed:" in key or ":farewell" in key for key in _to(mailbox, CHAMPION))
    c = completion(session)
    assert (c.lapsed, c.completed, c.cancelled) == (1, 0, 0)
    await record_history(handle, "onboarding-acme-lapsed")


async def _closes_around(handle, expected) -> bool:
    closes_at = (await handle.query(OnboardingWorkflow.status)).closes_at
    return closes_at is not None and expected <= closes_at <= expected + timedelta(hours=1)


async def test_a_paused_onboarding_never_lapses(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, session: Session
) -> None:
    from models.journey import PauseClock

    handle, _ = await start_in_adopt(time_env, client, worker, PLAYBOOK)
    await handle.execute_update(
        OnboardingWorkflow.pause, PauseClock(by="csm-007", reason="their migration project")
    )
    await time_env.sleep(120 * DAY)
    status = await handle.query(OnboardingWorkflow.status)
    assert (status.stage, status.closes_at) == (Stage.ADOPT, None)
    assert row(session).closed_at is None
    await handle.terminate("test over")


async def test_a_cancel_accepted_mid_pass_stops_the_rest_of_it(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
) -> None:
    """A tech-touch customer at high risk: the pass asks the roster for a named CSM, then
    would escalate. The CSM cancels while the roster is busy: no brief, no escalation."""
    playbook = LADDER_PLAYBOOK.model_copy(
        update={
            "escalation": LADDER_PLAYBOOK.escalation.model_copy(
                update={"switch_to_high_touch": True}
            )
        }
    )
    handle, _ = await start_in_adopt(time_env, client, worker, playbook, "globex")
    # Quiet for 14 days: high risk. (Time stands still while the roster holds the pass.)
    weeks = asyncio.create_task(time_env.sleep(14 * DAY + timedelta(hours=1)))
    with roster_busy():
        await eventually(lambda: pending(handle, "assign_csm"))
        await handle.execute_update(
            OnboardingWorkflow.cancel, Cancel(reason=CancelReason.NO_VALUE, by="csm-pool")
        )
        # Being cancelled (the pass has not finished): a person's changes are refused.
        for update, arg in (
            (
                OnboardingWorkflow.complete_milestone,
                CompleteMilestone(milestone=Milestone.INTEGRATION_DONE, by="csm-pool"),
            ),
            (OnboardingWorkflow.add_users, UsersAdded(users=[ANA], by="csm-pool")),
        ):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(update, arg)
            assert "the onboarding of globex is being cancelled" in refused.value.cause.message
    await weeks
    final = await handle.result()
    assert final.stage is Stage.CANCELLED
    sent = mailbox.received()
    assert "onboarding-globex:cancelled:farewell" in sent
    assert not [k for k in sent if ":escalation:" in k or ":high-touch:" in k]
    assert final.escalations == []
    assert Milestone.INTEGRATION_DONE not in final.milestones


async def test_a_run_that_is_ending_refuses_milestones_and_users(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker)
    mailbox.open.clear()  # the farewell waits at the mail server: the run is ending
    try:
        await handle.execute_update(
            OnboardingWorkflow.cancel, Cancel(reason=CancelReason.PRICE, by="csm-007")
        )
        await eventually(lambda: mailbox.held > 0)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                OnboardingWorkflow.complete_milestone,
                CompleteMilestone(milestone=Milestone.INTEGRATION_DONE, by="csm-007"),
            )
        assert "the onboarding of acme has ended (cancelled)" in refused.value.cause.message
        late = UsersAdded(users=[ANA], by="csm-007")
        with pytest.raises(WorkflowUpdateFailedError) as too_late:
            await handle.execute_update(OnboardingWorkflow.add_users, late)
        assert "has ended" in too_late.value.cause.message
    finally:
        mailbox.open.set()
    final = await handle.result()
    assert Milestone.INTEGRATION_DONE not in final.milestones
    assert "ana@acme.example" not in final.academy_users


async def test_a_terminated_onboarding_started_again_starts_clean(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, PLAYBOOK)
    await time_env.sleep(5 * DAY + timedelta(hours=1))  # the first add-users reminder
    await eventually(
        lambda: "onboarding-acme:adopt:task:add-users:reminder:1" in mailbox.received()
    )
    await handle.terminate("stuck: restarting it")
    assert row(session).closed_at is None  # terminate cannot be caught: the row stays open

    restarted = await client.start_workflow(
        OnboardingWorkflow.run,
        onboarding_input(deal("acme")),
        id="onboarding-acme",
        task_queue=worker.task_queue,
    )
    await reach(restarted, Stage.DEPART)
    await eventually(lambda: mailbox.received().count("onboarding-acme:depart:what-to-expect") == 2)
    await restarted.signal(OnboardingWorkflow.contract_signed, MilestoneSignal(by="ae-001"))
    await restarted.signal(OnboardingWorkflow.kickoff_held, MilestoneSignal(by="csm-007"))
    entered = (await reach(restarted, Stage.ADOPT)).stage_entered_at
    await time_env.sleep(5 * DAY + timedelta(hours=1))
    # Its own reminders: the same step, under the new run's keys.
    await eventually(
        lambda: mailbox.received().count("onboarding-acme:adopt:task:add-users:reminder:1") == 2
    )
    onboarding = row(session)
    assert onboarding.run_id == restarted.first_execution_run_id
    assert onboarding.started_at > entered - 10 * DAY and onboarding.stage == "adopt"
    tasks = session.exec(select(Task).where(Task.task_id == "add-users")).all()
    assert len(tasks) == 1 and tasks[0].due_at > entered
    keys = session.exec(select(Notification.key)).all()
    assert len({k.split(":")[0] for k in keys if k.startswith("onboarding-acme.")}) == 2
    await restarted.terminate("test over")


async def test_users_added_as_the_onboarding_completes_still_get_access(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, session: Session
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker)
    await handle.signal(OnboardingWorkflow.integration_done, MilestoneSignal(by="se-002"))
    await reach(handle, Stage.REVIEW)
    # In one workflow task: Review passes (Expand and completion follow at once) and a user
    # arrives.
    await asyncio.gather(
        handle.signal(OnboardingWorkflow.review_passed, MilestoneSignal(by="csm-007")),
        handle.signal(
            OnboardingWorkflow.users_added,
            UsersAdded(users=[Contact(name="Late Lu", email="lu@acme.example")], by="crm"),
        ),
    )
    final = await handle.result()
    assert final.stage is Stage.COMPLETED
    assert "lu@acme.example" in final.academy_users


async def test_users_added_after_the_onboarding_completed_are_refused_with_the_reason(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker)
    await handle.signal(OnboardingWorkflow.integration_done, MilestoneSignal(by="se-002"))
    await reach(handle, Stage.REVIEW)
    await idle(handle)
    mailbox.open.clear()  # the last pass's mail waits at the server: completed, not closed
    try:
        await handle.signal(OnboardingWorkflow.review_passed, MilestoneSignal(by="csm-007"))
        await eventually(lambda: mailbox.held > 0)
        await reach(handle, Stage.COMPLETED)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                OnboardingWorkflow.add_users, UsersAdded(users=[ANA], by="csm-007")
            )
        assert "the onboarding of acme has ended (completed)" in refused.value.cause.message
    finally:
        mailbox.open.set()
    final = await handle.result()
    assert ANA.email not in final.academy_users
