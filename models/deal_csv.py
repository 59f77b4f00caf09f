"""Deals as a CSV export (one per row) for `starter.py start --from-csv`: each row becomes an
OnboardingRequest, or errors named by row number (as a spreadsheet shows it), column, reason.

Nested fields are flattened with `_` (`champion_email`); lists are separated by `;`
(`goals`, and `users` as `Ana Ruiz <ana@x.com>; bo@x.com`). Empty cells take the default.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from models.door import Refused, admit, read_bytes
from models.journey import OnboardingRequest
from models.limits import MAX_CSV_BYTES, MAX_CSV_ROWS

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
OPTIONAL = {
    "champion_title",
    "goals",
    "contract_signed_at",
    "playbook",
    "users",
    "currency",
    "locale",
    "timezone",
}
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
    """The deals of an export, each through the door, and the rows refused (row, column,
    reason). A file that cannot be read as deals at all is a CsvFileError naming where."""
    try:
        data = read_bytes(path, MAX_CSV_BYTES, "CSV file")
    except Refused as refused:
        raise CsvFileError(str(refused)) from None
    # Undecodable bytes are kept (as lone surrogates) so the error names their row and column.
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, [])
        records = list(itertools.islice(reader, MAX_CSV_ROWS + 1))
    except csv.Error as error:
        raise CsvFileError(f"{path}: line {reader.line_num}: {error}") from None
    for number, cells in enumerate([header, *records], start=1):
        for index, cell in enumerate(cells):
            column = header[index] if number > 1 and index < len(header) else f"{index + 1}"
            if "\x00" in cell:
                raise CsvFileError(
                    f"{path}: row {number}, column {column}: a NUL byte (is it UTF-16, or not "
                    "a CSV file?); export it as CSV UTF-8"
                )
            if bad := next((c for c in cell if "\udc80" <= c <= "\udcff"), None):
                raise CsvFileError(
                    f"{path}: row {number}, column {column}: not UTF-8 text "
                    f"(byte 0x{ord(bad) - 0xDC00:02x}); export it as CSV UTF-8"
                )
    if len(records) > MAX_CSV_ROWS:
        raise CsvFileError(f"{path}: more than {MAX_CSV_ROWS:,} deals; split the file")
    columns = set(header)
    if twice := sorted({c for c in header if header.count(c) > 1}):
        raise CsvFileError(f"{path}: columns {', '.join(twice)} appear more than once")
    if missing := REQUIRED - columns:
        raise CsvFileError(f"{path}: missing columns {', '.join(sorted(missing))}")
    if unknown := columns - REQUIRED - OPTIONAL:
        raise CsvFileError(
            f"{path}: unknown columns {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(REQUIRED | OPTIONAL))})"
        )
    now = datetime.now(UTC)
    deals: list[Deal] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for number, cells in enumerate(records, start=FIRST_ROW):
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets end exports with empty rows
        if len(cells) > len(header):
            errors.append(
                RowError(
                    number,
                    f"column {len(header) + 1}",
                    f"{len(cells) - len(header)} cell(s) beyond the header's {len(header)} "
                    "columns (an unquoted comma?)",
                )
            )
            continue
        try:
            # A short row leaves its last columns out: their fields are reported missing.
            row = dict(zip(header, cells, strict=False))
            request = admit(OnboardingRequest, _nest(row), now=now)
        except ValidationError as error:
            errors += [RowError(number, _column(e["loc"]), e["msg"]) for e in error.errors()]
            continue
        if (first := seen.setdefault(request.account_id, number)) != number:
            errors.append(RowError(number, "account_id", f"the same account as row {first}"))
            continue
        deals.append(Deal(number, request))
    return deals, errors


def _nest(row: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for column, raw in row.items():
        value = raw.strip()
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
