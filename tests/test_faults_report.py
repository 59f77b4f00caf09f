"""The fault run's mail accounting (benchmarks/faults_report.py): each duplicate delivery is put
down to the fault that cut it off from its bookkeeping. Pure: SMTP records, worker logs and
fault events as the run writes them, no servers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from faults_report import activity_failures, mail_summary, marked_sent, read_deliveries
from faults_stack import Event

T0 = 1_800_000_000.0
KEY = "onboarding-acme.1a2b3c4d:kickoff:welcome"
OTHER = "onboarding-acme.1a2b3c4d:handoff:brief"


def write_deliveries(folder: Path, *deliveries: tuple[float, str, str]) -> Path:
    path = folder / "deliveries.jsonl"
    with path.open("w") as file:
        for at, key, worker in deliveries:
            line = {"t": T0 + at, "key": key, "mail_from": f"faults+{worker}@example.com"}
            file.write(json.dumps(line) + "\n")
    return path


def write_log(folder: Path, worker: str, *lines: dict[str, str]) -> None:
    (folder / f"worker-{worker}.log").write_text(
        "".join(json.dumps(line) + "\n" for line in lines) + '{"message": "cut off by SIGK'
    )


def summary(folder: Path, events: list[Event], outbox: dict[str, str]) -> dict:
    return mail_summary(
        read_deliveries(folder / "deliveries.jsonl"), marked_sent(folder), events, T0, outbox
    )


def test_a_delivery_its_worker_was_killed_after_is_the_crash_window(tmp_path: Path) -> None:
    write_deliveries(tmp_path, (10.0, KEY, "w1.2"), (12.0, OTHER, "w2.1"), (75.0, KEY, "w2.1"))
    write_log(tmp_path, "w2.1", {"message": f"mail {OTHER} sent"}, {"message": f"mail {KEY} sent"})
    write_log(tmp_path, "w1.2")
    events = [Event(T0 + 10.4, "worker-kill", worker="w1.2")]

    found = summary(tmp_path, events, {KEY: "sent", OTHER: "sent"})

    assert (found["deliveries"], found["keys_delivered"], found["extra_deliveries"]) == (3, 2, 1)
    [dup] = found["duplicates"]
    assert dup["key"] == KEY and dup["count"] == 2
    assert [d["worker"] for d in dup["deliveries"]] == ["w1.2", "w2.1"]
    [cause] = dup["causes"]
    assert cause["kind"] == "worker killed after delivering"
    assert "w1.2 SIGKILLed at 10.4 s, 0.4 s after the delivery" in cause["detail"]
    assert found["marked_sent_never_delivered"] == [] and found["not_sent_at_end"] == []


def test_a_kill_of_another_worker_explains_nothing(tmp_path: Path) -> None:
    write_deliveries(tmp_path, (10.0, KEY, "w1.2"), (75.0, KEY, "w2.1"))
    write_log(tmp_path, "w2.1", {"message": f"mail {KEY} sent"})
    events = [Event(T0 + 10.4, "worker-kill", worker="w2.0")]

    [dup] = summary(tmp_path, events, {KEY: "sent"})["duplicates"]

    assert dup["causes"][0]["kind"] == "unexplained"


def test_two_attempts_both_marked_sent_overlapped(tmp_path: Path) -> None:
    write_deliveries(tmp_path, (10.0, KEY, "w1.1"), (10.2, KEY, "w2.1"))
    write_log(tmp_path, "w1.1", {"message": f"mail {KEY} sent"})
    write_log(tmp_path, "w2.1", {"message": f"mail {KEY} sent"})

    found = summary(tmp_path, [], {KEY: "sent"})

    assert found["extra_by_cause"] == {"overlapping attempts": 1}


def test_mail_server_and_database_faults_after_a_delivery(tmp_path: Path) -> None:
    write_deliveries(
        tmp_path,
        (10.0, KEY, "w1.1"),
        (50.0, KEY, "w1.1"),
        (20.0, OTHER, "w1.1"),
        (90.0, OTHER, "w1.1"),
    )
    write_log(tmp_path, "w1.1")  # killed before it could log any mark
    events = [Event(T0 + 10.1, "smtp-down"), Event(T0 + 21.0, "db-drop", "4 connections")]

    found = summary(tmp_path, events, {KEY: "sent", OTHER: "sent"})

    assert found["extra_by_cause"] == {
        "SMTP server killed after accepting": 1,
        "database connections dropped after delivering": 1,
    }


def test_rows_never_delivered_are_listed(tmp_path: Path) -> None:
    write_deliveries(tmp_path, (10.0, KEY, "w1.1"))

    found = summary(tmp_path, [], {KEY: "sent", OTHER: "sent", "p": "pending"})

    assert found["marked_sent_never_delivered"] == [OTHER]
    assert found["not_sent_at_end"] == ["p"]
    assert found["duplicates"] == []


def test_a_folded_key_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.jsonl"
    path.write_text(json.dumps({"t": T0, "key": f"\n {KEY}", "mail_from": "x@example.com"}))

    [delivery] = read_deliveries(path)

    assert (delivery.key, delivery.worker) == (KEY, "?")


def test_failed_attempts_are_counted_by_their_exception(tmp_path: Path) -> None:
    failed = "Completing activity as failed"
    sql = (
        "Traceback (most recent call last):\n  ...\n"
        "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) server closed\n"
        "[SQL: SELECT 1]\n(Background on this error at: https://sqlalche.me/e/21/e3q8)"
    )
    refused = "Traceback:\nConnectionRefusedError: [Errno 111] Connection refused"
    write_log(
        tmp_path,
        "w1.1",
        {"message": failed, "error": refused},
        {"message": failed, "error": sql},
        {"message": failed, "error": refused},
    )

    assert activity_failures(tmp_path) == {
        "ConnectionRefusedError: [Errno 111] Connection refused": 2,
        "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) server closed": 1,
    }
