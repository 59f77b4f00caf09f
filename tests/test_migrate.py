"""A playbook's new version adopted by a running onboarding, on the time-skipping server: the
preview, the apply, and the reminders and rows afterwards (README: *Changing a playbook for
running onboardings*). The CLI's side is in test_migrate_cli.py."""

from __future__ import annotations

from datetime import datetime, timedelta
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
from tests.conftest import Mailbox, eventually, record_history, start_in_adopt
from workflows.onboarding import OnboardingWorkflow

STANDARD = load_playbook(Path(__file__).parents[1] / "playbooks", "standard")
DAY = timedelta(days=1)
ID = "onboarding-acme"


def new_version(as_of: datetime) -> PlaybookOffer:
    """Standard, with SSO to connect in Adopt (10 days), configuring given a week more, and
    the integration test taken off the checklist; offered as of `as_of`."""
    data: dict[str, Any] = STANDARD.model_dump()
    tasks = data["stages"]["adopt"]["tasks"]
    tasks[:] = [t for t in tasks if t["id"] != "integration-test"]
    tasks.append(
        {"id": "connect-sso", "title": "Connect SSO", "owner": "customer", "due": 10 * DAY}
    )
    next(t for t in tasks if t["id"] == "configure")["due"] = 28 * DAY
    return PlaybookOffer(name="standard", file=PlaybookFile.model_validate(data), as_of=as_of)


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
    offer = new_version(await time_env.get_current_time())

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

    applied = await migrations.apply(client, ID, offer, "ops-1", preview)
    assert applied.applied and applied.changes == preview.changes
    # Retried (the same plan): the first answer, nothing done twice.
    again = await migrations.apply(client, ID, offer, "ops-1", preview)
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
    await record_history(handle, "onboarding-acme-migrated")
    await handle.terminate("test over")


async def test_an_apply_after_the_run_changed_since_its_preview_is_refused(
    time_env: WorkflowEnvironment, client: Client, worker: Worker
) -> None:
    handle, _ = await start_in_adopt(time_env, client, worker)
    offer = new_version(await time_env.get_current_time())
    preview = await migrations.preview(client, ID, offer)
    await handle.execute_update(
        OnboardingWorkflow.complete_task, CompleteTask(task_id="configure", by="kenji")
    )
    with pytest.raises(Rejected, match="changed since the preview"):
        await migrations.apply(client, ID, offer, "ops-1", preview)
    status = await handle.query(OnboardingWorkflow.status)
    assert status.playbook_version == STANDARD.version()
    await handle.terminate("test over")


async def test_a_run_asleep_for_days_is_previewed_and_changed_at_the_same_moment(
    time_env: WorkflowEnvironment, client: Client, worker: Worker, session: Session
) -> None:
    """A query answers with the time of the run's last task (here two days ago): the
    preview and the apply work at the caller's moment instead, so a date clamped to a day
    from now is the same in both, and the apply goes through."""
    handle, entered = await start_in_adopt(time_env, client, worker)
    await time_env.sleep(12 * DAY)  # nothing falls due in between: the run sleeps on
    now = await time_env.get_current_time()
    offer = new_version(now)
    data = offer.file.model_dump()
    next(t for t in data["stages"]["adopt"]["tasks"] if t["id"] == "configure")["due"] = 5 * DAY
    offer.file = PlaybookFile.model_validate(data)

    preview = await migrations.preview(client, ID, offer)
    clamped = next(c for c in preview.changes if c.subject == "task configure")
    assert clamped.after_at == now + DAY and "would be past" in str(clamped.note)
    added = next(c for c in preview.changes if c.subject == "task connect-sso")
    assert added.after_at == now + DAY  # 10 days after entering Adopt: also past
    applied = await migrations.apply(client, ID, offer, "ops-1", preview)
    assert applied.changes == preview.changes
    status = await handle.query(OnboardingWorkflow.status)
    assert {t.id: t.due_at for t in status.tasks}["configure"] == now + DAY
    assert [a.by for a in status.playbook_adoptions] == ["ops-1"]
    await handle.terminate("test over")
