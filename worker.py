"""The worker: registers the workflows and activities on the `onboarding` task queue and runs.

    .venv/bin/python worker.py

Connection from the Temporal environment config (TEMPORAL_ADDRESS, ...); everything else
from `config.Settings`.
"""

from __future__ import annotations

import asyncio
import compileall
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.assign import AssignActivities
from activities.effects import EffectActivities
from activities.mail import transport_from_settings
from activities.notify import Notify
from activities.records import Records
from infra.db import SchemaError, check_schema, make_engine, session_factory
from infra.logs import configure_logging
from infra.roster import RosterError, load_roster, seed_roster
from infra.search_attributes import register_search_attributes
from infra.settings import (
    Settings,
    SettingsError,
    TemporalUnreachable,
    connect_temporal,
    load_settings,
    worker_runtime,
)
from workflows.contract import TASK_QUEUE
from workflows.everboarding import EverboardingWorkflow
from workflows.onboarding import OnboardingWorkflow

log = logging.getLogger("worker")


# Activities run on this many threads, and the worker takes no more than that at once: a task
# it took without a thread to run it would sit and time out while its retry runs elsewhere.
ACTIVITY_THREADS = 16


def build_worker(
    client: Client,
    settings: Settings,
    executor: ThreadPoolExecutor,
    task_queue: str = TASK_QUEUE,
    activity_threads: int = ACTIVITY_THREADS,
    # On SIGTERM, running activities finish (within compose's 60 s stop_grace_period) before
    # they are cancelled.
    graceful_shutdown: timedelta = timedelta(seconds=50),
) -> Worker:
    """Check the database and assemble the worker (also used by the tests)."""
    roster = load_roster(settings.roster_file)
    engine = make_engine(settings.database_url)
    check_schema(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        added = seed_roster(session, roster.csms)
    if added:
        log.info("added %d CSMs from %s to the roster", added, settings.roster_file)
    notify = Notify(sessions, transport_from_settings(settings), settings)
    effects = EffectActivities(Records(sessions), notify, roster.queue)
    assign = AssignActivities(sessions, roster.queue)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[effects.carry_out, assign.assign_csm, assign.reassign_csm],
        activity_executor=executor,
        max_concurrent_activities=activity_threads,
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=graceful_shutdown,
        workflow_runner=workflow_runner(),
        deployment_config=deployment_config(settings),
    )


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """With WORKER_VERSIONING, the worker polls as its version and every run auto-upgrades:
    it moves to the current version at its next task (changes are patched and proven by the
    replay tests). Not per workflow in `@workflow.defn`: Server 1.32 refuses a declared
    behaviour from an unversioned worker (README: Deploying a new version)."""
    if not settings.worker_versioning:
        return None  # unversioned: the time-skipping test server knows no deployments
    return WorkerDeploymentConfig(
        version=settings.deployment_version(),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE,
    )


async def first_version_current(client: Client, version: WorkerDeploymentVersion) -> None:
    """Make `version` current if its deployment never had a current version (a new
    installation: otherwise nothing would run, as tasks wait for a current version); later
    versions are made current by a person, after `starter.py replay-check` (README: Deploying
    a new version). Retries while the server has not yet seen this worker's polls."""
    name = version.to_canonical_string()
    for _ in range(60):
        try:
            described = await client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(
                    namespace=client.namespace, deployment_name=version.deployment_name
                )
            )
            routing = described.worker_deployment_info.routing_config
            if routing.HasField("current_version_changed_time"):
                current = routing.current_deployment_version.build_id or "unversioned workers"
                if current == version.build_id:
                    log.info("version %s is current", name)
                else:
                    log.warning(
                        "version %s polls, but %s is current: after `starter.py replay-check`,"
                        " `temporal worker deployment set-current-version --deployment-name %s"
                        " --build-id %s` (README: Deploying a new version)",
                        name,
                        current,
                        version.deployment_name,
                        version.build_id,
                    )
                return
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace,
                    deployment_name=version.deployment_name,
                    build_id=version.build_id,
                    conflict_token=described.conflict_token,
                    identity=client.identity,
                )
            )
            log.info("version %s is current: the deployment's first", name)
            return
        except RPCError as error:
            if error.status == RPCStatusCode.UNIMPLEMENTED:
                log.error(
                    "this Temporal server knows no worker deployments (it needs 1.28 or later):"
                    " set WORKER_VERSIONING=false, or upgrade it"
                )
                return
            # Not found / no pollers yet: the server registers a version from its first polls.
            if error.status not in (
                RPCStatusCode.NOT_FOUND,
                RPCStatusCode.FAILED_PRECONDITION,
                RPCStatusCode.ABORTED,  # another worker changed it meanwhile: look again
            ):
                raise
        await asyncio.sleep(0.5)
    log.warning("version %s: the server did not register its polls within 30 s", name)


