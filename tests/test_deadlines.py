"""Deadlines, reminders, extensions, the paused clock and cancellation, across simulated
weeks on the time-skipping server, asserting the exact mails and rows."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.db import onboarding_row
from models.journey import (
    Acknowledge,
    Cancel,
    CancelReason,
    ChampionChanged,
    ChampionLossReason,
    CompleteTask,
    Contact,
    Engagement,
    EngagementKind,
    ExtendDeadline,
    Milestone,
    PauseClock,
    ResumeClock,
    RiskLevel,
    SetChampion,
    Stage,
    TaskSignal,
)
from models.playbook import EscalationPolicy, LadderStep, PlaybookFile, RiskThresholds
from models.tables import EscalationLog, Onboarding, RiskChange, Task
from tests.conftest import Mailbox, eventually, reach, record_history, start_in_adopt
from workflows.onboarding import OnboardingWorkflow

# A small playbook: the deal is signed, kickoff is automated, so the onboarding sits in Adopt
# from the start with one customer task due after 7 days.
PLAYBOOK = PlaybookFile.model_validate(
    {
        "stages": {
            "depart": {"deadline": "14d"},
            "handoff": {"deadline": "2d"},
            "kickoff": {"deadline": "3d", "automated": True},
            "adopt": {
                "deadline": "30d",
                "tasks": [{"id": "add-users", "title": "Add your users", "due": "7d"}],
            },
            "review": {"deadline": "14d"},
            "expand": {"deadline": "7d"},
        },
        "reminders": {"before": ["2d"], "at_due": True, "overdue_every": "3d", "overdue_max": 2},
        "max_extension": "14d",
    }
).resolve("test", "high")

KEY = "onboarding-acme:adopt:task:add-users:reminder:{}"
CHAMPION = "kenji.mori@acme-logistics.example"
DAY = timedelta(days=1)


def reminders(mailbox: Mailbox) -> list[str]:
    return [k for k in mailbox.received() if ":task:add-users:reminder:" in k]


async def test_reminders_before_at_and_after_the_deadline_and_none_once_done(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, entered = await start_in_adopt(time_env, client, worker, PLAYBOOK)
    task = (await handle.query(OnboardingWorkflow.status)).tasks[0]
    assert task.id == "add-users" and task.due_at == entered + 7 * DAY

    await time_env.sleep(4 * DAY)
    assert reminders(mailbox) == []

    await time_env.sleep(1 * DAY + timedelta(hours=1))  # day 5: two days before
    await eventually(lambda: reminders(mailbox) == [KEY.format(1)])
    first = mailbox.one(KEY.format(1))
    assert first["To"].addresses[0].addr_spec == CHAMPION
    assert first["Subject"] == "Reminder: Add your users (Acme Logistics GmbH)"

    await time_env.sleep(2 * DAY)  # day 7: due
    await eventually(lambda: reminders(mailbox) == [KEY.format(1), KEY.format(2)])
    status = await handle.query(OnboardingWorkflow.status)
    assert status.overdue == ["add-users"]

    await time_env.sleep(3 * DAY)  # day 10: first overdue reminder
    await eventually(lambda: len(reminders(mailbox)) == 3)
    assert mailbox.one(KEY.format(3))["Subject"].startswith("Overdue: Add your users")

    done = await handle.execute_update(
        OnboardingWorkflow.complete_task, CompleteTask(task_id="add-users", by="csm-007")
    )
    assert done.done_at is not None
    await time_env.sleep(10 * DAY)  # day 13 would have been the second overdue reminder
    assert reminders(mailbox) == [KEY.format(n) for n in (1, 2, 3)]
    status = await handle.query(OnboardingWorkflow.status)
    assert status.overdue == [] and status.stage is Stage.ADOPT

    session.expire_all()
    row = session.exec(select(Task).where(Task.task_id == "add-users")).one()
    assert row.done_at == done.done_at and row.due_at == entered + 7 * DAY
    await handle.terminate("test over")


async def test_an_extended_deadline_moves_the_reminders(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, entered = await start_in_adopt(time_env, client, worker, PLAYBOOK)
    await time_env.sleep(1 * DAY)
    moved = await handle.execute_update(
        OnboardingWorkflow.extend_deadline,
        ExtendDeadline(task_id="add-users", extend_by=7 * DAY, reason="holiday", by="csm-007"),
    )
    assert moved.due_at == entered + 14 * DAY

    await time_env.sleep(10 * DAY)  # day 11: the old due date (7) has passed silently
    assert reminders(mailbox) == []
    await time_env.sleep(2 * DAY)  # day 13: two days before the new due date
    await eventually(lambda: reminders(mailbox) == [KEY.format(1)])
    assert "is due on" in mailbox.one(KEY.format(1)).get_body(("plain",)).get_content()
    session.expire_all()
    assert session.exec(select(Task)).one().due_at == entered + 14 * DAY

    # The playbook allows 14 days in total; 7 are used.
    with pytest.raises(WorkflowUpdateFailedError) as too_far:
        await handle.execute_update(
            OnboardingWorkflow.extend_deadline,
            ExtendDeadline(task_id="add-users", extend_by=8 * DAY, reason="more", by="csm-007"),
        )
    assert "; 7 days is left" in too_far.value.cause.message
    with pytest.raises(WorkflowUpdateFailedError) as past:
        await handle.execute_update(
            OnboardingWorkflow.extend_deadline,
            ExtendDeadline(task_id="add-users", due_at=entered, reason="oops", by="csm-007"),
        )
    assert "in the past" in past.value.cause.message
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await handle.execute_update(
            OnboardingWorkflow.extend_deadline,
            ExtendDeadline(task_id="add-user", extend_by=DAY, reason="typo", by="csm-007"),
        )
    assert "unknown task 'add-user'" in unknown.value.cause.message
    assert "add-users" in unknown.value.cause.message
    assert (await handle.query(OnboardingWorkflow.status)).tasks[0].due_at == entered + 14 * DAY
    await handle.terminate("test over")


def lapses_at(session: Session) -> datetime:
    session.expire_all()
    return onboarding_row(session, "acme").lapses_at


async def test_a_paused_clock_sends_nothing_and_shifts_deadlines(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, entered = await start_in_adopt(time_env, client, worker, PLAYBOOK)
    lapses_before = lapses_at(session)
    await time_env.sleep(1 * DAY)
    paused = await handle.execute_update(
        OnboardingWorkflow.pause, PauseClock(by="csm-007", reason="waiting for their IT security")
    )
    assert paused.paused_since is not None

    await time_env.sleep(10 * DAY)  # day 11: without the pause, three reminders by now
    assert reminders(mailbox) == []
    resumed = await handle.execute_update(OnboardingWorkflow.resume, ResumeClock(by="csm-007"))
    assert resumed.paused_since is None
    shifted = resumed.tasks[0].due_at
    assert entered + 17 * DAY <= shifted <= entered + 17 * DAY + timedelta(minutes=1)
    assert resumed.overdue == []
    # The scorecard's lapse moment moves with the paused time too.
    await eventually(lambda: lapses_at(session) != lapses_before)
    moved = lapses_at(session) - lapses_before
    assert 10 * DAY <= moved <= 10 * DAY + timedelta(minutes=1)

    await time_env.sleep(3 * DAY)  # day 14: still more than two days before
    assert reminders(mailbox) == []
    await time_env.sleep(1 * DAY + timedelta(hours=1))  # day 15: two days before
    await eventually(lambda: reminders(mailbox) == [KEY.format(1)])
    await handle.terminate("test over")


async def test_cancel_mid_adopt_thanks_the_customer_and_stops_everything(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, PLAYBOOK)
    await time_env.sleep(5 * DAY + timedelta(hours=1))
    await eventually(lambda: reminders(mailbox) == [KEY.format(1)])

    await handle.execute_update(
        OnboardingWorkflow.cancel,
        Cancel(reason=CancelReason.PRICE, note="budget cut for 2027", by="csm-007"),
    )
    final = await handle.result()

    assert final.stage is Stage.CANCELLED
    assert final.cancellation.reason is CancelReason.PRICE
    assert [v.stage for v in final.history][-2:] == [Stage.ADOPT, Stage.CANCELLED]
    farewell = mailbox.one("onboarding-acme:cancelled:farewell")
    assert farewell["To"].addresses[0].addr_spec == CHAMPION
    assert "https://survey.example.com/exit" in farewell.get_body(("plain",)).get_content()

    await time_env.sleep(20 * DAY)
    assert reminders(mailbox) == [KEY.format(1)]
    with pytest.raises(RPCError):
        await client.get_workflow_handle("everboarding-acme").describe()
    session.expire_all()
    row = session.get(Onboarding, "acme")
    assert (row.stage, row.cancel_reason, row.cancel_note) == (
        "cancelled",
        "price",
        "budget cut for 2027",
    )
    assert row.completed_at is None and row.cancelled_at is not None
    await record_history(handle, "onboarding-acme-cancel")


async def test_task_done_signal_is_kept_once_and_unknown_ones_are_ignored(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, PLAYBOOK)
    await handle.signal(OnboardingWorkflow.task_done, TaskSignal(task_id="nope", by="product"))
    await handle.signal(OnboardingWorkflow.task_done, TaskSignal(task_id="add-users", by="product"))
    await handle.signal(OnboardingWorkflow.task_done, TaskSignal(task_id="add-users", by="again"))

    async def done() -> bool:
        return (await handle.query(OnboardingWorkflow.status)).tasks[0].done_by == "product"

    await eventually(done)
    with pytest.raises(WorkflowUpdateFailedError) as already:
        await handle.execute_update(
            OnboardingWorkflow.complete_task, CompleteTask(task_id="add-users", by="csm-007")
        )
    assert "already done" in already.value.cause.message and "by product" in (
        already.value.cause.message
    )
    await time_env.sleep(12 * DAY)
    assert reminders(mailbox) == []
    await handle.terminate("test over")


# Risk driven by quiet time only (7 days medium, 14 days high), a two-rung ladder.
LADDER_PLAYBOOK = PLAYBOOK.model_copy(
    update={
        "risk": RiskThresholds(
            missed_medium=99, missed_high=99, unanswered_medium=99, unanswered_high=99
        ),
        "escalation": EscalationPolicy(
            at="high",
            ladder=[
                LadderStep(role="csm", ack_within=2 * DAY),
                LadderStep(role="cs_lead", name="Lena Park", email="lena.park@example.com"),
            ],
        ),
    }
)
CSM = "mei.tanaka@example.com"
LEAD = "lena.park@example.com"


def escalation_mails(mailbox: Mailbox) -> list[str]:
    return [k for k in mailbox.received() if ":escalation:" in k]


async def test_inactivity_climbs_the_ladder_until_acknowledged(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
    chat: tuple[list[dict], str],
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, LADDER_PLAYBOOK)
    await handle.signal(OnboardingWorkflow.engagement, Engagement(kind=EngagementKind.LOGIN))

    await time_env.sleep(7 * DAY + timedelta(hours=1))
    status = await handle.query(OnboardingWorkflow.status)
    assert status.risk.level is RiskLevel.MEDIUM
    assert status.risk.reasons == ["no engagement for 7 days"]
    assert escalation_mails(mailbox) == []

    await time_env.sleep(7 * DAY)  # day 14: high, the CSM is told
    await eventually(lambda: escalation_mails(mailbox) == ["onboarding-acme:escalation:1:csm"])
    mail = mailbox.one("onboarding-acme:escalation:1:csm")
    assert mail["To"].addresses[0].addr_spec == CSM
    assert "no engagement for 14 days" in mail.get_content()

    await time_env.sleep(2 * DAY + timedelta(hours=1))  # no ack within 2 days: the CS lead
    await eventually(lambda: len(escalation_mails(mailbox)) == 2)
    assert mailbox.one("onboarding-acme:escalation:1:cs_lead")["To"].addresses[0].addr_spec == LEAD
    # The same escalation reached chat (where internal people are), once per rung.
    posted = chat[0]
    assert [p["title"] for p in posted] == ["Escalation #1: Acme Logistics GmbH at high risk"] * 2
    assert "no engagement for 14 days" in posted[0]["message"]
    assert "now with cs_lead" in posted[1]["message"]

    acked = await handle.execute_update(
        OnboardingWorkflow.acknowledge_escalation,
        Acknowledge(by="lena", note="called their COO"),
    )
    assert acked.notified == ["csm", "cs_lead"]
    await time_env.sleep(10 * DAY)
    assert len(escalation_mails(mailbox)) == 2  # no new escalation while risk stays high
    status = await handle.query(OnboardingWorkflow.status)
    assert status.escalations[0].acknowledged_by == "lena"

    session.expire_all()
    rows = session.exec(select(EscalationLog)).all()
    assert [(r.number, r.level, r.notified, r.acknowledged_by) for r in rows] == [
        (1, 1, ["csm", "cs_lead"], "lena")
    ]
    levels = [r.level for r in session.exec(select(RiskChange).order_by(RiskChange.at))]
    assert levels == ["medium", "high"]
    await record_history(handle, "onboarding-acme-escalation")
    await handle.terminate("test over")


async def test_an_ack_stops_the_ladder(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, LADDER_PLAYBOOK)
    await time_env.sleep(14 * DAY + timedelta(hours=1))
    await eventually(lambda: escalation_mails(mailbox) == ["onboarding-acme:escalation:1:csm"])
    await handle.execute_update(
        OnboardingWorkflow.acknowledge_escalation, Acknowledge(by="csm-007", note="on it")
    )
    await time_env.sleep(5 * DAY)
    assert escalation_mails(mailbox) == ["onboarding-acme:escalation:1:csm"]
    with pytest.raises(WorkflowUpdateFailedError) as nothing_open:
        await handle.execute_update(
            OnboardingWorkflow.acknowledge_escalation, Acknowledge(by="csm-007")
        )
    assert "no open escalation" in nothing_open.value.cause.message
    await handle.terminate("test over")


async def test_champion_left_escalates_at_once_and_the_new_one_gets_the_reminders(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, LADDER_PLAYBOOK)
    await time_env.sleep(1 * DAY)
    await handle.signal(
        OnboardingWorkflow.champion_changed, ChampionChanged(reason=ChampionLossReason.LEFT)
    )
    await eventually(lambda: escalation_mails(mailbox) == ["onboarding-acme:escalation:1:csm"])
    status = await handle.query(OnboardingWorkflow.status)
    assert status.risk.level is RiskLevel.HIGH
    assert status.risk.reasons[0].startswith("champion left on ")
    await eventually(lambda: "onboarding-acme:champion:ask:1" in mailbox.received())
    assert CSM in str(mailbox.one("onboarding-acme:champion:ask:1")["To"])

    await handle.execute_update(
        OnboardingWorkflow.set_champion,
        SetChampion(
            champion=Contact(name="Aiko Sato", email="aiko@acme-logistics.example"), by="csm-007"
        ),
    )
    await time_env.sleep(4 * DAY + timedelta(hours=1))  # day 5: two days before add-users
    await eventually(lambda: reminders(mailbox) == [KEY.format(1)])
    assert mailbox.one(KEY.format(1))["To"].addresses[0].addr_spec == "aiko@acme-logistics.example"
    await record_history(handle, "onboarding-acme-champion")
    await handle.terminate("test over")


async def test_a_tech_touch_customer_at_high_risk_gets_a_named_csm_and_human_reminders(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    playbook = LADDER_PLAYBOOK.model_copy(
        update={
            "escalation": LADDER_PLAYBOOK.escalation.model_copy(
                update={"switch_to_high_touch": True}
            )
        }
    )
    # Tech-touch: assigned the pooled CSM at handoff. At high risk, a named CSM: Jonas
    # (csm-009) serves high-touch and knows retail, Globex's industry.
    handle, _ = await start_in_adopt(time_env, client, worker, playbook, "globex")
    assert (await handle.query(OnboardingWorkflow.status)).csm_id == "csm-pool"
    await time_env.sleep(1 * DAY)
    new = Contact(name="Rui Costa", email="rui@globex-bakery.example")
    await handle.signal(
        OnboardingWorkflow.champion_changed,
        ChampionChanged(reason=ChampionLossReason.MOVED, new_champion=new),
    )
    await eventually(lambda: "onboarding-globex:high-touch:brief" in mailbox.received())
    jonas = "jonas.berg@example.com"
    assert jonas in str(mailbox.one("onboarding-globex:high-touch:brief")["To"])
    status = await handle.query(OnboardingWorkflow.status)
    assert status.csm_id == "csm-009" and status.high_touch_since is not None
    session.expire_all()
    assert session.get(Onboarding, "globex").csm_id == "csm-009"

    await time_env.sleep(4 * DAY + timedelta(hours=1))  # day 5: the add-users reminder
    key = "onboarding-globex:adopt:task:add-users:reminder:1"
    await eventually(lambda: key in mailbox.received())
    reminder = mailbox.one(key)
    assert reminder["To"].addresses[0].addr_spec == "rui@globex-bakery.example"
    assert reminder["Cc"].addresses[0].addr_spec == jonas
    await handle.terminate("test over")


async def test_the_playbook_can_let_the_last_required_task_complete_the_stage(
    time_env: WorkflowEnvironment, client: Client, worker: Worker
) -> None:
    stages = dict(PLAYBOOK.stages)
    stages["adopt"] = stages["adopt"].model_copy(update={"tasks_complete_stage": True})
    handle, _ = await start_in_adopt(
        time_env, client, worker, PLAYBOOK.model_copy(update={"stages": stages})
    )
    await handle.execute_update(
        OnboardingWorkflow.complete_task, CompleteTask(task_id="add-users", by="csm-007")
    )

    status = await reach(handle, Stage.REVIEW)
    assert status.milestones[Milestone.INTEGRATION_DONE].by == "checklist"
    await handle.terminate("test over")
