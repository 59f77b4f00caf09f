"""What every benchmark script shares as a process: messages on stderr (stdout is the report),
SIGTERM treated like Ctrl-C so clean-up runs, and a way out that skips the interpreter's
finalisation."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def guarded(coro: Any) -> Any:
    """Run `coro`; SIGTERM cancels it like Ctrl-C does, so its clean-up runs."""
    task = asyncio.ensure_future(coro)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await task


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
