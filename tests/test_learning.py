"""The onboarding with its learning path, academy access, the Review gate, CSM capacity and
reassignment, on the time-skipping test server."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.db import make_engine
from infra.settings import Settings
from models.academy import LearningPath
from models.journey import (
    Contact,
    Engagement,
    EngagementKind,
    MilestoneSignal,
    ReassignCsm,
    Stage,
    UsersAdded,
)
from models.tables import AcademyGrant, Csm, Onboarding, Reassignment
from tests.conftest import (
    Mailbox,
    academy,
    deal,
    eventually,
    onboarding_input,
    reach,
    record_history,
    sent_keys,
    start_in_adopt,
)
from worker import build_worker
from workflows.onboarding import OnboardingWorkflow

USERS = [
    Contact(name="Ana Ruiz", email="ana@acme-logistics.example"),
    Contact(name="Bo Chen", email="bo@acme-logistics.example"),
]


def grants(session: Session, account: str = "acme") -> list[str]:
    session.expire_all()
    rows = session.exec(select(AcademyGrant).where(AcademyGrant.account_id == account))
    return sorted(row.email for row in rows)


async def test_every_user_gets_academy_access_once_with_the_courses_of_their_plan(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, users=USERS)
    champion = deal("acme").champion.email
    first = sorted([champion, *(u.email for u in USERS)])
    await eventually(lambda: grants(session) == first)
    # The invitations go out after the grants are on record, in the same batch.
    await eventually(lambda: len([k for k in mailbox.received() if ":academy:" in k]) == 3)
    invite = mailbox.one(academy("ana@acme-logistics.example"))
    text = invite.get_body(("plain",)).get_content()
    assert "Single sign-on and the audit log" in text  # premium includes it
    assert "Shipment tracking end to end" in text  # logistics
    status = await handle.query(OnboardingWorkflow.status)
    assert sorted(status.academy_users) == first
    access = next(t for t in status.tasks if t.id == "academy-access")
    assert access.done_by == "academy"

    # A late user, and one already in: only the new one is granted and invited.
    await handle.signal(
        OnboardingWorkflow.users_added,
        UsersAdded(
            users=[USERS[1], Contact(name="Cy Dorn", email="Cy@Acme-Logistics.example")],
            by="csm-007",
        ),
    )
    await eventually(lambda: "cy@acme-logistics.example" in grants(session))
    assert grants(session) == sorted([*first, "cy@acme-logistics.example"])
    # The invitation is the activity after the grant: wait for it (one per user, by key).
    expected = sorted(academy(e) for e in grants(session))
    await eventually(lambda: sorted(k for k in sent_keys(session) if ":academy:" in k) == expected)
    await record_history(handle, "onboarding-acme-users")
    await handle.terminate("test over")


async def test_a_basic_customer_never_sees_premium_courses(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker, account="globex")
    status = await handle.query(OnboardingWorkflow.status)
    courses = {course.id for course in status.learning}
    assert "getting-started" in courses
    assert not courses & {"sso-and-audit", "automation", "advanced-api", "governance"}
    await eventually(lambda: any(":academy:" in k for k in mailbox.received()))
    invite = next(m for m in mailbox.messages if ":academy:" in m["X-Onboarding-Key"])
    assert "Single sign-on" not in invite.get_body(("plain",)).get_content()
    await handle.terminate("test over")


async def test_review_waits_for_the_gate_course_and_progress_shows_what_is_overdue(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, mailbox: Mailbox
) -> None:
    playbook = onboarding_input(deal("acme")).playbook
    playbook.learning.review_gate = ["getting-started"]
    handle, _ = await start_in_adopt(time_env, client, worker, playbook)
    await time_env.sleep(timedelta(days=8))
    await handle.signal(
        OnboardingWorkflow.engagement,
        Engagement(kind=EngagementKind.COURSE_COMPLETED, value="getting-started/tour"),
    )
    await handle.signal(OnboardingWorkflow.integration_done, MilestoneSignal(by="se-002"))
    await time_env.sleep(timedelta(hours=1))
    status = await handle.query(OnboardingWorkflow.status)
    assert status.stage is Stage.ADOPT
    assert status.waiting_for_courses == ["getting-started"]
    modules = {m.id: m for m in status.learning[0].modules}
    assert modules["tour"].done_at is not None
    assert modules["invite-team"].overdue and not modules["first-project"].overdue

    for module in ("invite-team", "first-project"):
        await handle.signal(
            OnboardingWorkflow.engagement,
            Engagement(kind=EngagementKind.COURSE_COMPLETED, value=f"getting-started/{module}"),
        )
    status = await reach(handle, Stage.REVIEW)
    assert status.waiting_for_courses == []
    assert status.learning[0].done_at is not None
    await handle.terminate("test over")


def set_capacity(session: Session, **capacities: int) -> None:
    for csm_id, capacity in capacities.items():
        row = session.get(Csm, csm_id.replace("_", "-"))
        row.capacity = capacity
        session.add(row)
    session.commit()


async def test_no_capacity_queues_the_account_tells_the_lead_and_reassign_takes_it(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    chat: tuple[list[dict], str],
    session: Session,
) -> None:
    set_capacity(session, csm_007=0, csm_009=0)
    handle, _ = await start_in_adopt(time_env, client, worker)
    status = await handle.query(OnboardingWorkflow.status)
    assert status.csm_pooled and status.csm_id == "queue"
    queued = mailbox.one("onboarding-acme:handoff:brief")
    assert queued["To"].addresses[0].addr_spec == "cs-queue@example.com"
    assert "every CSM serving high-touch is at capacity" in queued.get_content()
    await eventually(lambda: any("queue" in str(m) for m in chat[0]))
    session.expire_all()
    assert session.get(Onboarding, "acme").queued_since is not None

    # Refused while csm-009 has no room: nothing changes.
    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(
            OnboardingWorkflow.reassign_csm,
            ReassignCsm(to="csm-009", reason="Jonas has room", by="lena"),
        )
    assert "csm-009 is at capacity (0 of 0" in str(error.value.cause)
    assert (await handle.query(OnboardingWorkflow.status)).csm_pooled

    set_capacity(session, csm_009=5)
    moved = await handle.execute_update(
        OnboardingWorkflow.reassign_csm,
        ReassignCsm(to="csm-009", reason="Jonas has room", by="lena"),
    )
    assert moved.id == "csm-009" and not moved.pooled
    await eventually(lambda: "onboarding-acme:reassign:1:to" in mailbox.received())
    assert "onboarding-acme:reassign:1:from" not in mailbox.received()  # the queue, not a CSM
    session.expire_all()
    row = session.get(Onboarding, "acme")
    assert (row.csm_id, row.queued_since) == ("csm-009", None)
    await record_history(handle, "onboarding-acme-queued-then-reassigned")
    await handle.terminate("test over")


async def test_reassignment_moves_reminders_and_tells_both_csms(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker)
    assert (await handle.query(OnboardingWorkflow.status)).csm_id == "csm-007"
    for to, reason in (("csm-nobody", "unknown CSM 'csm-nobody'"), ("csm-007", "already with")):
        with pytest.raises(WorkflowUpdateFailedError) as error:
            await handle.execute_update(
                OnboardingWorkflow.reassign_csm, ReassignCsm(to=to, reason="leave", by="lena")
            )
        assert reason in str(error.value.cause)

    await handle.execute_update(
        OnboardingWorkflow.reassign_csm,
        ReassignCsm(to="csm-009", reason="Mei is on parental leave", by="lena"),
    )
    await eventually(lambda: "onboarding-acme:reassign:1:from" in mailbox.received())
    to_new = mailbox.one("onboarding-acme:reassign:1:to")
    assert to_new["To"].addresses[0].addr_spec == "jonas.berg@example.com"
    text = to_new.get_content()
    assert "handed over by Mei Tanaka" in text and "Mei is on parental leave" in text
    assert "Connect your systems and run the integration test" in text  # an open step
    session.expire_all()
    assert [(r.from_csm, r.to_csm) for r in session.exec(select(Reassignment))] == [
        ("csm-007", "csm-009")
    ]

    # The SE-owned integration test is reminded to the CSM: now Jonas, not Mei.
    await time_env.sleep(timedelta(days=41))
    key = next(k for k in mailbox.received() if ":task:integration-test:reminder:" in k)
    assert mailbox.one(key)["To"].addresses[0].addr_spec == "jonas.berg@example.com"
    await handle.terminate("test over")


async def test_an_onboarding_without_a_path_still_runs(
    time_env: WorkflowEnvironment, client: Client, worker: Worker
) -> None:
    """Inputs from before learning paths decode with an empty path."""
    signed = (await time_env.get_current_time()).astimezone(UTC)
    workflow_input = onboarding_input(deal("acme", contract_signed_at=signed))
    workflow_input.path = LearningPath()
    handle = await client.start_workflow(
        OnboardingWorkflow.run, workflow_input, id="onboarding-acme", task_queue=worker.task_queue
    )
    await handle.signal(OnboardingWorkflow.kickoff_held, MilestoneSignal(by="csm-007"))
    status = await reach(handle, Stage.ADOPT)
    assert status.learning == [] and status.academy_users == ["kenji.mori@acme-logistics.example"]
    await handle.terminate("test over")


async def test_a_quarter_end_batch_never_assigns_beyond_capacity(
    dev_env: WorkflowEnvironment, database_url: str, settings: Settings, task_queue: str
) -> None:
    """Many onboardings started at once, on PostgreSQL (and SQLite): assignments run in
    parallel on the worker's activity threads, and no CSM ends up above capacity. On the dev
    server, in real time: the time-skipping server may jump past the activities' timeouts
    while they wait for the roster lock."""
    settings = settings.model_copy(update={"database_url": database_url})
    engine = make_engine(database_url)
    with ThreadPoolExecutor(max_workers=16) as executor:
        async with build_worker(dev_env.client, settings, executor, task_queue=task_queue):
            with Session(engine) as session:
                set_capacity(session, csm_007=3, csm_009=2)
            signed = datetime.now(UTC)
            accounts = [f"batch-{n:02}-{task_queue[-8:]}" for n in range(12)]
            handles = await asyncio.gather(
                *(
                    dev_env.client.start_workflow(
                        OnboardingWorkflow.run,
                        onboarding_input(deal("acme", account_id=a, contract_signed_at=signed)),
                        id=f"onboarding-{a}",
                        task_queue=task_queue,
                    )
                    for a in accounts
                )
            )
            statuses = await asyncio.gather(*(reach(h, Stage.KICKOFF) for h in handles))
            picks = [status.csm_id for status in statuses]
            assert (picks.count("csm-007"), picks.count("csm-009")) == (3, 2)
            assert picks.count("queue") == 7
            with Session(engine) as session:
                rows = session.exec(select(Onboarding)).all()
                assert sorted(r.csm_id or "queue" for r in rows) == sorted(picks)
            for handle in handles:
                await handle.terminate("test over")
    engine.dispose()
