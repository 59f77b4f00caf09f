"""The journey end to end on the time-skipping test server, with real DB and real SMTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.journey import (
    JOURNEY,
    CompleteMilestone,
    Milestone,
    MilestoneSignal,
    RiskAssessment,
    Stage,
)
from models.tables import Onboarding, StageTransition, Task
from tests.conftest import (
    Mailbox,
    academy,
    deal,
    eventually,
    onboarding_input,
    reach,
    record_history,
    sent_keys,
)
from workflows.onboarding import OnboardingWorkflow

CHAMPION = "kenji.mori@acme-logistics.example"
CSM = "mei.tanaka@example.com"


async def start(client: Client, worker: Worker, request=None) -> WorkflowHandle:
    request = request or deal("acme")
    return await client.start_workflow(
        OnboardingWorkflow.run,
        onboarding_input(request),
        id=f"onboarding-{request.account_id}",
        task_queue=worker.task_queue,
    )


async def test_happy_path_across_weeks(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle = await start(client, worker)

    await reach(handle, Stage.DEPART)
    await eventually(lambda: mailbox.to(CHAMPION))
    assert mailbox.one("onboarding-acme:depart:what-to-expect")["To"].addresses[0].username == (
        "kenji.mori"
    )

    await handle.signal(OnboardingWorkflow.contract_signed, MilestoneSignal(by="ae-001"))
    status = await reach(handle, Stage.KICKOFF)
    assert status.csm_id == "csm-007"
    await eventually(lambda: "onboarding-acme:kickoff:welcome" in mailbox.received())
    brief = mailbox.one("onboarding-acme:handoff:brief")
    assert CSM in str(brief["To"])
    assert "Replace the spreadsheet-based shipment tracking" in brief.get_content()
    welcome = mailbox.one("onboarding-acme:kickoff:welcome")
    assert welcome["Subject"] == "Welcome aboard, Kenji!"
    assert "Add your team's users (you, by" in welcome.get_body(("plain",)).get_content()
    assert welcome.get_body(("html",)) is not None

    await time_env.sleep(timedelta(days=12))
    result = await handle.execute_update(
        OnboardingWorkflow.complete_milestone,
        CompleteMilestone(milestone=Milestone.KICKOFF_HELD, by="csm-007"),
    )
    assert result.stage is Stage.KICKOFF
    await reach(handle, Stage.ADOPT)

    await time_env.sleep(timedelta(days=25))  # a multi-week gap while the customer integrates
    await handle.signal(OnboardingWorkflow.integration_done, MilestoneSignal(by="csm-007"))
    status = await reach(handle, Stage.REVIEW)
    assert status.first_value_at is not None
    await eventually(lambda: "onboarding-acme:review:checklist" in mailbox.received())
    assert CSM in str(mailbox.one("onboarding-acme:review:checklist")["To"])

    await time_env.sleep(timedelta(days=5))
    await handle.execute_update(
        OnboardingWorkflow.complete_milestone,
        CompleteMilestone(milestone=Milestone.REVIEW_PASSED, by="csm-007", note="all answered"),
    )
    final = await handle.result()

    assert final.stage is Stage.COMPLETED
    assert [v.stage for v in final.history] == JOURNEY
    assert all(v.exited_at for v in final.history[:-1])
    adopt = next(v for v in final.history if v.stage is Stage.ADOPT)
    assert adopt.exited_at - adopt.entered_at >= timedelta(days=25)
    assert final.everboarding_workflow_id == "everboarding-acme"
    # Weeks went by in adopt with its tasks open: finished, nothing is overdue any more and
    # there is no live risk (the escalations it had stay in the record).
    assert final.overdue == [] and final.next_deadline is None
    assert final.risk == RiskAssessment()

    # The read model tells the same story.
    session.expire_all()
    row = session.get(Onboarding, "acme")
    assert row.stage == "completed" and row.csm_id == "csm-007"
    assert row.contract_signed_at and row.kickoff_at and row.first_value_at and row.completed_at
    assert row.first_value_at - row.contract_signed_at >= timedelta(days=37)
    assert row.handoff_notes == deal("acme").goals
    transitions = session.exec(select(StageTransition).order_by(StageTransition.entered_at)).all()
    assert [t.stage for t in transitions] == [s.value for s in JOURNEY][:-1]
    assert all(t.exited_at is not None for t in transitions)
    tasks = session.exec(select(Task)).all()
    assert {t.task_id for t in tasks} == {
        "kickoff-call",
        "academy-access",
        "add-users",
        "configure",
        "integration-test",
        "open-questions",
    }
    await eventually(lambda: "everboarding-acme:keep-learning" in sent_keys(session))
    # (Weeks without engagement bring reminders and an escalation: tests/test_deadlines.py.)
    journey_mails = [
        k for k in sent_keys(session) if ":reminder:" not in k and ":escalation:" not in k
    ]
    assert sorted(journey_mails) == sorted(
        [
            "onboarding-acme:depart:what-to-expect",
            "onboarding-acme:handoff:brief",
            academy("kenji.mori@acme-logistics.example"),
            "onboarding-acme:kickoff:welcome",
            "onboarding-acme:review:checklist",
            "onboarding-acme:expand:next-steps",
            "everboarding-acme:keep-learning",
        ]
    )

    # Everboarding outlives its parent and keeps its cadence.
    child = client.get_workflow_handle("everboarding-acme")
    assert (await child.describe()).status is WorkflowExecutionStatus.RUNNING
    assert "everboarding-acme:digest:1" not in mailbox.received()
    await time_env.sleep(timedelta(days=31))
    await eventually(lambda: "everboarding-acme:digest:1" in mailbox.received())
    assert (await child.describe()).status is WorkflowExecutionStatus.RUNNING
    await child.terminate("test over")
    # Asked after the end (queries last: on this server they let time run on), the status and
    # the run's details in the Web UI say it is over: no overdue steps, no live risk.
    after = await handle.query(OnboardingWorkflow.status)
    assert after.overdue == [] and after.risk == RiskAssessment()
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    details = metadata.current_details
    assert "**Overdue:** nothing" in details and "**Risk:** -" in details
    assert "**Clock:** stopped (completed)" in details
    await record_history(handle, "onboarding-acme-finished")


async def test_early_and_duplicate_milestones_are_kept_once_and_applied_in_order(
    client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    handle = await start(client, worker)
    await reach(handle, Stage.DEPART)

    # The product reports the integration before anyone held the kickoff: kept, not applied.
    await handle.signal(OnboardingWorkflow.integration_done, MilestoneSignal(by="product"))
    await handle.signal(OnboardingWorkflow.contract_signed, MilestoneSignal(by="ae-001"))
    await handle.signal(OnboardingWorkflow.contract_signed, MilestoneSignal(by="esign-retry"))
    status = await reach(handle, Stage.KICKOFF)
    assert status.pending_milestones == [Milestone.INTEGRATION_DONE]
    assert status.milestones[Milestone.CONTRACT_SIGNED].by == "ae-001"
    assert status.first_value_at is None

    await handle.signal(OnboardingWorkflow.kickoff_held, MilestoneSignal(by="csm-007"))
    status = await reach(handle, Stage.REVIEW)  # adopt's milestone was already there
    assert status.pending_milestones == []
    assert status.first_value_at == status.milestones[Milestone.INTEGRATION_DONE].at
    assert [v.stage for v in status.history] == JOURNEY[:5]
    await handle.terminate("test over")


async def test_rejected_update_names_stage_and_missing_milestones_and_changes_nothing(
    client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    handle = await start(client, worker)
    await handle.signal(OnboardingWorkflow.contract_signed, MilestoneSignal(by="ae-001"))
    await reach(handle, Stage.KICKOFF)
    await eventually(lambda: "onboarding-acme:kickoff:welcome" in mailbox.received())
    before = await handle.query(OnboardingWorkflow.status)

    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update(
            OnboardingWorkflow.complete_milestone,
            CompleteMilestone(milestone=Milestone.REVIEW_PASSED, by="csm-007"),
        )
    message = rejected.value.cause.message
    assert "stage kickoff" in message
    assert "kickoff-held, integration-done" in message

    with pytest.raises(WorkflowUpdateFailedError) as duplicate:
        await handle.execute_update(
            OnboardingWorkflow.complete_milestone,
            CompleteMilestone(milestone=Milestone.CONTRACT_SIGNED, by="csm-007"),
        )
    assert "already recorded" in duplicate.value.cause.message and "ae-001" in (
        duplicate.value.cause.message
    )
    assert await handle.query(OnboardingWorkflow.status) == before
    await handle.terminate("test over")


async def test_tech_touch_kickoff_is_automated_and_a_signed_deal_skips_the_wait(
    client: Client, worker: Worker, mailbox: Mailbox, session: Session
) -> None:
    request = deal("globex")  # tech-touch, basic plan, contract_signed_at given
    handle = await start(client, worker, request)

    status = await reach(handle, Stage.ADOPT)
    assert status.milestones[Milestone.CONTRACT_SIGNED].at == request.contract_signed_at
    assert status.milestones[Milestone.KICKOFF_HELD].by == "playbook"
    assert status.csm_id == "csm-pool"  # the only CSM serving tech-touch
    await eventually(lambda: "onboarding-globex:kickoff:welcome" in mailbox.received())
    assert "onboarding-globex:depart:what-to-expect" in mailbox.received()
    session.expire_all()
    row = session.get(Onboarding, "globex")
    assert row.contract_signed_at == request.contract_signed_at
    tasks = {t.task_id for t in session.exec(select(Task).where(Task.account_id == "globex"))}
    assert "kickoff-call" not in tasks and {"academy-access", "add-users"} <= tasks
    await handle.terminate("test over")
