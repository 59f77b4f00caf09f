"""The academy catalogue and learning paths: what each plan and segment sees."""

from __future__ import annotations

import html
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


def test_a_segments_wording_is_in_the_customers_language() -> None:
    """Like titles: the deal's language where the file gives it, carried without the others."""
    japanese = ACADEMY.path_for("premium", "logistics", "shipment tracking", "ja")
    english = ACADEMY.path_for("premium", "logistics", "shipment tracking", "en")
    assert japanese.industry and japanese.use_case and english.industry and english.use_case
    assert japanese.industry.tip.startswith("物流チームでは、まず配送業者1社と倉庫1か所を連携")
    assert japanese.industry.example.startswith("配車担当の方は")
    assert japanese.use_case.outcome.startswith("最初の出荷を")
    assert "connecting one carrier" in english.industry.tip
    assert "first shipment tracked live" in english.use_case.outcome
    assert japanese.industry.tips == japanese.industry.examples == japanese.use_case.outcomes == {}
    # Every segment of the shipped file has its Japanese.
    for industry in ACADEMY.industries.values():
        assert industry.tips.get("ja") and industry.examples.get("ja")
    for use_case in ACADEMY.use_cases.values():
        assert use_case.outcomes.get("ja")


def test_a_language_the_wording_is_not_given_in_gets_the_default() -> None:
    academy = AcademyFile.model_validate(
        {
            "courses": [
                {"id": "a", "title": "A", "modules": [{"id": "m", "title": "M", "within": "1d"}]}
            ],
            "industries": {
                "retail": {
                    "tip": "start small",
                    "example": "One queue.",
                    "examples": {"ja": "一覧は1つ。"},
                }
            },
            "use_cases": {"online orders": {"outcome": "your first order"}},
        }
    )
    path = academy.path_for("basic", "retail", "online orders", "ja")
    assert path.industry and path.use_case
    assert (path.industry.tip, path.industry.example) == ("start small", "一覧は1つ。")
    assert path.use_case.outcome == "your first order"
    french = ACADEMY.path_for("premium", "logistics", "shipment tracking", "fr")
    assert french.industry == ACADEMY.path_for("premium", "logistics", "shipment tracking").industry


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


@pytest.mark.parametrize(
    ("example", "words", "other"),
    [
        (
            "ja",
            [
                "ヒント：物流チームでは、まず配送業者1社と倉庫1か所を連携させることが、最初の成果への近道です。",
                "まず目指すゴール：最初の出荷を、配送業者での読み取りからお届けまでリアルタイムで追跡すること。",
            ],
            ["carrier", "Dispatchers"],
        ),
        (
            "acme",
            [
                "A tip: logistics teams get their first win by connecting one carrier",
                "Our first goal together: your first shipment tracked live from the carrier's scan",
            ],
            ["物流", "配車"],
        ),
    ],
)
def test_the_welcome_gives_the_tip_and_first_goal_in_the_customers_language(
    example: str, words: list[str], other: list[str]
) -> None:
    """A Japanese deal's welcome carries the Japanese tip and outcome, an English deal's the
    English, in the text and the HTML (the text also the industry's example)."""
    request = deal(example)
    path = ACADEMY.path_for(request.plan, request.industry, request.use_case, request.locale)
    context = MailContext(account=request, path=path)
    to = request.champion
    mail = Mail(key="k", template=MailTemplate.WELCOME, to=to)
    links = {"app": "a", "academy": "b", "help": "c", "exit_survey": "d"}
    values = variables(
        mail, context, to, links=links, default_currency="USD", locale=request.locale
    )
    welcome = render(template_environment(request.locale), "welcome", values)
    assert welcome.html is not None
    for text in (welcome.text, html.unescape(welcome.html)):
        for part in words:
            assert part in text, (part, text)
        assert not [word for word in other if word in text], text
    assert path.industry and path.industry.example in welcome.text