WORKFLOWS = [OnboardingWorkflow, EverboardingWorkflow]


# A full garbage collection stops every thread of the worker, and walks every cached run: one
# this long is worth a line in the log (the SDK fails a workflow task whose activation takes
# over 2 s as a potential deadlock, so a pause near that is a problem, not a statistic).
SLOW_COLLECTION = 0.5


def watch_collections(threshold: float = SLOW_COLLECTION) -> Callable[[str, dict[str, int]], None]:
    """Log every garbage collection that pauses the worker longer than `threshold` seconds."""
    began = 0.0

    def observe(phase: str, info: dict[str, int]) -> None:
        nonlocal began
        if phase == "start":
            began = time.perf_counter()
            return
        paused = time.perf_counter() - began
        if paused >= threshold:
            log.warning(
                "garbage collection (generation %d) paused the worker for %.1f s, %d objects"
                " tracked: if this recurs, lower MAX_CACHED_WORKFLOWS (README: Sizing a worker)",
                info["generation"],
                paused,
                len(gc.get_objects(info["generation"])),
            )

    gc.callbacks.append(observe)
    return observe


def compile_workflows() -> None:
    """Write the workflow modules' bytecode, even where PYTHONDONTWRITEBYTECODE is set.

    The sandbox executes the workflow's module afresh for every run it creates (a new
    onboarding, or one evicted from the cache); Python loads it from bytecode when there is
    some and compiles the source otherwise, each time: 16 ms a run measured on 2 cores, a third
    of what settling a new onboarding costs the worker. Where the folder is read-only (an
    image built without it), nothing is written and runs compile as before."""
    compileall.compile_dir(Path(__file__).parent / "workflows", quiet=2)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox the workflows run in (the replay tests use the same)."""
    # pydantic's EmailStr imports these lazily while decoding workflow input; they are
    # deterministic, so share them with the sandbox instead of re-importing per run.
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("email_validator", "idna")
    )


class StartError(Exception):
    """The worker cannot start for a reason its message says (no traceback: not a bug)."""


async def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        runtime = worker_runtime(settings.metrics_port)
    except ValueError as error:  # the SDK's words: "Failed starting Prometheus exporter: ..."
        raise StartError(
            f"cannot serve metrics on port {settings.metrics_port} ({error}); is another "
            "worker running on this machine? Set METRICS_PORT to a free port, or 0 for none"
        ) from None
    client = await connect_temporal(runtime, settings)
    keys = settings.key_ring()
    if keys:
        log.info("payloads encrypted with key %r (%d key(s) decrypt)", next(iter(keys)), len(keys))
    else:
        log.warning("ENCRYPTION_KEYS is not set: customer data is stored in Temporal in clear")
    if settings.metrics_port:
        log.info("metrics on http://0.0.0.0:%d/metrics", settings.metrics_port)
    await register_search_attributes(client)
    compile_workflows()
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(client, settings, executor)
        # Everything loaded so far lives as long as the process: out of the collector's way,
        # so its full collections walk only the runs' objects (see README: Sizing a worker).
        gc.freeze()
        watch_collections()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            claiming = None
            if settings.worker_versioning:
                version = settings.deployment_version()
                log.info(
                    "worker polling task queue %r as version %s",
                    TASK_QUEUE,
                    version.to_canonical_string(),
                )
                claiming = asyncio.create_task(first_version_current(client, version))
            else:
                log.info("worker polling task queue %r (unversioned)", TASK_QUEUE)
            await stop.wait()
            if claiming is not None:
                claiming.cancel()
            log.info("shutting down: finishing running activities")
    log.info("worker stopped")


# What stops a worker at its start that a person fixes (configuration, a server not up, a
# port taken): one line each. Anything else is a bug, and logged with its traceback.
EXPECTED_AT_START = (
    RosterError,
    SchemaError,
    SettingsError,
    ValidationError,
    ValueError,
    StartError,
    TemporalUnreachable,
)

if __name__ == "__main__":
    configure_logging("text")  # until the settings are read: they may be what is wrong
    status = 0
    try:
        asyncio.run(main())
    except OperationalError as error:
        log.error("cannot start: database: %s", error.orig)
        status = 1
    except EXPECTED_AT_START as error:
        log.error("cannot start: %s", error)  # the message is enough
        status = 1
    except Exception:
        log.exception("worker failed")
        status = 1
    # A process that hosted a Worker can abort during interpreter finalisation
    # (temporalio/sdk-python#300); the work is done, so leave without finalising.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
