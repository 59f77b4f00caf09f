"""Words people read, shared by the workflow's refusals and the CLI (no I/O, deterministic)."""

from __future__ import annotations

import re
from datetime import timedelta


def duration(value: timedelta) -> str:
    """A duration as people say it: "30 days", "2 days 4 hours", "36 minutes"; never
    Python's `30 days, 0:00:00`. Below a day, hours and minutes; below a minute, seconds."""
    seconds = int(abs(value).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "day"), (hours, "hour")] + ([(minutes, "minute")] if not days else [])
    if not (days or hours or minutes):
        units = [(secs, "second")]
    parts = [f"{n:,} {unit}{'' if n == 1 else 's'}" for n, unit in units if n]
    return ("-" if value < timedelta(0) else "") + (" ".join(parts) or "0 seconds")


_TIMEDELTA_REPR = re.compile(r"(?:(-?\d+) days?, )?(\d{1,2}):(\d\d):(\d\d)(?:\.\d+)?")


def human_durations(text: str) -> str:
    """`text` with every Python timedelta (`30 days, 0:00:00`, `4:00:00`) said in words.
    For reasons written elsewhere (the workflow's validators) that print a timedelta."""

    def words(match: re.Match[str]) -> str:
        days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
        return duration(timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds))

    return _TIMEDELTA_REPR.sub(words, text)
