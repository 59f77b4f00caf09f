"""The academy catalogue and learning paths: what each plan and segment sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.mail import render, template_environment, variables
from models.academy import AcademyFile, load_academy
from models.activities import Mail, MailContext, MailTemplate
from models.journey import Contact
from models.playbook import PlaybookError
from tests.conftest import ROOT, deal

ACADEMY = load_academy(ROOT / "playbooks")
PREMIUM_ONLY = {c.id for c in ACADEMY.courses if "basic" not in c.plans}


@pytest.mark.parametrize("plan", ["basic", "premium", "enterprise"])
def test_a_plan_sees_only_its_courses_and_features(plan: str) -> None:
    path = ACADEMY.path_for(plan, "Retail", "online orders")
    assert path.courses, "every plan has a path"
    assert all(plan in course.plans for course in path.courses)
    expected_features = {f.name for f in ACADEMY.features if plan in f.plans}
    assert set(path.features) == expected_features
    if plan == "basic":
        assert PREMIUM_ONLY and not PREMIUM_ONLY & {c.id for c in path.courses}
        assert "Single sign-on" not in path.features
    else:
        assert "sso-and-audit" in {c.id for c in path.courses}


def test_industry_and_use_case_narrow_the_path_and_pick_the_wording() -> None:
    logistics = ACADEMY.path_for("premium", "  Logistics ", "Shipment Tracking")
    retail = ACADEMY.path_for("premium", "retail", "online orders")
    assert "logistics-tracking" in {c.id for c in logistics.courses}
    assert "logistics-tracking" not in {c.id for c in retail.courses}
    assert logistics.industry and "carrier" in logistics.industry.tip
    assert logistics.use_case and "shipment" in logistics.use_case.outcome
    unknown = ACADEMY.path_for("basic", "aerospace", "rockets")
    assert unknown.industry is None and unknown.use_case is None


def test_progress_marks_modules_done_and_overdue_against_their_time_frame() -> None:
    path = ACADEMY.path_for("basic", "retail", "online orders")
    opened = datetime(2026, 3, 2, tzinfo=UTC)
    done = {"getting-started/tour": opened + timedelta(days=1), "reporting": opened}
    courses = {c.id: c for c in path.progress(opened, done, opened + timedelta(days=8))}
    started = {m.id: m for m in courses["getting-started"].modules}
    assert started["tour"].done_at == opened + timedelta(days=1) and not started["tour"].overdue
    assert started["invite-team"].overdue  # due on day 7
    assert not started["first-project"].overdue  # due on day 14
    assert courses["getting-started"].done_at is None
    assert courses["reporting"].done_at == opened  # a whole course at once
    assert path.unknown("governance")  # enterprise only
    assert path.unknown("getting-started/nope")
    assert not path.unknown("getting-started/tour")


def test_a_broken_catalogue_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "academy.toml").write_text(
        '[[courses]]\nid = "x"\ntitle = "X"\nplans = ["gold"]\n'
        'modules = [{ id = "m", title = "M", within = "soon" }]\n'
    )
    with pytest.raises(PlaybookError) as error:
        load_academy(tmp_path)
    message = str(error.value)
    assert "courses.0.plans.0" in message and "courses.0.modules.0.within" in message
    with pytest.raises(ValueError, match="'a' appears twice"):
        AcademyFile.model_validate(
            {
                "courses": [
                    {
                        "id": "a",
                        "title": "A",
                        "modules": [{"id": "m", "title": "M", "within": "1d"}],
                    },
                    {
                        "id": "a",
                        "title": "B",
                        "modules": [{"id": "m", "title": "M", "within": "1d"}],
                    },
                ]
            }
        )


def test_one_welcome_template_speaks_each_segment() -> None:
    env = template_environment()
    mails = {}
    for name in ("acme", "initech"):
        request = deal(name)
        path = ACADEMY.path_for(request.plan, request.industry, request.use_case)
        context = MailContext(account=request, path=path)
        to = Contact(name="Kenji Mori", email="k@example.com")
        mail = Mail(key="k", template=MailTemplate.WELCOME, to=to)
        links = {"app": "a", "academy": "b", "help": "c", "exit_survey": "d"}
        mails[name] = render(
            env, "welcome", variables(mail, context, to, links=links, default_currency="USD")
        ).text
    assert "connecting one carrier" in mails["acme"]  # logistics tip
    assert "first shipment tracked live" in mails["acme"]  # use-case outcome
    assert "claims handlers" in mails["initech"].lower() or "line of business" in mails["initech"]
    assert "carrier" not in mails["initech"]
