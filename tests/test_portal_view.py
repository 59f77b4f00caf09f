"""The portal page's model without a server: the tracker, the checklist's overdue words, and
the projected go-live date on constructed cases (on track, behind, paused, stuck, live)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.enums import Plan, Stage, TouchModel
from models.journey import StageVisit, TaskStatus
from models.onboarding import OnboardingStatus
from models.playbook import Playbook, load_playbook
from portal.links import Grant, Refused, contact_key, issue, read
from portal.view import Outlook, page, project
from tests.conftest import ROOT

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECRET = "portal-secret-0123456789"


@pytest.fixture(scope="module")
def playbook() -> Playbook:
    return load_playbook(ROOT / "playbooks", "standard").resolve("standard", TouchModel.HIGH)


def plan(playbook: Playbook) -> dict[str, timedelta]:
    """The stage deadlines a run's status gives (`stage_deadlines`)."""
    return {name: stage.deadline for name, stage in playbook.stages.items()}


def deadline(playbook: Playbook, stage: Stage) -> timedelta:
    return playbook.stages[stage.value].deadline


def status(
    visits: list[tuple[Stage, datetime, datetime | None]], **more: object
) -> OnboardingStatus:
    current, entered, _ = visits[-1]
    fields: dict = {
        "account_id": "acme",
        "account_name": "Acme Logistics GmbH",
        "plan": Plan.PREMIUM,
        "touch_model": TouchModel.HIGH,
        "playbook": "standard",
        "stage": current,
        "stage_entered_at": entered,
        "next_deadline": None,
        "csm_id": "csm-007",
        "milestones": {},
        "pending_milestones": [],
        "first_value_at": None,
        "everboarding_workflow_id": None,
        "history": [StageVisit(stage=s, entered_at=a, exited_at=b) for s, a, b in visits],
    }
    return OnboardingStatus(**(fields | more))


def walked(
    playbook: Playbook, pace: float, upto: Stage
) -> list[tuple[Stage, datetime, datetime | None]]:
    """The stages before `upto` each taking `pace` times their deadline, then `upto` entered."""
    visits, at = [], T0
    for stage in list(Stage)[: upto.position]:
        took = deadline(playbook, stage) * pace
        visits.append((stage, at, at + took))
        at += took
    visits.append((upto, at, None))
    return visits


def test_at_the_plans_pace_the_go_live_is_the_plans_date(playbook: Playbook) -> None:
    visits = walked(playbook, 1.0, Stage.ADOPT)
    now = visits[-1][1] + DAY
    projection = project(status(visits), plan(playbook), now)
    assert projection.outlook is Outlook.ON_TRACK
    assert abs(projection.go_live - projection.planned) <= DAY  # type: ignore[operator]


def test_twice_as_slow_so_far_is_behind_and_later(playbook: Playbook) -> None:
    visits = walked(playbook, 2.0, Stage.ADOPT)
    now = visits[-1][1] + DAY
    projection = project(status(visits), plan(playbook), now)
    assert projection.outlook is Outlook.BEHIND
    remaining = (deadline(playbook, Stage.ADOPT) + deadline(playbook, Stage.REVIEW)) * 2
    assert projection.go_live == now + remaining - DAY


def test_faster_than_planned_is_on_track_and_earlier(playbook: Playbook) -> None:
    visits = walked(playbook, 0.5, Stage.KICKOFF)
    now = visits[-1][1]
    projection = project(status(visits), plan(playbook), now)
    assert projection.outlook is Outlook.ON_TRACK
    assert projection.go_live < projection.planned  # type: ignore[operator]


def test_a_paused_clock_is_stuck_and_the_plan_moves_with_the_pause(playbook: Playbook) -> None:
    visits = walked(playbook, 1.0, Stage.ADOPT)
    paused = visits[-1][1] + DAY
    now = paused + 10 * DAY
    projection = project(status(visits, paused_since=paused), plan(playbook), now)
    assert projection.outlook is Outlook.STUCK
    unpaused = project(status(visits), plan(playbook), paused)
    assert projection.planned == unpaused.planned + 10 * DAY  # type: ignore[operator]


