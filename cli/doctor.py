"""`doctor`: is this installation able to run onboardings? What ops check first at 3 a.m."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import typer
from rich.markup import escape
from temporalio.api.enums.v1 import TaskQueueType, WorkerDeploymentVersionStatus
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from cli.app import Failure, app, connect, out
from cli.reconcile import find_orphans
from infra.db import SchemaError, check_schema, current_revision, make_engine
from infra.search_attributes import missing_search_attributes
from workflows.contract import (
    EVERBOARDING_WORKFLOW,
    ONBOARDING_WORKFLOW,
    SA_INCIDENTS,
    TASK_QUEUE,
)


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
    workers (polling the task queue), the worker deployment (which version is current or
    ramping, and how many runs sit on each) and that every open onboarding still has a
    running workflow; each failure says what to do. Exit 1 if any fails."""
    checks = [_database()]

    async def go() -> None:
        client = await connect()
        checks.append(Check("temporal", True, client.service_client.config.target_host))
        checks.append(await _search_attributes(client))
        pollers = await _pollers(client)
        checks.append(_workers(pollers))
        checks.extend(await _deployment(client, pollers))
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


async def _pollers(client: Client) -> dict[int, dict[str, str]]:
    """Who polls the task queue, per kind (workflow, activity): identity → build id ("" when
    unversioned). The server lists a stopped worker for a few minutes more."""
    pollers: dict[int, dict[str, str]] = {}
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=TASK_QUEUE),
                task_queue_type=kind,
            )
        )
        pollers[kind] = {
            poller.identity: poller.deployment_options.build_id for poller in described.pollers
        }
    return pollers


def _workers(pollers: dict[int, dict[str, str]]) -> Check:
    workers = pollers[TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW]
    if not workers or not pollers[TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]:
        return Check(
            "workers",
            False,
            f"nobody polls task queue {TASK_QUEUE!r}: onboardings wait. Start one "
            "(make worker, or docker compose up worker)",
        )
    named = (f"{who} ({build})" if build else who for who, build in sorted(workers.items()))
    return Check("workers", True, f"{len(workers)} polling {TASK_QUEUE!r}: {', '.join(named)}")


STATUS = {
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE: "never current",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT: "current",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING: "ramping",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING: "draining",
    WorkerDeploymentVersionStatus.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED: "drained",
}


async def _deployment(client: Client, pollers: dict[int, dict[str, str]]) -> list[Check]:
    """The deployment WORKER_DEPLOYMENT names: one line for what serves, one per version
    with its running onboardings and everboardings (visibility's
    TemporalWorkerDeploymentVersion: where each run's last task ran; an auto-upgrading
    onboarding moves at its next task), and the runs that no version has taken yet."""
    from infra.settings import load_settings

    name = load_settings().worker_deployment
    try:
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=name)
        )
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            return [Check("deployment", True, f"cannot describe it: {error.message}", warn=True)]
        return [
            Check(
                "deployment",
                True,
                f"no worker has polled as a version of {name!r}: workers are unversioned "
                "(WORKER_VERSIONING is off)",
            )
        ]
    info = described.worker_deployment_info
    routing = info.routing_config
    polling = set(pollers[TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW].values())
    if not routing.HasField("current_version_changed_time"):
        serves = Check(
            "deployment",
            False,
            f"{name}: no version is current, so no run moves. Make one current: temporal "
            f"worker deployment set-current-version --deployment-name {name} --build-id BUILD",
        )
    else:
        current = routing.current_deployment_version.build_id or "unversioned workers"
        ramping = routing.ramping_deployment_version.build_id
        detail = f"{name}: current {current}"
        if routing.HasField("ramping_version_changed_time") and (
            ramping or routing.ramping_version_percentage
        ):
            ramping = ramping or "unversioned workers"
            detail += f", ramping {ramping} at {routing.ramping_version_percentage:g}%"
        serves = Check("deployment", True, detail)
    checks = [serves]
    for summary in info.version_summaries:
        build = summary.deployment_version.build_id
        counts = await _running(client, f"TemporalWorkerDeploymentVersion = '{name}:{build}'")
        status = STATUS.get(summary.status, "unknown")
        ok, warn, note = True, False, ""
        if build not in polling and status in ("current", "ramping"):
            ok, note = False, ": no worker polls as it, so the runs it serves wait; start one"
        elif build not in polling and counts[EVERBOARDING_WORKFLOW]:
            ok, note = False, ": everboardings are pinned to it and no worker polls as it"
        elif status == "drained" and build in polling:
            warn, note = True, ": no run needs it any more, its workers may stop"
        checks.append(Check(f"version {build}", ok, f"{status}, {_counted(counts)}{note}", warn))
    waiting = await _running(client, "TemporalWorkerDeploymentVersion IS NULL")
    if any(waiting.values()):
        checks.append(Check("unversioned", True, f"{_counted(waiting)} on no version yet"))
    return checks


async def _running(client: Client, where: str) -> dict[str, int]:
    """Running onboardings and everboardings matching `where`."""
    found = {}
    for kind in (ONBOARDING_WORKFLOW, EVERBOARDING_WORKFLOW):
        counted = await client.count_workflows(
            f"WorkflowType = '{kind}' AND ExecutionStatus = 'Running' AND {where}"
        )
        found[kind] = counted.count
    return found


def _counted(counts: dict[str, int]) -> str:
    return (
        f"{counts[ONBOARDING_WORKFLOW]} onboarding(s) and "
        f"{counts[EVERBOARDING_WORKFLOW]} everboarding(s) running"
    )
