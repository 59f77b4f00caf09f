"""Everboarding over years: digests with the path's next courses and the plan's new features,
adoption check-ins, continue-as-new with bounded history, churn ending it."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.academy import load_academy
from models.everboarding import Churn, EverboardingInput, FeatureAnnouncement
from models.journey import CancelReason, CsmRef, Engagement, EngagementKind, Plan
from models.tables import Onboarding
from tests.conftest import ROOT, Mailbox, deal, eventually, open_account, record_history
from workflows.everboarding import EverboardingWorkflow

MONTH = timedelta(days=30)
HISTORY_LIMIT = 80  # small, so five years need many hand-overs
CSM = CsmRef(id="csm-007", name="Mei Tanaka", email="mei.tanaka@example.com")


def text_of(mailbox: Mailbox, key: str) -> str:
    return mailbox.one(key).get_body(("plain",)).get_content()


async def run_ids(client: Client, workflow_id: str, first_run: str) -> list[str]:
    """Every run of a chain, following each continue-as-new."""
    runs = [first_run]
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=runs[-1]).fetch_history()
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            return runs
        runs.append(last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)


async def test_five_years_of_everboarding_lose_nothing_across_hand_overs(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    request = deal("acme")  # premium, logistics
    path = load_academy(ROOT / "playbooks").path_for(
        request.plan, request.industry, request.use_case
    )
    open_account(lambda: Session(session.get_bind()), "acme")  # churn is recorded on it
    handle: WorkflowHandle = await client.start_workflow(
        EverboardingWorkflow.run,
        EverboardingInput(
            request=request,
            csm=CSM,
            cadence=MONTH,
            path=path,
            checkin_every=3 * MONTH,
            history_limit=HISTORY_LIMIT,
        ),
        id="everboarding-acme",
        task_queue=worker.task_queue,
    )
    first_run = handle.result_run_id
    assert first_run is not None
    await eventually(lambda: "everboarding-acme:keep-learning" in mailbox.received())

    def digest(n: int) -> str:
        return f"everboarding-acme:digest:{n}"

    # Month by month for five years. After some digests a feature is announced (twice, and
    # once for a plan acme does not have); the next digest must carry it exactly once, even
    # when a hand-over to a new run falls in between.
    announced_at: dict[int, str] = {}
    reporting_done_after = 4
    months = 61
    for month in range(1, months + 1):
        await time_env.sleep(MONTH)
        await eventually(lambda month=month: digest(month) in mailbox.received())
        if month % 5 == 0:
            feature = FeatureAnnouncement(
                id=f"feature-{month}",
                name=f"Feature {month}",
                summary=f"What feature {month} does",
                plans=[Plan.PREMIUM, Plan.ENTERPRISE],
            )
            for _ in range(2):
                await handle.signal(EverboardingWorkflow.announce_feature, feature)
            basic_only = feature.model_copy(
                update={"id": f"basic-{month}", "name": f"Basic {month}", "plans": [Plan.BASIC]}
            )
            await handle.signal(EverboardingWorkflow.announce_feature, basic_only)
            announced_at[month] = feature.name
        if month == reporting_done_after:
            await handle.signal(
                EverboardingWorkflow.engagement,
                Engagement(kind=EngagementKind.COURSE_COMPLETED, value="reporting"),
            )

    sent = mailbox.received()
    assert sent.count("everboarding-acme:keep-learning") == 1
    assert sorted(k for k in sent if ":digest:" in k) == sorted(
        digest(n) for n in range(1, months + 1)
    )
    # Every announcement in the digest after it, and in no other.
    for month, name in announced_at.items():
        carrying = [n for n in range(1, months + 1) if name + ":" in text_of(mailbox, digest(n))]
        assert carrying == [month + 1] if month < months else carrying == []
    assert not any("Basic " in text_of(mailbox, digest(n)) for n in range(1, months + 1))
    # Course progress survives the hand-overs: "Reports and dashboards" is suggested until
    # it is done, never after.
    assert "Reports and dashboards" in text_of(mailbox, digest(reporting_done_after))
    assert all(
        "Reports and dashboards" not in text_of(mailbox, digest(n))
        for n in range(reporting_done_after + 1, months + 1)
    )
    assert "Governance at scale" not in text_of(mailbox, digest(1))  # enterprise only
    # Adoption check-ins for the CSM every three months.
    checkins = sorted(k for k in sent if ":checkin:" in k)
    assert len(checkins) == months // 3
    assert mailbox.one("everboarding-acme:checkin:1")["To"].addresses[0].addr_spec == CSM.email

    runs = await run_ids(client, "everboarding-acme", first_run)
    assert len(runs) >= 5
    for n in (0, 1):
        await record_history(
            client.get_workflow_handle("everboarding-acme", run_id=runs[n]),
            f"everboarding-acme-continued-run{n + 1}",
        )
    for run_id in runs:
        history = await client.get_workflow_handle(
            "everboarding-acme", run_id=run_id
        ).fetch_history()
        # The check runs after a digest: at most one cycle's events past the limit.
        assert len(history.events) <= HISTORY_LIMIT + 25, run_id

    # The customer leaves: the run ends, churn is recorded, they are thanked once.
    latest = client.get_workflow_handle("everboarding-acme")
    status = await latest.query(EverboardingWorkflow.status)
    assert status.digests_sent == months and "reporting" in status.courses_done
    # What ops read in the Web UI, carried across the hand-overs too.
    metadata = await latest.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert f"**Digests sent:** {months}," in metadata.current_details
    assert "**Courses done:** 1;" in metadata.current_details
    await latest.signal(
        EverboardingWorkflow.customer_churned,
        Churn(reason=CancelReason.PRICE, note="budget cut", by="csm-007"),
    )
    await latest.result()
    assert (await latest.describe()).status is WorkflowExecutionStatus.COMPLETED
    session.expire_all()
    row = session.get(Onboarding, "acme")
    assert row.churned_at is not None and (row.churn_reason, row.churn_note) == (
        "price",
        "budget cut",
    )
    await eventually(lambda: "everboarding-acme:churned:farewell" in mailbox.received())
    await time_env.sleep(3 * MONTH)
    assert digest(months + 1) not in mailbox.received()


async def test_a_churn_dated_in_the_future_is_recorded_as_now(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    from datetime import UTC, datetime

    request = deal("acme")
    open_account(lambda: Session(session.get_bind()), "acme")
    handle: WorkflowHandle = await client.start_workflow(
        EverboardingWorkflow.run,
        EverboardingInput(request=request, csm=CSM, cadence=MONTH),
        id="everboarding-acme",
        task_queue=worker.task_queue,
    )
    await eventually(lambda: "everboarding-acme:keep-learning" in mailbox.received())
    future = datetime(2036, 1, 1, tzinfo=UTC)
    await handle.signal(
        EverboardingWorkflow.customer_churned,
        Churn(reason=CancelReason.PRICE, by="csm-007", at=future),
    )
    await handle.result()
    session.expire_all()
    churned = session.get(Onboarding, "acme").churned_at
    assert churned < future and churned <= (await time_env.get_current_time()).astimezone(UTC)
