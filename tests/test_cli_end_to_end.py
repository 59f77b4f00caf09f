"""The README's journey on the real dev server: `worker.py` and `starter.py` as subprocesses,
exactly as a CSM runs them, plus the bad input a CSM or the sales system will send."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from urllib.request import urlopen

import pytest
from sqlmodel import Session, select
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from infra.db import make_engine
from models.tables import Notification, Onboarding, SupportTicket
from tests.conftest import (
    ROOT,
    academy,
    deal,
    deal_file,
    free_port,
    onboarding_input,
    plain_key,
    starter,
    status_json,
    wait_for_stage,
)
from workflows.contract import SA_CSM, SA_ESCALATED, SA_OVERDUE, SA_RISK, SA_STAGE
from workflows.onboarding import OnboardingWorkflow

HISTORIES = Path(__file__).parent / "histories"


def test_readme_journey(app_env: dict[str, str], worker_process, tmp_path: Path) -> None:
    result = starter(app_env, "start", "--from-file", "examples/deal-acme.json")
    assert result.returncode == 0, result.stderr
    assert "started onboarding for acme" in result.stdout

    result = starter(app_env, "signal", "acme", "contract-signed", "--by", "ae-001")
    assert result.returncode == 0 and "accepted" in result.stdout, result.stderr
    wait_for_stage(app_env, "acme", "kickoff")

    result = starter(app_env, "status", "acme")
    assert result.returncode == 0, result.stderr
    for expected in ("kickoff", "csm-007", "Next deadline", "contract-signed", "ae-001", "handoff"):
        assert expected in result.stdout

    # A CSM who skips ahead is told what is missing, and nothing changes.
    result = starter(app_env, "signal", "acme", "review-passed", "--by", "csm-007")
    assert result.returncode == 1
    assert "stage kickoff" in result.stderr and "kickoff-held, integration-done" in result.stderr

    # The support system reports a ticket (the scorecard counts them per new customer).
    ticket = ["engagement", "acme", "--kind", "support_ticket", "--value"]
    assert starter(app_env, *ticket, "T-1").returncode == 0

    for milestone in ("kickoff-held", "integration-done", "review-passed"):
        result = starter(app_env, "signal", "acme", milestone, "--by", "csm-007")
        assert result.returncode == 0, result.stderr
        assert f"accepted: {milestone} recorded" in result.stdout

    status = wait_for_stage(app_env, "acme", "completed")
    assert status["everboarding_workflow_id"] == "everboarding-acme"
    assert status["everboarding_status"] == "running"
    assert [visit["stage"] for visit in status["history"]] == [
        "depart",
        "handoff",
        "kickoff",
        "adopt",
        "review",
        "expand",
        "completed",
    ]

    result = starter(app_env, "list")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "acme" in line)
    assert "completed" in line and "csm-007" in line
    # Filters run on the search attributes the workflow keeps current.
    completed = json.loads(starter(app_env, "list", "--stage", "completed", "--json").stdout)
    assert "acme" in [line["account_id"] for line in completed]
    adopting = json.loads(starter(app_env, "list", "--stage", "adopt", "--json").stdout)
    assert "acme" not in [line["account_id"] for line in adopting]

    # What was sent can be read in the outbox, and the read model agrees.
    outbox = Path(app_env["OUTBOX_DIR"])
    files = {plain_key(p.name): p for p in outbox.glob("*.eml")}
    sent = sorted(files)
    assert sent == sorted(
        f"{key.replace(':', '_')}.eml"
        for key in (
            "onboarding-acme:depart:what-to-expect",
            "onboarding-acme:handoff:brief",
            academy("kenji.mori@acme-logistics.example"),
            "onboarding-acme:kickoff:welcome",
            "onboarding-acme:review:checklist",
            "onboarding-acme:expand:next-steps",
            "everboarding-acme:keep-learning",
        )
    )
    welcome = message_from_bytes(
        files["onboarding-acme_kickoff_welcome.eml"].read_bytes(), policy=policy.default
    )
    assert welcome["To"].addresses[0].addr_spec == "kenji.mori@acme-logistics.example"
    with Session(make_engine(app_env["DATABASE_URL"])) as session:
        assert session.get(Onboarding, "acme").stage == "completed"
        assert len(session.exec(select(Notification)).all()) == 7

    # After onboarding, tickets go to the everboarding; each ticket is on record once.
    assert starter(app_env, *ticket, "T-2").returncode == 0
    assert starter(app_env, *ticket, "T-1").returncode == 0
    wait_until(lambda: tickets(app_env) == ["T-1", "T-2"])

    if os.environ.get("RECORD_HISTORIES"):
        # Refresh the replay fixtures: RECORD_HISTORIES=1 make test (then review the diff).
        for workflow_id in ("onboarding-acme", "everboarding-acme"):
            shown = temporal(app_env, "workflow", "show", "--workflow-id", workflow_id)
            (HISTORIES / f"{workflow_id}.json").write_text(shown)


def tickets(env: dict[str, str]) -> list[str]:
    with Session(make_engine(env["DATABASE_URL"])) as session:
        return sorted(t.ticket for t in session.exec(select(SupportTicket)))


def wait_until(check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def finish(env: dict[str, str], account: str, *milestones: str) -> None:
    for milestone in milestones:
        result = starter(env, "signal", account, milestone, "--by", "csm-007")
        assert result.returncode == 0, result.stderr
    wait_for_stage(env, account, "completed")


def test_roster_users_reassign_announce_and_churn_from_the_command_line(
    app_env: dict[str, str], worker_process, tmp_path: Path
) -> None:
    # The roster: seeded by the worker, changed from the CLI, validated.
    roster = json.loads(starter(app_env, "csm", "list", "--json").stdout)
    assert {c["id"]: c["capacity"] for c in roster["csms"]} == {
        "csm-007": 12,
        "csm-009": 10,
        "csm-pool": 500,
    }
    add = ["csm", "add", "csm-011", "--name", "Ada Brandt", "--email", "ada@example.com"]
    added = starter(app_env, *add, "--touch-models", "high", "--capacity", "2")
    assert added.returncode == 0 and "added csm-011" in added.stdout, added.stderr
    again = starter(app_env, *add, "--touch-models", "high")
    assert again.returncode == 1 and "already on the roster" in again.stderr
    wrong = starter(
        app_env,
        "csm",
        "add",
        "csm-012",
        "--name",
        "X",
        "--email",
        "x@example.com",
        "--touch-models",
        "gold",
    )
    assert wrong.returncode == 2 and "touch_models.0" in wrong.stderr
    negative = starter(app_env, "csm", "update", "csm-011", "--capacity", "-1")
    assert negative.returncode == 1 and "capacity" in negative.stderr

    # An onboarding with users, handed to the new CSM.
    signed = {"contract_signed_at": "2026-11-20T09:00:00Z"}
    premium = deal_file(tmp_path, "acme", account_id="roster-co", **signed)
    basic = deal_file(tmp_path, "globex", account_id="basic-co")
    for path in (premium, basic):
        assert starter(app_env, "start", "--from-file", path).returncode == 0
    wait_for_stage(app_env, "roster-co", "kickoff")
    bad_user = starter(app_env, "users", "roster-co", "add", "Ana <ana@roster.example>", "nope")
    assert bad_user.returncode == 2 and "'nope'" in bad_user.stderr
    users = starter(app_env, "users", "roster-co", "add", "Ana Ruiz <ana@roster.example>")
    assert users.returncode == 0, users.stderr
    refused = starter(app_env, "reassign", "roster-co", "--to", "csm-nobody", "--reason", "x")
    assert refused.returncode == 1 and "rejected: unknown CSM 'csm-nobody'" in refused.stderr
    moved = starter(app_env, "reassign", "roster-co", "--to", "csm-011", "--reason", "Mei is away")
    assert moved.returncode == 0 and "roster-co is now with csm-011" in moved.stdout, moved.stderr
    assert status_json(app_env, "roster-co")["csm_id"] == "csm-011"
    busy = starter(app_env, "csm", "remove", "csm-011")
    assert busy.returncode == 1 and "roster-co" in busy.stderr and "reassign" in busy.stderr
    listed = starter(app_env, "csm", "list")
    assert "1/2" in next(line for line in listed.stdout.splitlines() if "csm-011" in line)
    lowered = starter(app_env, "csm", "update", "csm-011", "--capacity", "0")
    assert lowered.returncode == 0 and "above the new capacity 0" in lowered.stdout, lowered.stderr

    not_yet = starter(app_env, "churn", "roster-co", "--reason", "price")
    assert not_yet.returncode == 1 and "still onboarding" in not_yet.stderr
    finish(app_env, "roster-co", "kickoff-held", "integration-done", "review-passed")
    assert "ana@roster.example" in status_json(app_env, "roster-co")["academy_users"]
    finish(app_env, "basic-co", "integration-done", "review-passed")

    # A feature for premium and enterprise reaches roster-co, not the basic customer; a
    # second run changes nothing.
    announce = [
        "announce",
        "--feature",
        "Audit log",
        "--plans",
        "premium,enterprise",
        "--summary",
        "Every change, who made it and when.",
    ]
    for _ in range(2):
        told = starter(app_env, *announce)
        assert told.returncode == 0, told.stderr
        assert "roster-co" in told.stdout and "basic-co" not in told.stdout
    premium_status = everboarding_status(app_env, "roster-co")
    assert [f["id"] for f in premium_status["pending_features"]] == ["audit-log"]
    assert not everboarding_status(app_env, "basic-co")["pending_features"]
    gold = starter(app_env, "announce", "--feature", "X", "--plans", "gold", "--summary", "x")
    assert gold.returncode == 2 and "plans.0" in gold.stderr

    # After onboarding, course progress goes to the everboarding; a typo is refused.
    typo = starter(
        app_env, "engagement", "basic-co", "--kind", "course_completed", "--value", "reportng"
    )
    assert typo.returncode == 2 and "'reportng' is not in the academy catalogue" in typo.stderr
    progress = starter(
        app_env, "engagement", "basic-co", "--kind", "course_completed", "--value", "reporting"
    )
    assert progress.returncode == 0 and "(everboarding)" in progress.stdout, progress.stderr

    churned = starter(app_env, "churn", "roster-co", "--reason", "price", "--note", "budget")
    assert churned.returncode == 0, churned.stderr
    deadline = time.monotonic() + 30
    with Session(make_engine(app_env["DATABASE_URL"])) as session:
        while session.get(Onboarding, "roster-co").churned_at is None:
            assert time.monotonic() < deadline, "churn not recorded"
            time.sleep(0.2)
            session.expire_all()
        assert session.get(Onboarding, "roster-co").churn_reason == "price"
    twice = starter(app_env, "churn", "roster-co", "--reason", "price")
    assert twice.returncode == 1 and "no running everboarding" in twice.stderr


def everboarding_status(env: dict[str, str], account: str) -> dict:
    """The everboarding's status query, through the temporal CLI as an operator runs it."""
    shown = temporal(
        env, "workflow", "query", "--workflow-id", f"everboarding-{account}", "--name", "status"
    )
    return json.loads(shown)["queryResult"][0]


