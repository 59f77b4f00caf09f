"""A wave of reminders falling due together, with the open onboardings still held: are they
on time?

W deals are bulk-started on the `wave` playbook: the standard playbook with the depart stage's
deadline LEAD + 2 minutes away and one reminder 2 minutes before it (none at or after it).
Every reminder therefore falls due LEAD after its onboarding entered depart: the wave arrives
as fast as the batch was started, once the batch has settled. A reminder's lateness is the
time its mail reached the outbox (the file's modification time) minus the moment it was due
(the stage's entry from the `status` query, plus LEAD)."""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from faults_stack import ROOT, StackError
from journeys_measure import percentile
from temporalio.client import Client

from workflows.contract import Queries, onboarding_id

WAVE_PLAYBOOK = "wave"
BEFORE_SECONDS = 120  # the reminder, this long before the depart deadline


def copy_playbooks(folder: Path) -> Path:
    """The project's playbooks in a folder of the benchmark's own (PLAYBOOK_DIR), where the
    wave's playbook is written later, once its lead is known."""
    target = folder / "playbooks"
    shutil.copytree(ROOT / "playbooks", target)
    return target


def write_wave_playbook(playbooks: Path, lead_s: int) -> None:
    standard = (playbooks / "standard.toml").read_text(encoding="utf-8")
    edits = {
        'before = ["2d"]': f'before = ["{BEFORE_SECONDS}s"]',
        "at_due = true": "at_due = false",
        "overdue_max = 3": "overdue_max = 0",
        'deadline = "14d"     # from deal close to signature': (
            f'deadline = "{lead_s + BEFORE_SECONDS}s"'
        ),
    }
    for old, new in edits.items():
        if old not in standard:
            raise StackError(f"playbooks/standard.toml no longer has {old!r}: update {__file__}")
        standard = standard.replace(old, new)
    (playbooks / f"{WAVE_PLAYBOOK}.toml").write_text(standard, encoding="utf-8")


def lead_for(count: int, settle_per_s: float) -> int:
    """Long enough for the whole batch to settle first (at the rate the open batch settled,
    with half again to spare), and at least two minutes."""
    return max(120, math.ceil((count / max(settle_per_s, 0.1) * 1.5 + 30) / 10) * 10)


def reminders(outbox: Path, prefix: str) -> dict[str, float]:
    """Account → when its depart reminder reached the outbox (the .eml files are named by
    their key: `onboarding-ACCOUNT.CHAIN_depart_...`; the first mail is what-to-expect)."""
    found = {}
    for path in outbox.glob(f"onboarding-{prefix}-*_depart_*.eml"):
        if path.name.endswith("what-to-expect.eml"):
            continue
        account = path.name.removeprefix("onboarding-").split(".", 1)[0]
        found[account] = path.stat().st_mtime
    return found


async def entered_at(client: Client, accounts: list[str]) -> dict[str, datetime]:
    gate = asyncio.Semaphore(16)

    async def one(account: str) -> tuple[str, datetime]:
        async with gate:
            status = await client.get_workflow_handle(onboarding_id(account)).query(Queries.STATUS)
        return account, datetime.fromisoformat(status["stage_entered_at"])

    return dict(await asyncio.gather(*map(one, accounts)))


def lateness(sent: dict[str, float], entered: dict[str, datetime], lead_s: int) -> list[float]:
    return [sent[a] - (entered[a].timestamp() + lead_s) for a in sent]


async def wait_for_wave(outbox: Path, prefix: str, count: int, until: float) -> dict[str, float]:
    while len(sent := reminders(outbox, prefix)) < count:
        if time.monotonic() > until:
            raise StackError(f"{len(sent)} of {count} wave reminders sent in time")
        await asyncio.sleep(1.0)
    return sent


def summary(late: list[float], lead_s: int, spread_s: float) -> dict[str, Any]:
    return {
        "wave_lead_s": lead_s,
        "wave_due_within_s": spread_s,
        "wave_late_p50_s": percentile(late, 50),
        "wave_late_p99_s": percentile(late, 99),
        "wave_late_max_s": max(late),
        "wave_late_over_60s": sum(1 for x in late if x > 60),
    }