def test_a_stage_open_for_more_than_twice_its_deadline_is_stuck(playbook: Playbook) -> None:
    visits = walked(playbook, 1.0, Stage.ADOPT)
    now = visits[-1][1] + 2 * deadline(playbook, Stage.ADOPT) + DAY
    assert project(status(visits), plan(playbook), now).outlook is Outlook.STUCK


def test_after_review_the_go_live_is_when_it_passed(playbook: Playbook) -> None:
    visits = walked(playbook, 1.0, Stage.EXPAND)
    review_passed = visits[-1][1]
    projection = project(status(visits), plan(playbook), review_passed + 5 * DAY)
    assert (projection.go_live, projection.outlook) == (review_passed, Outlook.LIVE)


def test_the_page_says_what_is_overdue_and_which_tasks_the_customer_ticks(
    playbook: Playbook,
) -> None:
    visits = walked(playbook, 1.0, Stage.ADOPT)
    now = visits[-1][1] + 3 * DAY
    tasks = [
        TaskStatus(
            id="add-users",
            title="Add users",
            owner="customer",
            stage=Stage.ADOPT,
            required=True,
            due_at=now - 2 * DAY,
        ),
        TaskStatus(
            id="sso",
            title="Set up SSO",
            owner="se",
            stage=Stage.ADOPT,
            required=True,
            due_at=now + DAY,
        ),
        TaskStatus(
            id="first-report",
            title="First report",
            owner="customer",
            stage=Stage.ADOPT,
            required=False,
            due_at=now - DAY,
            done_at=now - 2 * DAY,
        ),
    ]
    shown = page(status(visits, tasks=tasks), plan(playbook), now)
    by_id = {task.id: task for task in shown.tasks}
    assert by_id["add-users"].overdue_by == 2 * DAY and by_id["add-users"].tickable
    assert not by_id["sso"].tickable and by_id["sso"].overdue_by is None
    assert not by_id["first-report"].tickable and by_id["first-report"].overdue_by is None
    assert [(s.stage, s.state) for s in shown.steps][2:5] == [
        (Stage.KICKOFF, "done"),
        (Stage.ADOPT, "current"),
        (Stage.REVIEW, "upcoming"),
    ]


def test_a_cancelled_onboarding_is_a_closed_page_without_a_projection(
    playbook: Playbook,
) -> None:
    visits = walked(playbook, 1.0, Stage.ADOPT) + [(Stage.CANCELLED, T0 + 40 * DAY, None)]
    shown = page(status(visits), plan(playbook), T0 + 41 * DAY)
    assert shown.closed and shown.projection is None


def test_a_link_opens_for_its_account_until_it_expires() -> None:
    now = T0
    token = issue(SECRET, "acme", "Kenji.Mori@acme.example", now, 30 * DAY)
    grant = read(SECRET, token, now + 29 * DAY)
    assert grant == Grant(
        "acme", contact_key("kenji.mori@acme.example"), grant.issued_at, now + 30 * DAY
    )
    assert "kenji" not in token.lower() and "@" not in token
    with pytest.raises(Refused):
        read(SECRET, token, now + 30 * DAY)  # expired
    with pytest.raises(Refused):
        read("another-secret-0123456", token, now)
    with pytest.raises(Refused):
        read(SECRET, token.replace("acme", "globex", 1), now)  # another account, same signature
    with pytest.raises(Refused):
        read(SECRET, token[:-1] + ("0" if token[-1] != "0" else "1"), now)
    for junk in ("", "acme", "../../etc/passwd", token + ".x", "x" * 5000):
        with pytest.raises(Refused):
            read(SECRET, junk, now)