def temporal(env: dict[str, str], *args: str) -> str:
    """The `temporal` CLI against the test's dev server; its JSON output."""
    return subprocess.run(
        [Path(sys.executable).parent / "temporal", *args, "--output", "json"]
        + ["--address", env["TEMPORAL_ADDRESS"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


BAD_DEALS = {
    "not-json.json": ("{ this is not json", "Invalid JSON"),
    "missing-champion.json": (None, "champion: is required"),
    "bad-email.json": ({"champion": {"name": "K", "email": "not-an-email"}}, "champion.email"),
    "unknown-plan.json": ({"plan": "gold"}, "plan: Input should be 'basic', 'premium'"),
    "bad-slug.json": (
        {"account_id": "Acme Corp"},
        "account_id: 'Acme Corp' is not an id: use 1 to 63 lowercase letters, digits and hyphens",
    ),
    "naive-date.json": ({"contract_signed_at": "2026-11-20T14:30:00"}, "contract_signed_at"),
    "unknown-playbook.json": ({"playbook": "gold"}, "unknown playbook 'gold'"),
    "line-break-in-name.json": (
        {"champion": {"name": "Kim\nLee", "email": "kim@initech.example"}},
        "champion.name: must not contain control characters (a line break at position 4)",
    ),
    "infinite-value.json": ({"contract_value": float("inf")}, "contract_value: Input should be"),
    "signed-in-2099.json": ({"contract_signed_at": "2099-01-01T00:00:00Z"}, "is in the future"),
}


@pytest.mark.parametrize("name", sorted(BAD_DEALS))
def test_bad_deal_names_the_field_and_starts_nothing(
    app_env: dict[str, str], tmp_path: Path, name: str
) -> None:
    change, message = BAD_DEALS[name]
    good = json.loads((ROOT / "examples" / "deal-initech.json").read_text())
    good["account_id"] = "badcase"
    if isinstance(change, str):
        text = change
    elif change is None:
        text = json.dumps({k: v for k, v in good.items() if k != "champion"})
    else:
        text = json.dumps(good | change)
    path = tmp_path / name
    path.write_text(text)

    result = starter(app_env, "start", "--from-file", str(path))

    assert result.returncode == 1
    assert message in result.stderr
    assert str(path) in result.stderr
    assert "badcase" not in starter(app_env, "list", "--json").stdout


CSV_HEADER = (
    "account_id,account_name,plan,touch_model,industry,use_case,contract_value,"
    "account_executive_id,account_executive_name,account_executive_email,"
    "champion_name,champion_email,goals,users,playbook,contract_signed_at\n"
)


def csv_row(account: str, plan: str = "premium", email: str = "", **extra: str) -> str:
    champion = email or f"kim@{account}.example"
    return (
        f"{account},{account.title()} Ltd,{plan},high,logistics,fleet tracking,12000,"
        f"ae-001,Sam Sales,sam@vendor.example,Kim Lee,{champion},"
        f"{extra.get('goals', 'cut costs; go live by June')},{extra.get('users', '')},"
        f"{extra.get('playbook', '')},2026-11-02T09:00:00+00:00\n"
    )


def test_bulk_start_from_csv_reports_bad_rows_and_is_idempotent(
    app_env: dict[str, str], worker_process, tmp_path: Path
) -> None:
    deals = tmp_path / "deals.csv"
    deals.write_text(
        CSV_HEADER
        + csv_row("bulk-a")
        + csv_row("bulk-b", users='"Ana Ruiz <ana@bulk-b.example>; bo@bulk-b.example"')
        + csv_row("bulk-c", plan="gold")  # row 4
        + csv_row("bulk-d", email="not-an-address")  # row 5
        + csv_row("bulk-a")  # row 6: the same account again
        + csv_row("bulk-e", playbook="nope")  # row 7
    )
    first = starter(app_env, "start", "--from-csv", str(deals), "--concurrency", "2")
    assert first.returncode == 1, first.stderr
    assert "2 started, 0 already onboarding (left as they are), 4 rows with" in first.stdout
    # Not a terminal: the table comes as tab-separated rows (row, field, reason).
    problems = {
        (int(line.split("\t")[0]), line.split("\t")[1])
        for line in first.stderr.splitlines()
        if line.split("\t")[0].isdigit()
    }
    assert problems == {(4, "plan"), (5, "champion_email"), (6, "account_id"), (7, "playbook")}
    assert "the same account as row 2" in first.stderr

    wait_for_stage(app_env, "bulk-b", "kickoff")  # the deal's users travel with it
    assert "ana@bulk-b.example" in status_json(app_env, "bulk-b")["academy_users"]

    again = starter(app_env, "start", "--from-csv", str(deals))
    assert "0 started, 2 already onboarding" in again.stdout, again.stderr
    assert "bulk-a, bulk-b" in again.stdout

    # A file that is not a deal export is refused whole: nothing starts.
    broken = tmp_path / "broken.csv"
    broken.write_text("account_id,name\nbulk-z,Z\n")
    refused = starter(app_env, "start", "--from-csv", str(broken))
    assert refused.returncode == 2
    assert "missing columns" in refused.stderr and "champion_email" in refused.stderr
    listed = json.loads(starter(app_env, "list", "--json").stdout)
    assert not {"bulk-c", "bulk-z"} & {line["account_id"] for line in listed}


def test_refusals_are_clear(app_env: dict[str, str], worker_process) -> None:
    result = starter(app_env, "start", "--from-file", "examples/deal-initech.json")
    assert result.returncode == 0, result.stderr

    again = starter(app_env, "start", "--from-file", "examples/deal-initech.json")
    assert again.returncode == 1 and "already has an onboarding" in again.stderr
    retry = starter(
        app_env, "start", "--from-file", "examples/deal-initech.json", "--if-exists", "ignore"
    )
    assert retry.returncode == 0 and "nothing to do" in retry.stdout

    unknown = starter(app_env, "signal", "nobody", "kickoff-held", "--by", "csm-007")
    assert unknown.returncode == 1 and "no onboarding for account nobody" in unknown.stderr
    assert starter(app_env, "status", "nobody").returncode == 1

    wrong_name = starter(app_env, "signal", "initech", "kickof-held", "--by", "csm-007")
    assert wrong_name.returncode == 2 and "kickoff-held" in wrong_name.stderr
    naive = starter(
        app_env, "signal", "initech", "contract-signed", "--by", "x", "--at", "2026-01-01T10:00"
    )
    assert naive.returncode == 2 and "time zone" in naive.stderr
    future = starter(
        app_env, "signal", "initech", "contract-signed", "--by", "x", "--at", "2099-01-01T10:00Z"
    )
    assert future.returncode == 2 and "in the future" in future.stderr  # refused at the door
    assert status_json(app_env, "initech")["milestones"] == {}


def test_unreachable_temporal_is_reported(app_env: dict[str, str]) -> None:
    result = starter(app_env | {"TEMPORAL_ADDRESS": "127.0.0.1:1"}, "status", "acme")
    assert result.returncode == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in result.stderr


def test_without_a_worker_list_works_and_status_says_why_not(app_env: dict[str, str]) -> None:
    deal = json.loads((ROOT / "examples" / "deal-acme.json").read_text())
    path = Path(app_env["OUTBOX_DIR"]).parent / "deal-noworker.json"
    path.write_text(json.dumps(deal | {"account_id": "noworker"}))
    assert starter(app_env, "start", "--from-file", str(path)).returncode == 0

    listing = starter(app_env, "list")
    assert listing.returncode == 0, listing.stderr
    assert "noworker" in listing.stdout and "no worker yet" in listing.stdout

    status = starter(app_env, "status", "noworker")
    assert status.returncode == 1
    assert "is the worker running" in status.stderr


def test_worker_refuses_a_broken_roster_and_names_the_field(
    app_env: dict[str, str], tmp_path: Path
) -> None:
    roster = tmp_path / "csms.toml"
    roster.write_text(
        '[[csms]]\nid = "csm-1"\nname = "A"\nemail = "a@example.com"\ntouch_models = ["vip"]\n'
    )
    result = subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=app_env | {"ROSTER_FILE": str(roster)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "csms.0.touch_models.0" in result.stderr and str(roster) in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unmigrated_database_is_refused_with_the_command_to_run(
    app_env: dict[str, str],
) -> None:
    """Worker and CLI refuse an empty (or outdated) database and say what to run; after the
    migration both work."""
    worker = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=app_env, capture_output=True, text=True
    )
    assert worker.returncode == 1
    assert "is not migrated" in worker.stderr and "make migrate" in worker.stderr
    assert "Traceback" not in worker.stderr
    refused = starter(app_env, "csm", "list")
    assert refused.returncode == 1 and "make migrate" in refused.stderr

    migrate = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=app_env
    )
    assert migrate.returncode == 0
    listed = starter(app_env, "csm", "list")
    assert listed.returncode == 0, listed.stderr


@pytest.mark.parametrize(
    ("name", "value"), [("SMTP_PORT", "twenty-five"), ("MAX_CACHED_WORKFLOWS", "0")]
)
def test_invalid_settings_stop_the_worker_naming_the_variable(
    app_env: dict[str, str], name: str, value: str
) -> None:
    result = subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env=app_env | {name: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert name in result.stderr and value in result.stderr
    assert "Traceback" not in result.stderr


def test_csm_commands_for_tasks_deadlines_pause_and_cancel(
    app_env: dict[str, str], worker_process
) -> None:
    assert starter(app_env, "start", "--from-file", "examples/deal-demo.json").returncode == 0
    for milestone, who in (("contract-signed", "ae-001"), ("kickoff-held", "csm-007")):
        result = starter(app_env, "signal", "demo-acme", milestone, "--by", who)
        assert result.returncode == 0, result.stderr
    wait_for_stage(app_env, "demo-acme", "adopt")

    done = starter(app_env, "task", "demo-acme", "add-users", "--done", "--by", "csm-007")
    assert done.returncode == 0 and "task add-users of demo-acme done" in done.stdout, done.stderr
    assert starter(app_env, "task", "demo-acme", "add-users", "--by", "csm-007").returncode == 2

    before = {t["id"]: t for t in status_json(app_env, "demo-acme")["tasks"]}["configure"]
    moved = starter(
        app_env, "extend", "demo-acme", "--task", "configure", "--by", "+2m", "--reason", "holiday"
    )
    assert moved.returncode == 0 and "configure of demo-acme now due" in moved.stdout, moved.stderr
    after = {t["id"]: t for t in status_json(app_env, "demo-acme")["tasks"]}["configure"]
    assert after["extended_by"] == "PT2M" and after["due_at"] > before["due_at"]
    too_far = starter(
        app_env, "extend", "demo-acme", "--task", "configure", "--for", "+20m", "--reason", "x"
    )
    assert too_far.returncode == 1 and "allows moving this deadline by" in too_far.stderr
    bad = starter(app_env, "extend", "demo-acme", "--by", "+soon", "--reason", "x")
    assert bad.returncode == 2 and "+7d" in bad.stderr

    assert (
        starter(app_env, "pause", "demo-acme", "--by", "csm-007", "--reason", "IT").returncode == 0
    )
    twice = starter(app_env, "pause", "demo-acme", "--by", "csm-007", "--reason", "IT")
    assert twice.returncode == 1 and "already paused" in twice.stderr
    assert status_json(app_env, "demo-acme")["paused_since"] is not None
    resumed = starter(app_env, "resume", "demo-acme", "--by", "csm-007")
    assert resumed.returncode == 0 and "runs again" in resumed.stdout

    sent = starter(app_env, "engagement", "demo-acme", "--kind", "login")
    assert sent.returncode == 0 and "sent: login" in sent.stdout, sent.stderr
    assert starter(app_env, "engagement", "demo-acme", "--kind", "visit").returncode == 2
    no_escalation = starter(app_env, "ack", "demo-acme", "--by", "csm-007")
    assert no_escalation.returncode == 1 and "no open escalation" in no_escalation.stderr
    bad_mail = starter(
        app_env, "champion", "demo-acme", "--name", "Aiko", "--email", "aiko@", "--by", "csm-007"
    )
    assert bad_mail.returncode == 2 and "email" in bad_mail.stderr
    named = starter(
        app_env,
        "champion",
        "demo-acme",
        "--name",
        "Aiko Sato",
        "--email",
        "aiko@acme-logistics.example",
        "--by",
        "csm-007",
    )
    assert named.returncode == 0, named.stderr
    status = status_json(app_env, "demo-acme")
    assert status["champion"]["email"] == "aiko@acme-logistics.example"
    assert status["last_engagement_at"] is not None

    wrong = starter(app_env, "cancel", "demo-acme", "--reason", "too-expensive")
    assert wrong.returncode == 2 and "price" in wrong.stderr
    cancelled = starter(app_env, "cancel", "demo-acme", "--reason", "price", "--note", "budget")
    assert cancelled.returncode == 0, cancelled.stderr
    status = wait_for_stage(app_env, "demo-acme", "cancelled")
    assert status["cancellation"]["reason"] == "price"
    assert status["everboarding_workflow_id"] is None
    outbox = {plain_key(p.name) for p in Path(app_env["OUTBOX_DIR"]).glob("*.eml")}
    assert "onboarding-demo-acme_cancelled_farewell.eml" in outbox


def test_demo_journey_with_an_escalation_finishes_within_five_minutes(
    app_env: dict[str, str], worker_process, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "scripts/demo.py"],
        cwd=ROOT,
        env=app_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started < 300
    out = result.stdout
    assert "reminders sent so far: 1" in out
    assert "risk is high" in out
    assert "escalation #1 raised, told: csm" in out
    assert "accepted: escalation #1" in out
    assert "completed; everboarding" in out
    outbox = sorted(p.name for p in Path(app_env["OUTBOX_DIR"]).glob("*escalation_1_csm.eml"))
    assert len(outbox) == 1

    # What ops scrape: our own counters beside the SDK's, on METRICS_PORT.
    metrics = urlopen(f"http://127.0.0.1:{app_env['METRICS_PORT']}/metrics").read().decode()
    assert counter(metrics, "onboarding_started") == 1
    assert counter(metrics, "onboarding_completed") == 1
    assert counter(metrics, "onboarding_escalations_raised") == 1
    assert counter(metrics, "onboarding_reminders_sent") >= 1
    assert "temporal_workflow_completed" in metrics  # the SDK's runtime telemetry

    # Logs: one JSON object per line, with the account and workflow they are about.
    entries = [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines()]
    raised = next(e for e in entries if e["message"].startswith("escalation #1 raised"))
    account = raised["account_id"]
    assert account.startswith("demo-") and raised["workflow_id"] == f"onboarding-{account}"
    mails = [e for e in entries if e["message"].startswith("mail ") and e.get("activity_type")]
    assert mails and all(e["account_id"] == account for e in mails)


def counter(metrics: str, name: str) -> float:
    """The sum of a Prometheus counter's series (across plan and touch-model labels)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith((name + "{", name + " ", name + "_total"))
    )


async def test_list_filters_by_what_the_search_attributes_say(
    dev_env: WorkflowEnvironment, app_env: dict[str, str]
) -> None:
    """`list --stage/--risk/--csm/--overdue/--escalated` are visibility queries. Three runs
    carry the attributes a workflow would have set (no worker polls their queue, so they
    stay as started)."""
    tag = uuid.uuid4().hex[:8]
    runs = {
        "a": ("adopt", "high", "csm-007", True, True),
        "b": ("adopt", "low", "csm-009", False, False),
        "c": ("kickoff", "medium", "csm-007", False, False),
    }
    handles = []
    for name, (stage, risk, csm, overdue, escalated) in runs.items():
        account = f"lf-{tag}-{name}"
        handles.append(
            await dev_env.client.start_workflow(
                OnboardingWorkflow.run,
                onboarding_input(deal("acme", account_id=account)),
                id=f"onboarding-{account}",
                task_queue=f"nobody-{tag}",
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(SA_STAGE, stage),
                        SearchAttributePair(SA_RISK, risk),
                        SearchAttributePair(SA_CSM, csm),
                        SearchAttributePair(SA_OVERDUE, overdue),
                        SearchAttributePair(SA_ESCALATED, escalated),
                    ]
                ),
            )
        )

    def listed(*filters: str) -> set[str]:
        result = starter(app_env, "list", *filters, "--json")
        assert result.returncode == 0, result.stderr
        ours = (line["account_id"] for line in json.loads(result.stdout))
        return {a.rsplit("-", 1)[1] for a in ours if a.startswith(f"lf-{tag}-")}

    wait_until(lambda: listed() == {"a", "b", "c"})  # visibility is eventually consistent
    assert listed("--stage", "adopt") == {"a", "b"}
    assert listed("--risk", "high") == {"a"}
    assert listed("--csm", "csm-007") == {"a", "c"}
    assert listed("--overdue") == {"a"}
    assert listed("--escalated") == {"a"}
    assert listed("--stage", "adopt", "--csm", "csm-009") == {"b"}
    bad = starter(app_env, "list", "--risk", "extreme")
    assert bad.returncode == 2 and "--risk" in bad.stderr
    for handle in handles:
        await handle.terminate("test over")


def test_doctor_says_what_works_and_what_to_do(
    app_env: dict[str, str], worker_process, tmp_path: Path
) -> None:
    healthy = starter(app_env, "doctor")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    for line in ("ok   database: at revision", "ok   search attributes", "ok   workers: "):
        assert line in healthy.stdout

    broken = app_env | {
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
    }
    sick = starter(broken, "doctor")
    assert sick.returncode == 1
    assert "FAIL database" in sick.stdout and "make migrate" in sick.stdout
    assert "FAIL temporal: cannot reach Temporal" in sick.stdout


def test_a_terminated_onboarding_is_found_by_doctor_and_closed_by_reconcile(
    app_env: dict[str, str], worker_process, tmp_path: Path
) -> None:
    """Terminate cannot be caught by workflow code: the row stays open, holding its CSM's
    seat, until `reconcile` closes it from Temporal's record."""
    signed = {"contract_signed_at": "2026-11-20T09:00:00Z"}
    path = deal_file(tmp_path, "acme", account_id="term-co", **signed)
    assert starter(app_env, "start", "--from-file", path).returncode == 0
    wait_for_stage(app_env, "term-co", "kickoff")
    assert "1/12" in csm_line(app_env, "csm-007")
    temporal(app_env, "workflow", "terminate", "--workflow-id", "onboarding-term-co")

    sick = starter(app_env, "doctor")
    assert sick.returncode == 1
    assert "FAIL onboardings: 1 open in the database whose run has ended: term-co" in sick.stdout
    assert "starter.py reconcile" in sick.stdout
    listed = starter(app_env, "reconcile", "--dry-run")
    assert listed.returncode == 0 and "term-co: run terminated; would close it" in listed.stdout
    assert "1/12" in csm_line(app_env, "csm-007")  # a dry run changes nothing

    closed = starter(app_env, "reconcile")
    assert closed.returncode == 0, closed.stderr
    assert "term-co: closed as cancelled (run terminated" in closed.stdout
    assert "0/12" in csm_line(app_env, "csm-007")
    with Session(make_engine(app_env["DATABASE_URL"])) as session:
        row = session.get(Onboarding, "term-co")
        assert (row.stage, row.cancel_reason) == ("cancelled", "other")
        assert row.closed_at is not None and "terminated" in row.cancel_note
    assert "ok   onboardings" in starter(app_env, "doctor").stdout
    card = json.loads(starter(app_env, "report", "--json").stdout)["overall"]["completion"]
    assert (card["cancelled"], card["completed"], card["lapsed"]) == (1, 0, 0)
    again = starter(app_env, "reconcile")
    assert "nothing to reconcile" in again.stdout
    late = starter(app_env, "users", "term-co", "add", "ana@term.example")
    assert late.returncode == 1 and "has already ended" in late.stderr


def csm_line(env: dict[str, str], csm_id: str) -> str:
    listed = starter(env, "csm", "list")
    assert listed.returncode == 0, listed.stderr
    return next(line for line in listed.stdout.splitlines() if csm_id in line)


async def test_static_details_state_facts_of_the_deal_that_stay_true(
    dev_env: WorkflowEnvironment, app_env: dict[str, str], tmp_path: Path
) -> None:
    """The Web UI's static details never change: they say how the deal came, not a live
    state that would read "not yet" after the contract was signed."""
    deal = json.loads((ROOT / "examples" / "deal-initech.json").read_text())
    tag = uuid.uuid4().hex[:8]
    signed = deal | {"account_id": f"sd-{tag}-s", "contract_signed_at": "2026-11-02T09:00:00Z"}
    for document in (deal | {"account_id": f"sd-{tag}-u"}, signed):
        path = tmp_path / f"{document['account_id']}.json"
        path.write_text(json.dumps(document))
        assert starter(app_env, "start", "--from-file", str(path)).returncode == 0
    details = {}
    for suffix in ("u", "s"):
        handle = dev_env.client.get_workflow_handle(f"onboarding-sd-{tag}-{suffix}")
        details[suffix] = str(await (await handle.describe()).static_details())
        await handle.terminate("test over")
    assert "unsigned when the deal closed" in details["u"] and "not yet" not in details["u"]
    assert "**Contract** signed 2026-11-02, with the deal" in details["s"]


def test_list_and_status_agree_on_the_next_deadline_in_every_stage(
    app_env: dict[str, str], worker_process, tmp_path: Path
) -> None:
    """`list` reads the NextDeadline search attribute, `status` asks the run: the same date
    in every stage the journey waits in, and none once it is over."""
    account = f"nd-{uuid.uuid4().hex[:8]}"
    path = deal_file(tmp_path, "initech", account_id=account)
    assert starter(app_env, "start", "--from-file", path).returncode == 0

    def agree(stage: str) -> None:
        wanted = wait_for_stage(app_env, account, stage)["next_deadline"]
        assert (wanted is None) == (stage == "completed")
        until = time.monotonic() + 20  # visibility catches up with the run
        while True:
            listed = json.loads(starter(app_env, "list", "--json").stdout)
            row = next((r for r in listed if r["account_id"] == account), None)
            if row is not None and row["next_deadline"] == wanted and row["stage"] == stage:
                return
            assert time.monotonic() < until, f"{stage}: list says {row}, status {wanted}"
            time.sleep(0.3)

    agree("depart")
    for milestone, next_stage in (
        ("contract-signed", "kickoff"),
        ("kickoff-held", "adopt"),
        ("integration-done", "review"),
        ("review-passed", "completed"),
    ):
        result = starter(app_env, "signal", account, milestone, "--by", "csm-007")
        assert result.returncode == 0, result.stderr
        agree(next_stage)
