"""A playbook's new version adopted by a running onboarding, on the time-skipping server: the
preview, the apply, and the reminders and rows afterwards (README: *Changing a playbook for
running onboardings*). The CLI's side is in test_migrate_cli.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.journey import CompleteTask
from models.migration import ChangeKind, PlaybookOffer
from models.playbook import PlaybookFile, load_playbook
from models.tables import Task
from service import migrations
from service.errors import Rejected
from tests.conftest import Mailbox, eventually, start_in_adopt
from workflows.onboarding import OnboardingWorkflow

STANDARD = load_playbook(Path(__file__).parents[1] / "playbooks", "standard")
DAY = timedelta(days=1)
ID = "onboarding-acme"


def new_version() -> PlaybookOffer:
    """Standard, with SSO to connect in Adopt (10 days), configuring given a week more, and
    the integration test taken off the checklist."""
    data: dict[str, Any] = STANDARD.model_dump()
    tasks = data["stages"]["adopt"]["tasks"]
    tasks[:] = [t for t in tasks if t["id"] != "integration-test"]
    tasks.append(
        {"id": "connect-sso", "title": "Connect SSO", "owner": "customer", "due": 10 * DAY}
    )
    next(t for t in tasks if t["id"] == "configure")["due"] = 28 * DAY
    return PlaybookOffer(name="standard", file=PlaybookFile.model_validate(data))


def reminders_of(mailbox: Mailbox, task: str) -> list[str]:
    return [key for key in mailbox.received() if f":task:{task}:reminder:" in key]


async def test_a_run_in_adopt_takes_the_new_task_and_date_and_reminds_on_them(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    mailbox: Mailbox,
    session: Session,
) -> None:
    handle, entered = await start_in_adopt(time_env, client, worker)
    await handle.execute_update(
        OnboardingWorkflow.complete_task, CompleteTask(task_id="add-users", by="kenji")
    )
    offer = new_version()

    preview = await migrations.preview(client, ID, offer)
    changes = {change.subject: change for change in preview.changes}
    assert changes["task connect-sso"].kind is ChangeKind.ADDED
    assert changes["task connect-sso"].after_at == entered + 10 * DAY
    assert changes["task configure"].kind is ChangeKind.MOVED
    assert (changes["task configure"].before_at, changes["task configure"].after_at) == (
        entered + 21 * DAY,
        entered + 28 * DAY,
    )
    assert changes["task integration-test"].kind is ChangeKind.REMOVED
    assert "task add-users" not in changes and not preview.refused
    status = await handle.query(OnboardingWorkflow.status)  # the preview changed nothing
    assert status.playbook_version == STANDARD.version()
    assert {t.id for t in status.tasks} == {
        "kickoff-call",
        "academy-access",
        "add-users",
        "configure",
        "integration-test",
        "open-questions",
    }

    applied = await migrations.apply(client, ID, offer, "ops-1", preview.digest)
    assert applied.applied and applied.changes == preview.changes
    # Retried (the same plan): the first answer, nothing done twice.
    again = await migrations.apply(client, ID, offer, "ops-1", preview.digest)
    assert again == applied

    status = await handle.query(OnboardingWorkflow.status)
    tasks = {t.id: t for t in status.tasks}
    assert status.playbook_version == offer.file.version()
    assert "integration-test" not in tasks and tasks["add-users"].done_at is not None
    assert tasks["connect-sso"].due_at == entered + 10 * DAY

    # Day 8: connect-sso's first reminder, two days before it is due.
    await time_env.sleep(entered + 8 * DAY + timedelta(hours=1) - await time_env.get_current_time())
    await eventually(lambda: len(reminders_of(mailbox, "connect-sso")) == 1)
    assert mailbox.one(reminders_of(mailbox, "connect-sso")[0])["Subject"] == (
        "Reminder: Connect SSO (Acme Logistics GmbH)"
    )
    # Day 20: configure's old first reminder (day 19) did not go; its new one is on day 26.
    await time_env.sleep(12 * DAY)
    assert reminders_of(mailbox, "configure") == []
    await time_env.sleep(7 * DAY)
    await eventually(lambda: len(reminders_of(mailbox, "configure")) == 1)
    assert reminders_of(mailbox, "integration-test") == []

    session.expire_all()
    rows = {row.task_id: row for row in session.exec(select(Task))}
    assert "integration-test" not in rows
    assert rows["connect-sso"].due_at == entered + 10 * DAY
    assert rows["configure"].due_at == entered + 28 * DAY
    await handle.terminate("test over")


async def test_an_apply_after_the_run_changed_since_its_preview_is_refused(
    time_env: WorkflowEnvironment, client: Client, worker: Worker
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker)
    offer = new_version()
    preview = await migrations.preview(client, ID, offer)
    await handle.execute_update(
        OnboardingWorkflow.complete_task, CompleteTask(task_id="configure", by="kenji")
    )
    with pytest.raises(Rejected, match="changed since the preview"):
        await migrations.apply(client, ID, offer, "ops-1", preview.digest)
    status = await handle.query(OnboardingWorkflow.status)
    assert status.playbook_version == STANDARD.version()
    await handle.terminate("test over")
