"""The processes of the fault-injection run, each one the run can stop, kill and start again:
the Temporal dev server on a persisted SQLite file, `worker.py`, the recording SMTP server,
and the app's PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from temporalio.client import Client

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra.db import make_engine  # noqa: E402

START_SECONDS = 60.0
STOP_SECONDS = 30.0


class StackError(Exception):
    """A process of the run could not be started or stopped; the message says which."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


@dataclass
class Event:
    """Something the run did to the stack, at `t` (epoch seconds)."""

    t: float
    kind: str  # worker-kill, worker-exit, smtp-down, smtp-up, db-drop, temporal-down, temporal-up
    detail: str = ""
    worker: str = ""  # for worker events: the process, e.g. `w1.3`


class Process:
    """A child process in its own session (Ctrl-C in the terminal reaches only the run, which
    then stops its children in order), its output in a log file."""

    def __init__(self, name: str, log: Path) -> None:
        self.name = name
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exit_code(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    async def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self.alive:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def kill(self) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
            await self.wait(STOP_SECONDS)

    async def stop(self) -> None:
        """SIGTERM, as an operator stops it; SIGKILL if it does not go."""
        if self.alive:
            assert self.popen is not None
            self.popen.terminate()
            if not await self.wait(STOP_SECONDS):
                await self.kill()

    def kill_now(self) -> None:
        """Last-resort cleanup, outside the event loop."""
        if self.alive:
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait(STOP_SECONDS)


class DevServer(Process):
    """`temporal server start-dev` on a SQLite file, so a restart resumes every run."""

    def __init__(self, folder: Path) -> None:
        super().__init__("temporal", folder / "temporal.log")
        self.port = free_port()
        self.db_file = folder / "temporal.db"
        self.address = f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        binary = Path(sys.executable).parent / "temporal"
        if not binary.exists():
            raise StackError(f"{binary} not found: run `make install`")
        # The same file and port each time: a restart continues on the persisted state.
        self.spawn(
            [str(binary), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
            + ["--port", str(self.port), "--db-filename", str(self.db_file)]
            + ["--log-level", "warn"]
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            if not self.alive:
                raise StackError(f"the Temporal dev server exited:\n{tail(self.log)}")
            try:
                await Client.connect(self.address)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise StackError(
                        f"the Temporal dev server did not answer in {START_SECONDS:.0f} s"
                    ) from None
                await asyncio.sleep(0.3)


class SmtpServer(Process):
    """benchmarks/faults_smtp.py: appends a line per delivery to `deliveries`."""

    def __init__(self, folder: Path) -> None:
        super().__init__("smtp", folder / "smtp.log")
        self.port = free_port()
        self.deliveries = folder / "deliveries.jsonl"

    async def start(self) -> None:
        script = Path(__file__).with_name("faults_smtp.py")
        self.spawn(
            [sys.executable, str(script), "--port", str(self.port), "--log", str(self.deliveries)]
        )
        deadline = time.monotonic() + START_SECONDS
        while not port_open(self.port):
            if not self.alive:
                raise StackError(f"the SMTP server exited:\n{tail(self.log)}")
            if time.monotonic() > deadline:
                raise StackError(f"the SMTP server did not listen in {START_SECONDS:.0f} s")
            await asyncio.sleep(0.1)


class WorkerSlot(Process):
    """One of the run's workers. Each process started in the slot is an incarnation
    (`w1.1`, `w1.2`, ...) with its own log and its own envelope sender, so the SMTP server's
    record says which process delivered a message."""

    def __init__(self, name: str, folder: Path, env: dict[str, str]) -> None:
        super().__init__(name, folder / f"worker-{name}.0.log")
        self.folder = folder
        self.env = env
        self.incarnation = 0

    @property
    def current(self) -> str:
        return f"{self.name}.{self.incarnation}"

    @staticmethod
    def sender(incarnation: str) -> str:
        return f"faults+{incarnation}@example.com"

    async def start(self, within: float = 120.0) -> None:
        """Start a new incarnation and wait until it polls; while Temporal is down a worker
        exits at once, so try again until `within` seconds have passed."""
        deadline = time.monotonic() + within
        while True:
            self.incarnation += 1
            self.log = self.folder / f"worker-{self.current}.log"
            env = self.env | {"MAIL_FROM": f"Fault run <{self.sender(self.current)}>"}
            self.spawn([sys.executable, "worker.py"], env)
            while self.alive and "worker polling" not in self.log.read_text(errors="replace"):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            if self.alive and time.monotonic() <= deadline:
                return
            await self.kill()
            if time.monotonic() > deadline:
                raise StackError(f"worker {self.current} did not start:\n{tail(self.log)}")
            await asyncio.sleep(2)


class AppDatabase:
    """A PostgreSQL database made for the run (`faults_<pid>`) and dropped after it."""

    def __init__(self, admin_url: str) -> None:
        self.name = f"faults_{os.getpid()}"
        self.admin: Engine = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
        url = make_url(admin_url).set(database=self.name)
        self.url = url.render_as_string(hide_password=False)

    def create(self) -> None:
        if not re.fullmatch(r"faults_\d+", self.name):  # it is spliced into DDL below
            raise StackError(f"unexpected database name {self.name}")
        try:
            with self.admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {self.name}"))
                connection.execute(text(f"CREATE DATABASE {self.name}"))
        except Exception as error:  # sqlalchemy wraps every driver error
            raise StackError(f"cannot create the database {self.name}: {error}") from None

    def drop_connections(self) -> int:
        """Terminate every session on the run's database (what a failover or a restarted
        pooler does to the workers); how many were dropped."""
        with self.admin.connect() as connection:
            dropped = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            ).scalar_one()
        return int(dropped)

    def drop(self) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
        self.admin.dispose()
