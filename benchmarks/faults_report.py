"""What the fault-injection run found in the mail: deliveries per business key, and for each
duplicate the likely cause, by correlating the delivery with what the run did to the stack.

The evidence: the SMTP server's record (time, key, and the envelope sender, which names the
worker process that delivered), each worker process's JSON log (`mail KEY sent` is logged
after the outbox row is marked `sent`), and the run's own events (kills, outages, drops).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faults_stack import Event

SENDER = re.compile(r"faults\+(w\d+\.\d+)@")
MAIL_SENT = re.compile(r"^mail (\S+) sent$")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b")
# How close a fault must follow a delivery to have cut it off from its bookkeeping: the mark
# `sent` comes right after the SMTP answer, unless the database is slow under load.
AFTER_DELIVERY_SECONDS = 10.0


@dataclass(frozen=True)
class Delivery:
    t: float
    key: str
    worker: str  # the process that delivered it, e.g. `w1.3` ("?" when unknown)


def read_deliveries(path: Path) -> list[Delivery]:
    deliveries = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            found = SENDER.search(entry.get("mail_from") or "")
            deliveries.append(
                # Keys have no whitespace: whatever is there came from folding the header.
                Delivery(
                    float(entry["t"]),
                    "".join(str(entry["key"]).split()),
                    found[1] if found else "?",
                )
            )
    return sorted(deliveries, key=lambda d: d.t)


def marked_sent(folder: Path) -> dict[str, set[str]]:
    """Per worker process (`w1.3`), the keys it delivered *and* marked `sent`."""
    marked: dict[str, set[str]] = defaultdict(set)
    for log in folder.glob("worker-w*.log"):
        worker = log.stem.removeprefix("worker-")
        for line in log.read_text(errors="replace").splitlines():
            try:
                message = json.loads(line).get("message", "")
            except (json.JSONDecodeError, AttributeError):
                continue  # a line cut off by SIGKILL, or not JSON
            if found := MAIL_SENT.match(str(message)):
                marked[worker].add(found[1])
    return marked


def _cause(
    d: Delivery, marked: dict[str, set[str]], events: list[Event], t0: float
) -> dict[str, str]:
    """Why this delivery was followed by another of the same key: a kind and the details."""
    if d.key in marked.get(d.worker, set()):
        return {
            "kind": "overlapping attempts",
            "detail": f"{d.worker} marked it sent too: another attempt found the row "
            "`pending` while this one was sending",
        }
    soon = [e for e in events if d.t - 1 <= e.t <= d.t + AFTER_DELIVERY_SECONDS]
    at = {e.kind: e for e in reversed(soon) if e.kind != "worker-kill" or e.worker == d.worker}
    if e := at.get("worker-kill"):
        return {
            "kind": "worker killed after delivering",
            "detail": f"{d.worker} SIGKILLed at {e.t - t0:.1f} s, {e.t - d.t:.1f} s after "
            "the delivery, before marking it sent",
        }
    if e := at.get("smtp-down"):
        return {
            "kind": "SMTP server killed after accepting",
            "detail": f"killed at {e.t - t0:.1f} s, before {d.worker} heard the answer",
        }
    if e := at.get("db-drop"):
        return {
            "kind": "database connections dropped after delivering",
            "detail": f"dropped at {e.t - t0:.1f} s, between the delivery and the mark `sent`",
        }
    if (e := at.get("worker-exit")) and e.worker == d.worker:
        return {"kind": "worker died", "detail": f"{d.worker} exited at {e.t - t0:.1f} s"}
    return {
        "kind": "unexplained",
        "detail": f"not marked sent by {d.worker}, no fault within "
        f"{AFTER_DELIVERY_SECONDS:.0f} s of the delivery",
    }


def duplicates(
    deliveries: list[Delivery], marked: dict[str, set[str]], events: list[Event], t0: float
) -> list[dict[str, Any]]:
    """Every key delivered more than once: how often, when, by whom, and the cause of each
    extra delivery (every delivery but the one whose mark `sent` stuck)."""
    by_key: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        by_key[d.key].append(d)
    found = []
    for key, copies in sorted(by_key.items()):
        if len(copies) < 2:
            continue
        kept = next((d for d in reversed(copies) if key in marked.get(d.worker, set())), copies[-1])
        found.append(
            {
                "key": key,
                "count": len(copies),
                "deliveries": [
                    {"at_seconds": round(d.t - t0, 1), "worker": d.worker} for d in copies
                ],
                "causes": [_cause(d, marked, events, t0) for d in copies if d is not kept],
            }
        )
    return found


def mail_summary(
    deliveries: list[Delivery],
    marked: dict[str, set[str]],
    events: list[Event],
    t0: float,
    outbox: dict[str, str],
) -> dict[str, Any]:
    """The mail figures for the report. `outbox`: the notification table's email rows, key →
    status, as the run left them."""
    delivered = Counter(d.key for d in deliveries)
    dups = duplicates(deliveries, marked, events, t0)
    kinds = Counter(c["kind"] for dup in dups for c in dup["causes"])
    return {
        "deliveries": len(deliveries),
        "keys_delivered": len(delivered),
        "duplicate_keys": len(dups),
        "extra_deliveries": sum(dup["count"] - 1 for dup in dups),
        "extra_by_cause": dict(kinds.most_common()),
        "duplicates": dups,
        "outbox_rows": len(outbox),
        # Marked sent, yet the SMTP server never saw it: a lost mail.
        "marked_sent_never_delivered": sorted(
            k for k, status in outbox.items() if status == "sent" and k not in delivered
        ),
        "not_sent_at_end": sorted(k for k, status in outbox.items() if status != "sent"),
    }


def activity_failures(folder: Path) -> dict[str, int]:
    """Failed activity attempts in the workers' logs, by the error's last line (the exception),
    most frequent first: what the faults looked like from inside."""
    errors: Counter[str] = Counter()
    for log in folder.glob("worker-w*.log"):
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("message") == "Completing activity as failed":
                lines = str(entry.get("error", "")).strip().splitlines()
                # The exception's own line (SQLAlchemy adds the SQL and a link after it).
                named = [x for x in lines if EXCEPTION_LINE.match(x)] or lines
                errors[named[-1][:160] if named else "(no error logged)"] += 1
    return dict(errors.most_common())
