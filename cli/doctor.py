"""`doctor`: is this installation able to run onboardings? What ops check first at 3 a.m."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import typer
from rich.markup import escape
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from cli.app import Failure, app, connect, out
from cli.reconcile import find_orphans
from infra.db import SchemaError, check_schema, current_revision, make_engine
from infra.search_attributes import missing_search_attributes
from workflows.contract import ONBOARDING_WORKFLOW, SA_INCIDENTS, TASK_QUEUE


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warn: bool = False
    """Needs someone's attention, but the installation is fine (exit code unchanged)."""


@app.command()
def doctor() -> None:
    """Check the database (reachable, migrated), Temporal (reachable, search attributes), the
    workers (polling the task queue) and that every open onboarding still has a running
    workflow; each failure says what to do. Exit 1 if any fails."""
    checks = [_database()]

    async def go() -> None:
        client = await connect()
        checks.append(Check("temporal", True, client.service_client.config.target_host))
        checks.append(await _search_attributes(client))
        checks.append(await _workers(client))
        checks.append(await _incidents(client))
        if checks[0].ok:  # the database answers: are its open rows still running?
            checks.append(await _open_rows(client))

    try:
        asyncio.run(go())
    except Failure as failure:  # unreachable
        checks.append(Check("temporal", False, str(failure)))
    except RPCError as error:
        checks.append(Check("temporal", False, f"answered: {error.message}"))
    for check in checks:
        mark = "[green]ok  [/green]" if check.ok else "[red]FAIL[/red]"
        mark = "[yellow]warn[/yellow]" if check.ok and check.warn else mark
        out.print(f"{mark} {check.name}: {escape(check.detail)}", highlight=False)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def _database() -> Check:
    from sqlalchemy.exc import OperationalError

    from infra.settings import load_settings

    engine = make_engine(load_settings().database_url)
    try:
        check_schema(engine)
        return Check("database", True, f"at revision {current_revision(engine)}")
    except SchemaError as error:
        return Check("database", False, str(error))
    except OperationalError as error:
        return Check("database", False, f"unreachable: {error.orig}")
    finally:
        engine.dispose()


async def _open_rows(client: Client) -> Check:
    from sqlmodel import Session

    from infra.settings import load_settings

    engine = make_engine(load_settings().database_url)
    try:
        with Session(engine) as session:
            orphans = await find_orphans(client, session)
    finally:
        engine.dispose()
    if orphans:
        accounts = ", ".join(f"{o.account_id} ({o.status})" for o in orphans)
        return Check(
            "onboardings",
            False,
            f"{len(orphans)} open in the database whose run has ended: {accounts}. "
            "Close them: starter.py reconcile",
        )
    return Check("onboardings", True, "every open onboarding has a running workflow")


async def _incidents(client: Client) -> Check:
    try:
        found = await client.count_workflows(
            f"WorkflowType = '{ONBOARDING_WORKFLOW}' AND ExecutionStatus = 'Running' "
            f"AND {SA_INCIDENTS.name} > 0"
        )
    except RPCError as error:  # the attribute is not registered yet: reported above
        return Check("incidents", True, f"cannot count them: {error.message}", warn=True)
    if found.count:
        return Check(
            "incidents",
            True,
            f"{found.count} onboarding(s) with a message that could not be sent: "
            "starter.py list --incidents",
            warn=True,
        )
    return Check("incidents", True, "none open")


async def _search_attributes(client: Client) -> Check:
    try:
        missing = await missing_search_attributes(client)
    except RPCError as error:
        return Check("search attributes", False, f"cannot list them: {error.message}")
    if missing:
        names = ", ".join(key.name for key in missing)
        return Check(
            "search attributes", False, f"missing {names}: start a worker (it registers them)"
        )
    return Check("search attributes", True, "all registered")


async def _workers(client: Client) -> Check:
    pollers = {}
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=TASK_QUEUE),
                task_queue_type=kind,
            )
        )
        pollers[kind] = {poller.identity for poller in described.pollers}
    workers = pollers[TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW]
    if not workers or not pollers[TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]:
        return Check(
            "workers",
            False,
            f"nobody polls task queue {TASK_QUEUE!r}: onboardings wait. Start one "
            "(make worker, or docker compose up worker)",
        )
    return Check(
        "workers", True, f"{len(workers)} polling {TASK_QUEUE!r}: {', '.join(sorted(workers))}"
    )
