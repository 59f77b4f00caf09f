"""Playbooks refuse to load with the file and field named; overrides resolve per touch model."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from models.playbook import PlaybookError, load_playbook

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "custom") -> Path:
    (tmp_path / f"{name}.toml").write_text(text)
    return tmp_path


STAGES = "\n".join(
    f'[stages.{s}]\ndeadline = "{d}"'
    for s, d in [
        ("depart", "14d"),
        ("handoff", "2d"),
        ("kickoff", "7d"),
        ("adopt", "45d"),
        ("review", "14d"),
        ("expand", "7d"),
    ]
)


def test_shipped_playbook_resolves_per_touch_model() -> None:
    playbook = load_playbook(ROOT / "playbooks", "standard")
    high = playbook.resolve("standard", "high")
    tech = playbook.resolve("standard", "tech")
    assert high.stage("kickoff").automated is False
    assert tech.stage("kickoff").automated is True
    assert tech.stage("kickoff").deadline == timedelta(days=3)
    assert [t.id for t in tech.stage("kickoff").tasks] == ["academy-access"]
    assert [t.id for t in high.stage("adopt").tasks] == [
        "add-users",
        "configure",
        "integration-test",
    ]
    total = sum((high.stage(s).deadline for s in high.stages), timedelta())
    assert timedelta(days=80) <= total <= timedelta(days=100)  # ~90 days high-touch
    assert sum((tech.stage(s).deadline for s in tech.stages), timedelta()) < total


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("36h", timedelta(hours=36)),
        ("14d", timedelta(days=14)),
        ("2w", timedelta(weeks=2)),
        ("P3D", timedelta(days=3)),
    ],
)
def test_durations_are_human_readable(tmp_path: Path, duration: str, expected: timedelta) -> None:
    text = STAGES.replace('deadline = "45d"', f'deadline = "{duration}"')
    text += '\n[reminders]\nbefore = ["1m"]'  # a reminder must fit in the shortest deadline
    playbook = load_playbook(write(tmp_path, text), "custom")
    assert playbook.stages["adopt"].deadline == expected


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (STAGES.replace('deadline = "45d"', 'deadline = "soon"'), "stages.adopt.deadline"),
        (STAGES.replace('deadline = "45d"', 'deadline = "0d"'), "stages.adopt.deadline"),
        (STAGES.replace("[stages.review]", "[stages.reveiw]"), "stages.reveiw"),
        (STAGES.replace('[stages.expand]\ndeadline = "7d"', ""), "stages: missing expand"),
        (
            STAGES + '\n[[stages.adopt.tasks]]\nid = "Add Users"\ntitle = "x"\ndue = "7d"',
            "stages.adopt.tasks.0.id",
        ),
        (STAGES + '\n[touch_models.vip.stages.adopt]\ndeadline = "3d"', "touch_models.vip"),
        (STAGES + '\n[everboarding]\ncadence = "monthly"', "everboarding.cadence"),
        ("stages = [", "not valid TOML"),
    ],
)
def test_invalid_playbook_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(PlaybookError) as error:
        load_playbook(write(tmp_path, text), "custom")
    assert str(tmp_path / "custom.toml") in str(error.value)
    assert field in str(error.value)


def test_unknown_playbook_lists_the_known_ones() -> None:
    with pytest.raises(PlaybookError, match=r"unknown playbook 'gold' \(known: demo, standard\)"):
        load_playbook(ROOT / "playbooks", "gold")


def test_demo_playbook_has_the_standard_shape_in_minutes() -> None:
    standard = load_playbook(ROOT / "playbooks", "standard").resolve("standard", "high")
    demo = load_playbook(ROOT / "playbooks", "demo").resolve("demo", "high")
    for stage, plan in standard.stages.items():
        assert [t.id for t in demo.stage(stage).tasks] == [t.id for t in plan.tasks]
        assert demo.stage(stage).deadline <= timedelta(minutes=5)
    assert demo.reminders.before == [timedelta(seconds=20)]


def test_reminder_schedule_before_at_and_overdue() -> None:
    from datetime import UTC, datetime

    policy = load_playbook(ROOT / "playbooks", "standard").resolve("standard", "high").reminders
    due = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)
    assert policy.schedule(due) == [
        due - timedelta(days=2),
        due,
        due + timedelta(days=3),
        due + timedelta(days=6),
        due + timedelta(days=9),
    ]


def test_tasks_and_courses_are_titled_in_the_customers_language() -> None:
    from models.academy import load_academy
    from models.playbook import load_playbook

    folder = Path(__file__).resolve().parent.parent / "playbooks"
    standard = load_playbook(folder, "standard")
    english = standard.resolve("standard", "high")
    japanese = standard.resolve("standard", "high", "ja")
    titles = {t.id: t.title for t in japanese.stages["adopt"].tasks}
    assert titles["add-users"] == "チームのユーザーを登録"
    assert {t.id: t.title for t in english.stages["adopt"].tasks}["add-users"] == (
        "Add your team's users"
    )
    assert all(not t.titles for plan in japanese.stages.values() for t in plan.tasks)
    assert japanese.stages["adopt"].tasks[0].due == english.stages["adopt"].tasks[0].due

    path = load_academy(folder).path_for("premium", "logistics", "shipment tracking", "ja")
    assert path.courses[0].title == "はじめに"
    assert path.courses[0].modules[0].title == "ワークスペースのご案内"
    # A language the file has no title for keeps the file's own.
    assert load_academy(folder).path_for("premium", "x", "y", "fr").courses[0].title == (
        "Getting started"
    )
