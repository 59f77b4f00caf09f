"""The intake benchmark's deliveries, planned and judged without servers: N webhook deliveries
of distinct deals, their re-deliveries and forgeries in a seeded order, what each must have been
answered, and the same deals as a CSV export for `starter.py start --from-csv`. Unit-tested in
tests/test_bench_helpers.py."""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from faults_stack import ROOT
from journeys_measure import percentile

from api.guards import signature_header

SECRET = "bench-intake-secret-0123456789"
WRONG_SECRET = "not-the-intake-secret-0123456789"
TEMPLATE = ROOT / "examples" / "deal-acme.json"
NESTED = ("account_executive", "champion")  # flattened with `_` in the CSV (models/deal_csv.py)


class Kind(StrEnum):
    NEW = "new"  # a deal's first delivery in the order sent (a retry may still overtake it)
    RETRY = "retry"  # the same bytes again, as a CRM retries
    WRONG_SECRET = "wrong secret"
    TAMPERED = "tampered body"  # signed with the secret, then changed

    @property
    def forged(self) -> bool:
        return self in (Kind.WRONG_SECRET, Kind.TAMPERED)


@dataclass(frozen=True)
class Delivery:
    account: str
    kind: Kind
    body: bytes

    def request(self, now: float | None = None) -> dict[str, Any]:
        """httpx arguments, signed at `now` (a retry's signature is fresh, its body the same)."""
        secret = WRONG_SECRET if self.kind is Kind.WRONG_SECRET else SECRET
        headers = {
            "Content-Type": "application/json",
            "X-Signature": signature_header(secret, self.body, now),
        }
        content = self.body
        if self.kind is Kind.TAMPERED:
            content = self.body.replace(b'"contract_value": ', b'"contract_value": 1', 1)
        return {"content": content, "headers": headers}


@dataclass(frozen=True)
class Plan:
    deliveries: list[Delivery]
    valid: list[str]  # the distinct accounts validly delivered: each must start once
    forged: list[str]  # accounts only ever delivered forged: none may start


def template() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TEMPLATE.read_text())
    return data


def accounts(prefix: str, count: int) -> list[str]:
    width = max(4, len(str(count)))
    return [f"{prefix}-{n:0{width}d}" for n in range(1, count + 1)]


def deals(prefix: str, count: int) -> list[dict[str, Any]]:
    """`count` distinct deals: the example deal under accounts `prefix-0001`..."""
    data = template()
    return [data | {"account_id": account} for account in accounts(prefix, count)]


def plan(count: int, seed: int, retries: float = 0.20, forged: float = 0.05) -> Plan:
    """`count` deliveries: a `retries` share re-deliver an earlier deal, a `forged` share are
    forged (wrong secret and tampered body by turns, each its own account), the rest distinct
    deals; shuffled with `seed`. The first of an account's deliveries in the order sent is its
    NEW one, the later ones RETRY."""
    n_forged, n_retries = round(count * forged), round(count * retries)
    n_valid = count - n_forged - n_retries
    if n_valid < 1:
        raise ValueError(f"{count} deliveries leave no distinct deal")
    rng = random.Random(seed)
    bodies = {d["account_id"]: json.dumps(d).encode() for d in deals("bench", n_valid + n_forged)}
    names = list(bodies)
    valid, forgeries = names[:n_valid], names[n_valid:]
    kinds = [Kind.WRONG_SECRET, Kind.TAMPERED]
    order: list[tuple[str, Kind | None]] = [(a, None) for a in valid]
    order += [(a, None) for a in rng.choices(valid, k=n_retries)]
    order += [(a, kinds[i % 2]) for i, a in enumerate(forgeries)]
    rng.shuffle(order)
    seen: set[str] = set()
    deliveries = []
    for account, kind in order:
        if kind is None:  # valid: the first in the order sent is the new one
            kind = Kind.RETRY if account in seen else Kind.NEW
            seen.add(account)
        deliveries.append(Delivery(account, kind, bodies[account]))
    return Plan(deliveries, valid, forgeries)


def judge(plan: Plan, statuses: Sequence[int]) -> list[str]:
    """What the answers got wrong (empty: all right): every forged delivery 401; every valid
    account exactly one 202 and 200 for the rest, in whichever order they raced."""
    problems = []
    by_account: dict[str, list[int]] = defaultdict(list)
    for delivery, status in zip(plan.deliveries, statuses, strict=True):
        if delivery.kind.forged and status != 401:
            problems.append(f"{delivery.account} ({delivery.kind}) answered {status}, not 401")
        elif not delivery.kind.forged:
            by_account[delivery.account].append(status)
    for account in plan.valid:
        codes = sorted(by_account[account])
        if codes != [200] * (len(codes) - 1) + [202]:
            problems.append(f"{account} answered {codes}, not one 202 and 200 for the rest")
    return problems


def csv_row(deal: dict[str, Any]) -> dict[str, str]:
    """A deal document as a row of the bulk-start CSV (README: Bulk start)."""
    row: dict[str, str] = {}
    for key, value in deal.items():
        if key in NESTED:
            row |= {f"{key}_{k}": str(v) for k, v in value.items()}
        elif isinstance(value, list):
            row[key] = "; ".join(map(str, value))
        else:
            row[key] = str(value)
    return row


def write_csv(path: Path, documents: Iterable[dict[str, Any]]) -> Path:
    rows = [csv_row(d) for d in documents]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def spread(values: Sequence[float], prefix: str) -> dict[str, float | None]:
    """p50, p99 and max of `values` (ms) as `{prefix}_p50_ms: ...`; None when there are none."""
    return {
        f"{prefix}_{name}_ms": percentile(values, p) if values else None
        for name, p in (("p50", 50), ("p99", 99), ("max", 100))
    }
