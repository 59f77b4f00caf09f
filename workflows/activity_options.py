"""How workflows call activities: explicit timeouts and retries, in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")

# Side effects retry for as long as it takes (a mail server can be down for hours); the
# backoff is capped so the onboarding resumes soon after the outage ends. Business errors
# are raised non-retryable by the activities themselves.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=10))
# The effects activity heartbeats after its records and after each message: an attempt whose
# worker died is retried after this, not after the whole start-to-close timeout. (One
# message's SMTP exchange stays under it; notify.LEASE covers one that does not.)
EFFECTS_HEARTBEAT = timedelta(minutes=2)


async def run_activity(
    method: Callable[[Any, ArgT], ResultT],
    arg: ArgT,
    *,
    summary: str,
    start_to_close: timedelta = timedelta(minutes=1),
    heartbeat: timedelta | None = None,
) -> ResultT:
    return await workflow.execute_activity_method(
        method,
        arg,
        start_to_close_timeout=start_to_close,
        heartbeat_timeout=heartbeat,
        retry_policy=RETRY,
        summary=summary,
    )
