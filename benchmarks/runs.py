"""What every benchmark script shares as a process: messages on stderr (stdout is the report),
SIGTERM treated like Ctrl-C so clean-up runs, and a way out that skips the interpreter's
finalisation."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

R = TypeVar("R")


def load() -> list[float]:
    """The load average (1, 5, 15 min), for the report: these machines are shared."""
    return [round(x, 2) for x in os.getloadavg()]


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def guarded(coro: Any) -> Any:
    """Run `coro`; SIGTERM cancels it like Ctrl-C does, so its clean-up runs."""
    task = asyncio.ensure_future(coro)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


def in_scratch(
    run: Callable[[Path], Awaitable[R]],
    *,
    prefix: str,
    keep: bool,
    children: Iterable[Any],
    errors: tuple[type[Exception], ...],
    note: str = "",
) -> R | None:
    """Run a benchmark, `run(folder)`, in a new scratch folder (`note` says where, as
    `{folder}`), guarded; on one of `errors`, say it and return None. Whatever it started
    (`children`, each with `kill_now`) and the orderly shutdown could not stop is stopped in
    any case, and the folder removed unless `keep`."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if note:
        warn(note.format(folder=folder))
    try:
        return asyncio.run(guarded(run(folder)))
    except errors as error:
        warn(f"error: {error}")
        return None
    finally:
        for child in children:
            child.kill_now()
        if keep:
            warn(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def exit_with(main: Callable[[], int]) -> NoReturn:
    """Run `main` and exit with its status: 130 when interrupted (after its clean-up), 1 on
    an unexpected error, with the traceback."""
    try:
        status = main()
    except (KeyboardInterrupt, asyncio.CancelledError):
        warn("interrupted; everything the run started is stopped")
        status = 130
    except Exception:
        traceback.print_exc()
        status = 1
    # A process that hosted a Temporal client or worker can abort during interpreter
    # finalisation (temporalio/sdk-python#300); the work is done, so leave without it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
