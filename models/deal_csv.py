"""Deals as a CSV export (one per row) for `starter.py start --from-csv`: each row becomes an
OnboardingRequest, or errors named by row number (as a spreadsheet shows it), column, reason.

Nested fields are flattened with `_` (`champion_email`); lists are separated by `;`
(`goals`, and `users` as `Ana Ruiz <ana@x.com>; bo@x.com`). Empty cells take the default.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from models.journey import OnboardingRequest

NESTED = {"account_executive": ("id", "name", "email"), "champion": ("name", "email", "title")}
REQUIRED = {
    "account_id",
    "account_name",
    "plan",
    "touch_model",
    "industry",
    "use_case",
    "contract_value",
    "account_executive_id",
    "account_executive_name",
    "account_executive_email",
    "champion_name",
    "champion_email",
}
OPTIONAL = {"champion_title", "goals", "contract_signed_at", "playbook", "users"}
FIRST_ROW = 2  # row 1 is the header


class CsvFileError(Exception):
    """The file as a whole cannot be read as deals (missing or unknown columns, not CSV)."""


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    reason: str


@dataclass(frozen=True)
class Deal:
    row: int
    request: OnboardingRequest


def read_deals(path: Path) -> tuple[list[Deal], list[RowError]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:  # -sig: Excel's BOM
            reader = csv.DictReader(file)
            columns = set(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CsvFileError(f"cannot read {path}: {error}") from None
    if missing := REQUIRED - columns:
        raise CsvFileError(f"{path}: missing columns {', '.join(sorted(missing))}")
    if unknown := columns - REQUIRED - OPTIONAL:
        raise CsvFileError(
            f"{path}: unknown columns {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(REQUIRED | OPTIONAL))})"
        )
    deals: list[Deal] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=FIRST_ROW):
        try:
            request = OnboardingRequest.model_validate(_nest(row))
        except ValidationError as error:
            errors += [RowError(number, _column(e["loc"]), e["msg"]) for e in error.errors()]
            continue
        if (first := seen.setdefault(request.account_id, number)) != number:
            errors.append(RowError(number, "account_id", f"the same account as row {first}"))
            continue
        deals.append(Deal(number, request))
    return deals, errors


def _nest(row: dict[str, str | None]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for column, raw in row.items():
        value = (raw or "").strip()
        if not value:
            continue
        parent = next((p for p in NESTED if column.startswith(p + "_")), None)
        if parent is not None:
            data.setdefault(parent, {})[column.removeprefix(parent + "_")] = value
        elif column == "goals":
            data["goals"] = [goal.strip() for goal in value.split(";") if goal.strip()]
        elif column == "users":
            data["users"] = [
                {"name": name or email.split("@")[0], "email": email}
                for name, email in getaddresses(value.split(";"))
            ]
        else:
            data[column] = value
    return data


def _column(loc: tuple[int | str, ...]) -> str:
    """The CSV column a pydantic error location points at (`champion.email` → champion_email)."""
    if loc and loc[0] in NESTED and len(loc) > 1:
        return f"{loc[0]}_{loc[1]}"
    return str(loc[0]) if loc else "row"
