"""Bad input, and what it gets: every row of the README's table (*Bad input, and what it
gets*) run as a user runs it, `starter.py` in a subprocess; and the other half of the
promise, that what is refused at the door still decodes inside a running onboarding."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from cli.app import admitted
from models.door import admit
from models.journey import (
    CompleteMilestone,
    Contact,
    Engagement,
    EngagementKind,
    Milestone,
    MilestoneSignal,
    OnboardingRequest,
    UsersAdded,
)
from models.limits import MAX_CSV_ROWS, MAX_DEAL_BYTES, MAX_GOALS, MAX_USERS
from models.onboarding import OnboardingInput
from models.playbook import PlaybookError, format_validation_error, load_playbook
from tests.conftest import ROOT, onboarding_input, starter

ACME = json.loads((ROOT / "examples" / "deal-acme.json").read_text())
NOW = datetime.now(UTC)


def deal_data(**changes: Any) -> dict[str, Any]:
    """The acme example under another account id; nested dicts are merged, not replaced."""
    data: dict[str, Any] = ACME | {"account_id": "hardening"}
    for key, value in changes.items():
        data[key] = data[key] | value if isinstance(value, dict) else value
    return data


def users(*addresses: str) -> list[dict[str, str]]:
    return [{"name": f"User {n}", "email": address} for n, address in enumerate(addresses)]


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadInput:
    tried: str  # the README's "input tried"
    gets: str  # an excerpt of what the user reads on stderr
    exit: int
    command: Callable[[Path], list[str]]  # writes what it needs under tmp_path: the arguments
    row: tuple[int, str] | None = None  # a CSV row refused: its row number and field


def deal(text: str | bytes | dict[str, Any]) -> Callable[[Path], list[str]]:
    def write(tmp_path: Path) -> list[str]:
        path = tmp_path / "deal.json"
        if isinstance(text, dict):
            path.write_text(json.dumps(text, indent=2))
        elif isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return ["start", "--from-file", str(path)]

    return write


CSV_HEADER = (
    "account_id,account_name,plan,touch_model,industry,use_case,contract_value,"
    "account_executive_id,account_executive_name,account_executive_email,"
    "champion_name,champion_email,champion_title,goals,users,playbook\n"
)


def csv_row(account: str, champion: str = "Kim Lee", extra: str = "") -> str:
    return (
        f"{account},{account.title()} Ltd,premium,high,logistics,fleet tracking,12000,"
        f"ae-001,Sam Sales,sam@vendor.example,{champion},kim@{account}.example,COO,"
        f"cut costs,,standard{extra}\n"
    )


def csv(content: str | bytes) -> Callable[[Path], list[str]]:
    def write(tmp_path: Path) -> list[str]:
        path = tmp_path / "deals.csv"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return ["start", "--from-csv", str(path)]

    return write


def playbook(old: str, new: str) -> Callable[[Path], list[str]]:
    """The shipped playbooks with one edit to standard.toml (PLAYBOOK_DIR points there)."""

    def write(tmp_path: Path) -> list[str]:
        directory = tmp_path / "playbooks"
        shutil.copytree(ROOT / "playbooks", directory)
        standard = directory / "standard.toml"
        text = standard.read_text()
        assert old in text
        standard.write_text(text.replace(old, new, 1))
        return deal(deal_data())(tmp_path)

    return write


LATIN_1_DEAL = json.dumps(
    deal_data(champion={"name": "Jürgen Müller"}), indent=2, ensure_ascii=False
).encode("latin-1")
TOO_BIG_DEAL = json.dumps(deal_data()) + " " * MAX_DEAL_BYTES  # valid JSON, only too big

BAD_INPUT = [
    BadInput(
        'deal: a champion name with a line break, `"Kenji\\nMori"`',
        "champion.name: must not contain control characters (a line break at position 6)",
        1,
        deal(deal_data(champion={"name": "Kenji\nMori"})),
    ),
    BadInput(
        "deal: a tab in the account name",
        "account_name: must not contain control characters (a tab at position 5)",
        1,
        deal(deal_data(account_name="Acme\tLogistics")),
    ),
    BadInput(
        "deal: an invisible character (U+200B) in a user's name",
        "users.0.name: must not contain control characters (U+200B ZERO WIDTH SPACE at position 4)",
        1,
        deal(deal_data(users=[{"name": "Ana\u200bRuiz", "email": "ana@acme.example"}])),
    ),
    BadInput(
        "deal: an address unsafe in a file name or log line, `ops/team@acme.example`",
        "champion.email: the part before the @ may hold only ASCII letters, digits and "
        ". - _ + ' (not /)",
        1,
        deal(deal_data(champion={"email": "ops/team@acme.example"})),
    ),
    BadInput(
        "deal: `contract_value` `Infinity` (or `NaN`)",
        "contract_value: Input should be a finite number",
        1,
        deal(json.dumps(deal_data(contract_value=float("inf")))),
    ),
    BadInput(
        "deal: `contract_value` above 10¹²",
        "contract_value: at most 1,000,000,000,000",
        1,
        deal(deal_data(contract_value=2e12)),
    ),
    BadInput(
        'deal: `currency` `"usd"` (or `"US$"`)',
        "currency: must be an ISO 4217 code of three capital letters, such as USD, EUR or GBP "
        "('usd' given)",
        1,
        deal(deal_data(currency="usd")),
    ),
    BadInput(
        'deal: `locale` `"fr"`',
        "locale: must be one of en, ja ('fr' given)",
        1,
        deal(deal_data(locale="fr")),
    ),
    BadInput(
        'deal: `timezone` `"Tokyo"`',
        "timezone: must be an IANA time zone name, such as Asia/Tokyo, Europe/Berlin or UTC "
        "('Tokyo' given)",
        1,
        deal(deal_data(timezone="Tokyo")),
    ),
    BadInput(
        "deal: `contract_signed_at` next week",
        "contract_signed_at: is in the future",
        1,
        deal(deal_data(contract_signed_at=(NOW + timedelta(days=7)).isoformat())),
    ),
    BadInput(
        "deal: `contract_signed_at` three years ago",
        "contract_signed_at: is more than 2 years ago",
        1,
        deal(deal_data(contract_signed_at=(NOW - timedelta(days=3 * 365)).isoformat())),
    ),
    BadInput(
        f"deal: {MAX_USERS + 1} users",
        f"users: at most {MAX_USERS} users ({MAX_USERS + 1} given)",
        1,
        deal(deal_data(users=users(*(f"u{n}@acme.example" for n in range(MAX_USERS + 1))))),
    ),
    BadInput(
        "deal: the same user twice, `ana@acme.example` and `Ana@Acme.example`",
        "users: user 3 has the same email address as user 1 (case ignored)",
        1,
        deal(deal_data(users=users("ana@acme.example", "bo@acme.example", "Ana@Acme.example"))),
    ),
    BadInput(
        f"deal: {MAX_GOALS + 1} goals",
        f"goals: at most {MAX_GOALS} goals ({MAX_GOALS + 1} given)",
        1,
        deal(deal_data(goals=[f"goal {n}" for n in range(MAX_GOALS + 1)])),
    ),
    BadInput(
        "deal: a goal of 201 characters",
        "goals.0: at most 200 characters (201 given)",
        1,
        deal(deal_data(goals=["x" * 201])),
    ),
    BadInput(
        "deal: a file over 1 MiB",
        "larger than 1 MiB, the most a deal document may be",
        1,
        deal(TOO_BIG_DEAL),
    ),
    BadInput(
        "deal: a file in Latin-1, not UTF-8 (`Jürgen`)",
        "line 15, column 15: not UTF-8 text (byte 0xfc); save the file as UTF-8",
        1,
        deal(LATIN_1_DEAL),
    ),
    BadInput(
        "deal: a JSON syntax error (a missing comma)",
        "Invalid JSON: expected `,` or `}` at line 2 column 2",
        1,
        deal('{"account_id": "hardening"\n "plan": "basic"}'),
    ),
    BadInput(
        "CSV: a row with more cells than the header (an unquoted comma)",
        "1 cell(s) beyond the header's 16 columns (an unquoted comma?)",
        1,
        csv(CSV_HEADER + csv_row("csv-a", extra=",oops")),
        row=(2, "column 17"),
    ),
    BadInput(
        "CSV: a line break inside a quoted `champion_name` cell",
        "must not contain control characters (a line break at position 4)",
        1,
        csv(CSV_HEADER + csv_row("csv-a", champion='"Kim\nLee"')),
        row=(2, "champion_name"),
    ),
    BadInput(
        "CSV: a UTF-16 export (NUL bytes)",
        "row 1, column 1: a NUL byte (is it UTF-16, or not a CSV file?); export it as CSV UTF-8",
        2,
        csv((CSV_HEADER + csv_row("csv-a")).encode("utf-16")),
    ),
    BadInput(
        "CSV: a Latin-1 export (`Jürgen` in row 3)",
        "row 3, column champion_name: not UTF-8 text (byte 0xfc); export it as CSV UTF-8",
        2,
        csv((CSV_HEADER + csv_row("csv-a") + csv_row("csv-b", "Jürgen")).encode("latin-1")),
    ),
    BadInput(
        f"CSV: {MAX_CSV_ROWS + 1:,} rows",
        f"more than {MAX_CSV_ROWS:,} deals; split the file",
        2,
        csv(CSV_HEADER + "".join(csv_row(f"csv-{n}") for n in range(MAX_CSV_ROWS + 1))),
    ),
    BadInput(
        "playbook: `deadline = 45` (no unit)",
        'stages.adopt.deadline: needs a unit: "14d", "36h", "30m", "90s", "2w", or ISO 8601 '
        'such as "P14D" (a bare 45 would be read as seconds)',
        1,
        playbook('deadline = "45d"', "deadline = 45"),
    ),
    BadInput(
        'playbook: a negative duration, `deadline = "-P3D"`',
        "stages.adopt.deadline: must be longer than zero",
        1,
        playbook('deadline = "45d"', 'deadline = "-P3D"'),
    ),
    BadInput(
        'playbook: `deadline = "1000w"`',
        "stages.adopt.deadline: at most 730 days",
        1,
        playbook('deadline = "45d"', 'deadline = "1000w"'),
    ),
    BadInput(
        'playbook: `review_gate = ["no-such-course"]`',
        "learning.review_gate.0: 'no-such-course' is not a course of academy.toml",
        1,
        playbook("review_gate = []", 'review_gate = ["no-such-course"]'),
    ),
    BadInput(
        'playbook: a reminder `before = ["3d"]` while handoff\'s deadline is 2 days',
        "reminders.before.0: 3d before due is longer than stages.handoff.deadline (2d): it "
        "would come before the stage starts",
        1,
        playbook('before = ["2d"]', 'before = ["3d"]'),
    ),
    BadInput(
        "`signal … --at` a time next week",
        "at: is in the future",
        2,
        lambda _: [
            *("signal", "acme", "kickoff-held", "--by", "csm-007"),
            *("--at", (NOW + timedelta(days=7)).isoformat()),
        ],
    ),
    BadInput(
        "`signal … --note` with a line break",
        "note: must not contain control characters (a line break at position 5)",
        2,
        lambda _: ["signal", "acme", "kickoff-held", "--by", "csm-007", "--note", "done\nok"],
    ),
    BadInput(
        "`champion … --name` with a line break",
        "champion.name: must not contain control characters (a line break at position 4)",
        2,
        lambda _: [
            *("champion", "acme", "--name", "Kim\nLee", "--email", "kim@acme.example"),
            *("--by", "csm-007"),
        ],
    ),
    BadInput(
        "`users … add ops/team@acme.example`",
        "'ops/team@acme.example': email: the part before the @ may hold only ASCII letters, digits "
        "and . - _ + ' (not /)",
        2,
        lambda _: ["users", "acme", "add", "ops/team@acme.example"],
    ),
    BadInput(
        "`users … add` the same address twice",
        "users: user 2 has the same email address as user 1 (case ignored)",
        2,
        lambda _: ["users", "acme", "add", "ana@acme.example", "Ana Ruiz <ANA@acme.example>"],
    ),
    BadInput(
        f"`users … add` {MAX_USERS + 1} addresses",
        f"users: at most {MAX_USERS} users ({MAX_USERS + 1} given)",
        2,
        lambda _: ["users", "acme", "add", *(f"u{n}@acme.example" for n in range(MAX_USERS + 1))],
    ),
    BadInput(
        "`csm add … --email ops/team@example.com`",
        "email: the part before the @ may hold only ASCII letters, digits and . - _ + ' (not /)",
        2,
        lambda _: [
            *("csm", "add", "csm-099", "--name", "Mei Tan", "--email", "ops/team@example.com"),
            *("--touch-models", "high"),
        ],
    ),
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """starter.py as a user runs it, with no Temporal to reach: what the door refuses never
    gets as far as connecting, so nothing can have started."""
    return {
        "PATH": "/usr/bin:/bin",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "PLAYBOOK_DIR": str(tmp_path / "playbooks"),
        "COLUMNS": "400",
    }


@pytest.mark.parametrize("case", BAD_INPUT, ids=[case.tried for case in BAD_INPUT])
def test_bad_input_gets_a_clear_refusal(
    case: BadInput, env: dict[str, str], tmp_path: Path
) -> None:
    args = case.command(tmp_path)
    if not (tmp_path / "playbooks").exists():
        shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")

    result = starter(env, *args)

    assert result.returncode == case.exit, result.stdout + result.stderr
    assert case.gets in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot reach Temporal" not in result.stderr  # refused before trying to start
    if args[:2] == ["start", "--from-file"] or args[:2] == ["start", "--from-csv"]:
        assert args[2] in result.stderr or "playbooks" in result.stderr  # the file is named
    if case.row:  # the rows not started, tab-separated through a pipe: row, field, reason
        cells = [line.split("\t") for line in result.stderr.splitlines()]
        rows = [(int(c[0]), c[1]) for c in cells if c[0].isdigit() and len(c) == 3]
        assert rows == [case.row]


def test_a_good_deal_passes_the_door(env: dict[str, str], tmp_path: Path) -> None:
    """The control: the same deal without the fault gets as far as Temporal."""
    shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    good = deal_data(
        users=users("ana@acme.example", "o'brien@acme.example", "zoe@müller.example"),
        contract_signed_at=(NOW - timedelta(minutes=1)).isoformat(),
    )
    result = starter(env, *deal(good)(tmp_path))
    assert result.returncode == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in result.stderr


README_SECTION = re.compile(r"### Bad input, and what it gets\n(.*?)\n## ", re.S)


def test_the_readme_table_is_the_tested_list() -> None:
    section = README_SECTION.search((ROOT / "README.md").read_text())
    assert section, "README lacks the section"
    table = section[1].split("| input tried | what the user gets | exit |\n|---|---|---|\n")[1]
    rows = [line.strip(" |").split(" | ") for line in table.splitlines() if line.startswith("|")]
    assert [(tried, gets.strip("`").strip(), int(code)) for tried, gets, code in rows] == [
        (case.tried, case.gets, case.exit) for case in BAD_INPUT
    ]


# --- the door, and only the door ---------------------------------------------------------------

# What each of these refuses at the door, a running onboarding may already hold (0.2.0
# accepted it): decoded from a workflow's input, it must still load.
HELD_BY_RUNNING_ONBOARDINGS = [
    {"champion": {"name": "Kenji\nMori"}},
    {"champion": {"email": "ops/team@acme.example"}},
    {"contract_value": 2e12},
    {"contract_signed_at": "2001-01-01T00:00:00Z"},
    {"users": users("ana@acme.example", "ANA@acme.example")},
    {"goals": ["x" * 500] * 50},
]


@pytest.mark.parametrize("change", HELD_BY_RUNNING_ONBOARDINGS)
def test_what_the_door_refuses_still_decodes_in_a_running_onboarding(
    change: dict[str, Any],
) -> None:
    data = deal_data(**change)
    with pytest.raises(ValidationError):
        admit(OnboardingRequest, data)
    request = OnboardingRequest.model_validate(data)
    # The way a worker decodes a workflow's input from its history.
    converter = pydantic_data_converter.payload_converter
    payloads = converter.to_payloads([onboarding_input(request)])
    [decoded] = converter.from_payloads(payloads, [OnboardingInput])
    assert decoded.request == request


def test_a_playbook_refused_at_load_still_decodes_in_a_running_onboarding(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "playbooks"
    shutil.copytree(ROOT / "playbooks", directory)
    standard = directory / "standard.toml"
    standard.write_text(
        standard.read_text()
        .replace('deadline = "45d"', "deadline = 45")
        .replace("review_gate = []", 'review_gate = ["no-such-course"]')
    )
    with pytest.raises(PlaybookError) as refused:
        load_playbook(directory, "standard")
    assert "stages.adopt.deadline: needs a unit" in str(refused.value)

    workflow_input = onboarding_input(OnboardingRequest.model_validate(deal_data()))
    workflow_input.playbook.stages["adopt"].deadline = timedelta(seconds=45)
    workflow_input.playbook.learning.review_gate = ["no-such-course"]
    converter = pydantic_data_converter.payload_converter
    [decoded] = converter.from_payloads(converter.to_payloads([workflow_input]), [OnboardingInput])
    assert decoded.playbook.stages["adopt"].deadline == timedelta(seconds=45)


def test_the_shipped_files_pass_the_door() -> None:
    for name in ("standard", "demo"):
        load_playbook(ROOT / "playbooks", name)
    for example in (ROOT / "examples").glob("deal-*.json"):
        admit(OnboardingRequest, example.read_text())


# --- messages people type at the CLI (cli/app.py `admitted`) -----------------------------------

LATER = NOW + timedelta(hours=1)

TYPED = [
    (
        CompleteMilestone,
        {"milestone": Milestone.KICKOFF_HELD, "by": "csm-7", "at": LATER},
        "at: is in the future",
    ),
    (
        CompleteMilestone,
        {"milestone": Milestone.KICKOFF_HELD, "by": "csm-7", "note": "a\rb"},
        "note: must not contain control characters (a carriage return at position 2)",
    ),
    (CompleteMilestone, {"milestone": Milestone.KICKOFF_HELD, "by": " "}, "by: must not be blank"),
    (
        MilestoneSignal,
        {"by": "crm", "note": "x" * 2001},
        "note: at most 2000 characters (2001 given)",
    ),
    (
        Engagement,
        {"kind": EngagementKind.LOGIN, "at": NOW - timedelta(days=800)},
        "at: is more than 2 years ago",
    ),
    (
        Contact,
        {"name": "Kim\x00Lee", "email": "kim@x.example"},
        "name: must not contain control characters (a NUL at position 4)",
    ),
    (
        Contact,
        {"name": "Kim Lee", "email": "kim|lee@x.example"},
        "email: the part before the @ may hold only ASCII letters, digits and . - _ + ' (not |)",
    ),
    (
        UsersAdded,
        {
            "users": [
                Contact(name="A", email="a@x.example"),
                Contact(name="B", email="A@X.example"),
            ],
            "by": "csm-7",
        },
        "users: user 2 has the same email address as user 1 (case ignored)",
    ),
    (
        UsersAdded,
        {"users": [Contact(name="A\nB", email="a@x.example")], "by": "csm-7"},
        "users.0.name: must not contain control characters (a line break at position 2)",
    ),
    (
        UsersAdded,
        {
            "users": [{"name": f"U{n}", "email": f"u{n}@x.example"} for n in range(MAX_USERS + 1)],
            "by": "csm-7",
        },
        f"users: at most {MAX_USERS} users",
    ),
]


@pytest.mark.parametrize(("model", "fields", "message"), TYPED)
def test_typed_messages_are_refused_as_usage_errors(
    model: type, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(typer.BadParameter) as refused:
        admitted(model, **fields)
    assert message in str(refused.value.message)


def test_models_built_already_are_looked_inside() -> None:
    """A Contact built before the door (as `users add` builds them) is still checked whole."""
    contact = Contact(name="Kim\tLee", email="kim@x.example")
    with pytest.raises(ValidationError) as refused:
        admit(UsersAdded, {"users": [contact], "by": "csm-7"})
    assert "users.0.name: must not contain control characters (a tab at position 4)" in (
        format_validation_error(refused.value)
    )


def test_a_moment_within_clock_skew_is_taken() -> None:
    moment = admitted(
        CompleteMilestone, milestone="kickoff-held", by="x", at=NOW + timedelta(minutes=4)
    )
    assert moment.at == NOW + timedelta(minutes=4)
