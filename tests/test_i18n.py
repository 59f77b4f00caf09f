"""Mail in the reader's language (issue 15): every customer-facing template in `en` and `ja`
through the gettext catalogs, and every message of the CS team's in the deployment's language
(INTERNAL_LOCALE); no English of the templates left in a Japanese mail, dates, times and
money in the locale's conventions and the reader's time zone; deals naming a locale and a
time zone at the door and in the CSV, and running onboardings decoding as before."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from pydantic import ValidationError

from activities.mail import (
    CUSTOMER_TEMPLATES,
    FileOutbox,
    Rendered,
    inbox_name,
    render,
    template_environment,
    variables,
)
from activities.notify import Notify
from infra import i18n
from infra.db import SessionFactory
from infra.settings import Settings
from models.academy import LearningPath, load_academy
from models.activities import Mail, MailContext, MailTemplate, Role, TaskDue
from models.deal_csv import read_deals
from models.door import admit
from models.everboarding import FeatureAnnouncement
from models.journey import (
    QUEUE_ID,
    Cancellation,
    CancelReason,
    Contact,
    CsmRef,
    Escalation,
    OnboardingRequest,
    RiskAssessment,
    RiskLevel,
    Stage,
    TouchModel,
)
from tests.conftest import ROOT, _fresh, deal

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
LINKS = {
    "app": "https://app.example.com",
    "academy": "https://academy.example.com",
    "help": "https://help.example.com",
    "exit_survey": "https://survey.example.com/exit",
}
ACADEMY = load_academy(ROOT / "playbooks")
MEI = CsmRef(id="csm-007", name="Mei Tanaka", email="mei.tanaka@example.com")
TEAM = CsmRef(id="csm-pool", name="Scaled CS team", email="scaled-cs@example.com", pooled=True)
# Customer-facing: the templates that only go to the customer, and the reminder when it does.
CUSTOMER_MAIL = sorted({*CUSTOMER_TEMPLATES, MailTemplate.REMINDER})
# The CS team's, the AE's and CS ops' messages: every other template, and the reminder when it
# goes to the team.
INTERNAL_MAIL = sorted(set(MailTemplate) - set(CUSTOMER_TEMPLATES))
CHAT = sorted(t for t in MailTemplate if (ROOT / "activities/templates" / f"{t}.chat.j2").exists())
QUEUED = CsmRef(
    id=QUEUE_ID,
    name="Lena Park (CS lead, onboarding queue)",
    email="cs-queue@example.com",
    pooled=True,
    reason="every CSM serving the touch model is at capacity",
)
LEAD = Contact(name="Lena Park", email="lena.park@example.com")
JONAS = CsmRef(id="csm-012", name="Jonas Berg", email="jonas.berg@example.com")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return _fresh(sqlite_url)


def japanese_deal(**changes: Any) -> OnboardingRequest:
    return deal("ja").model_copy(update=changes)


def parts(request: OnboardingRequest) -> tuple[LearningPath, list[TaskDue], FeatureAnnouncement]:
    """What every context is made of: the deal's learning path in its language, an open step
    due and one overdue, a feature announced."""
    path = ACADEMY.path_for(request.plan, request.industry, request.use_case, request.locale)
    tasks = [
        TaskDue(id="add-users", title="Add users", owner="customer", required=True, due_at=T0),
        TaskDue(id="kickoff", title="Kickoff call", owner="csm", required=True, due_at=T0 + DAY),
    ]
    feature = FeatureAnnouncement(
        id="audit-log", name="Audit log", summary="who did what", plans=["premium"], announced_at=T0
    )
    return path, tasks, feature


def contexts(request: OnboardingRequest) -> list[MailContext]:
    """Representative contexts: before and after signing, a named CSM, the pooled team and
    none yet (the AE's), a kickoff meeting or an automated one, courses or none, an open step
    due and one overdue."""
    path, tasks, feature = parts(request)
    cases = []
    for number, (csm, signed, automated, courses, now) in enumerate(
        [
            (None, None, False, path.courses, T0 - DAY),
            (MEI, T0 - DAY, False, path.courses, T0 + DAY),
            (TEAM, T0 - DAY, True, [], T0 - DAY),
        ]
    ):
        cases.append(
            MailContext(
                account=request.model_copy(
                    update={"touch_model": TouchModel.HIGH if csm is MEI else TouchModel.TECH}
                ),
                csm=csm,
                contract_signed_at=signed,
                kickoff_automated=automated,
                path=path,
                tasks=tasks,
                step=tasks[number % 2],
                now=now,
                courses=courses,
                features=[feature] if courses else [],
                digest_number=number + 1,
            )
        )
    return cases


def rendered(
    template: MailTemplate, context: MailContext, locale: str, **extra: Any
) -> tuple[Rendered, dict[str, Any]]:
    to = context.account.champion
    role = Role.USER if template is MailTemplate.ACADEMY_INVITE else Role.CHAMPION
    mail = Mail(key="k", template=template, to=to, role=role)
    values = variables(
        mail,
        context,
        to,
        links=LINKS,
        default_currency="USD",
        locale=locale,
        timezone=context.account.timezone or "UTC",
        **extra,
    )
    return render(template_environment(locale), template, values), values


def strings(value: Any) -> list[str]:
    """Every text in a template's variables: what the deal, the playbook and the academy say
    (data, in whatever language they were written), not what the template says."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    if hasattr(value, "__dict__"):
        return strings(vars(value))
    return []


def without_data(text: str, values: dict[str, Any]) -> str:
    # Who speaks is worded by us (titles, the team's name): only the context is data.
    context = {key: value for key, value in values.items() if key != "voice"}
    data = sorted({s for s in strings(context) if len(s) > 1}, key=len, reverse=True)
    for value in data:
        text = text.replace(value, " ")
    return re.sub(r"https?://\S+|\S+@\S+", " ", text)


# --- every customer mail in both languages -------------------------------------------------------


@pytest.mark.parametrize("locale", i18n.SUPPORTED_LOCALES)
@pytest.mark.parametrize("template", CUSTOMER_MAIL)
def test_every_customer_mail_renders_in_each_locale(template: MailTemplate, locale: str) -> None:
    request = japanese_deal(locale=locale)
    for context in contexts(request):
        mail, _ = rendered(template, context, locale)
        assert mail.subject.strip() and mail.text.strip()
        assert mail.html is not None and f'<html lang="{locale}">' in mail.html
        if locale == "ja":
            # Addressed as a Japanese letter: the company, then the person with 様.
            assert mail.text.startswith(f"{request.account_name}\n森 様\n\n"), mail.text
            assert "いつもお世話になっております。" in mail.text
            assert "森 様" in mail.html and "Hi " not in mail.text
        else:
            assert mail.text.startswith("Hi 森,\n"), mail.text


@pytest.mark.parametrize("template", CUSTOMER_MAIL)
def test_a_japanese_mail_keeps_no_english_of_the_templates(template: MailTemplate) -> None:
    """What is left in English is data the deal, the playbook or the academy gave (a task's
    title, a course): the templates' own words are all translated."""
    for context in contexts(japanese_deal()):
        en, values = rendered(template, context, "en")
        ja, _ = rendered(template, context, "ja")
        assert ja.html is not None and en.html is not None
        for english, japanese in ((en.subject, ja.subject), (en.text, ja.text)):
            for line in english.splitlines():
                own = without_data(line, values)
                if re.search(r"[A-Za-z]{2,}", own):
                    assert line.strip() not in japanese, (template, line)
            left = without_data(japanese, values)
            assert not re.findall(r"[A-Za-z]{3,}", left), (template, japanese)
        html_words = without_data(html.unescape(re.sub(r"<[^>]+>", " ", ja.html)), values)
        assert not re.findall(r"[A-Za-z]{3,}", html_words), (template, ja.html)


# --- the CS team's mail in the deployment's language -------------------------------------------


def internal_contexts(request: OnboardingRequest) -> list[MailContext]:
    """Representative contexts of the team's messages: a named CSM (the account switched to
    high-touch at high risk, a cancelled run, an escalation's first rung, a kickoff meeting, the
    review's deadline), the queue (no goals recorded, an escalation not acknowledged in time, an
    automated kickoff, a lapsed run, no question asker), the pooled team, and no CSM yet."""
    path, tasks, feature = parts(request)
    risk = RiskAssessment(level=RiskLevel.HIGH, reasons=["no engagement for 12 days"])
    cases = []
    for number, csm in enumerate([MEI, QUEUED, TEAM.model_copy(update={"pooled": False}), None]):
        first = number == 0
        cases.append(
            MailContext(
                account=request.model_copy(
                    update={
                        "touch_model": TouchModel.LOW if number in (0, 2) else TouchModel.TECH,
                        "goals": [] if number == 1 else request.goals,
                    }
                ),
                csm=csm,
                touch_model=TouchModel.HIGH if first else None,
                stage_due_at=T0 + 3 * DAY if first else None,
                kickoff_automated=number == 1,
                path=path,
                tasks=tasks,
                step=tasks[number % 2],
                now=T0,
                digest_number=number + 1,
                courses=path.courses if number != 1 else [],
                features=[feature] if number != 2 else [],
                cancellation=Cancellation(
                    reason=CancelReason.PRICE, by="csm-007", at=T0, stage=Stage.ADOPT
                )
                if number in (0, 3)
                else None,
                risk=risk,
                escalation=Escalation(
                    number=2,
                    raised_at=T0,
                    reasons=risk.reasons,
                    level=number % 2,
                    notified=["csm", "cs_lead"][: number % 2 + 1],
                ),
                previous_csm=[None, JONAS, QUEUED, None][number],
                reply_to=request.champion if number != 1 else None,
                note="the customer chose another vendor",
            )
        )
    return cases


def internal_mails(
    template: MailTemplate, locale: str
) -> list[tuple[Rendered, dict[str, Any], Role, str]]:
    """The team's `template` in `locale` for each context and reader (the CSM, else the CS
    lead; a reassignment also to who had the account): text and, where it has one, chat."""
    env = template_environment(locale)
    found = []
    for context in internal_contexts(japanese_deal()):
        csm = context.csm
        if csm is None and template in (MailTemplate.HANDOFF_BRIEF, MailTemplate.REASSIGNED):
            continue  # both are about a CSM
        readers = (
            [(Contact(name=csm.name, email=csm.email), Role.CSM)] if csm else [(LEAD, Role.LEAD)]
        )
        if template is MailTemplate.REASSIGNED:
            readers.append((Contact(name=JONAS.name, email=JONAS.email), Role.CSM))
        # The brief is posted to chat only while the account waits in the queue.
        queued = csm is not None and csm.pooled
        chat = template in CHAT and (template is not MailTemplate.HANDOFF_BRIEF or queued)
        for to, role in readers:
            mail = Mail(key="k", template=template, to=to, role=role)
            values = variables(
                mail, context, to, links=LINKS, default_currency="EUR", locale=locale
            )
            for kind in ["txt", "chat"] if chat else ["txt"]:
                found.append((render(env, template, values, kind), values, role, kind))
    return found


# Commands stay as the CLI reads them (`starter.py ack sakura --by YOUR-ID`); what a placeholder
# in quotes asks for is worded. `CSM` is written so by a Japanese CS team too.
COMMAND = re.compile(r'starter\.py(?: (?:[\w./+-]+|"\.\.\."))*')
KEPT_IN_JAPANESE = {"CSM"}


def own_words(text: str, values: dict[str, Any]) -> str:
    """What the template says, without the data, the commands, or the reader's name as it is
    greeted (a shared inbox without its note)."""
    text = COMMAND.sub(" ", text).replace(inbox_name(values["recipient"]["name"]), " ")
    return without_data(text, values)


@pytest.mark.parametrize("template", INTERNAL_MAIL)
def test_the_teams_mail_in_japanese_keeps_no_english_of_the_templates(
    template: MailTemplate,
) -> None:
    """INTERNAL_LOCALE=ja: every message to the CS team, the AE and CS ops, and its chat
    version, greets a colleague as a Japanese team does and keeps nothing of the English
    templates but the commands to run; in `en` it is English as before."""
    english, japanese = internal_mails(template, "en"), internal_mails(template, "ja")
    assert english and len(english) == len(japanese)
    for (en, values, role, kind), (ja, _, _, _) in zip(english, japanese, strict=True):
        if kind == "txt":
            assert en.text.startswith("Hi "), en.text
            assert "お疲れさまです。" in ja.text and "Hi " not in ja.text, ja.text
            assert ja.text.split("\n")[0].endswith(("さん", "各位")), ja.text
        for en_part, ja_part in ((en.subject, ja.subject), (en.text, ja.text)):
            assert not re.search(r"[\u3040-\u30ff]", own_words(en_part, values)), en_part
            for line in en_part.splitlines():
                if re.search(r"[A-Za-z]{2,}", own_words(line, values)):
                    assert line.strip() not in ja_part, (template, kind, line)
            left = set(re.findall(r"[A-Za-z]{3,}", own_words(ja_part, values)))
            assert not left - KEPT_IN_JAPANESE, (template, kind, role, ja_part)


def _extracted() -> set[str | tuple[str, ...]]:
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    found: set[str | tuple[str, ...]] = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def test_every_message_of_the_templates_is_translated_into_japanese() -> None:
    """Extracted afresh, so a string added to a template without a translation fails here,
    as does a catalog left fuzzy or empty; `messages.pot` is up to date too."""
    extracted = _extracted()
    assert len(extracted) > 50
    with (ROOT / "locales" / "messages.pot").open("rb") as file:
        template = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(file) if m.id}
    assert extracted == template, "run pybabel extract (README: Translating mail)"
    with i18n.catalog_path("ja").open("rb") as file:
        catalog = read_po(file, locale="ja")
    assert not catalog.fuzzy
    translated = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else tuple(message.id)
        strings_ = [message.string] if isinstance(message.string, str) else message.string
        translated[key] = "fuzzy" not in message.flags and all(s.strip() for s in strings_)
        assert not list(message.check(catalog)), key  # placeholders match
    missing = [key for key in extracted if not translated.get(key)]
    assert missing == [], missing


def test_every_supported_locale_but_the_source_has_a_catalog() -> None:
    for locale in i18n.SUPPORTED_LOCALES:
        assert (locale == i18n.DEFAULT_LOCALE) is not i18n.catalog_path(locale).exists()


def test_a_catalog_without_its_compiled_file_is_compiled_in_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A checkout where `make install` has not compiled the catalog yet (or a .po edited
    since) still renders what the .po says."""
    po = tmp_path / "ja" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_bytes(i18n.catalog_path("ja").read_bytes())
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        assert i18n.translations("ja").gettext("Help centre:") == "ヘルプセンター："
    finally:
        i18n.translations.cache_clear()


# --- who speaks, in which language ----------------------------------------------------------


def test_a_japanese_customers_mail_goes_out_in_japanese_and_the_teams_in_english(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    request = japanese_deal()
    notify = Notify(sessions, FileOutbox(tmp_path), Settings(outbox_dir=tmp_path))
    context = contexts(request)[1]
    context = context.model_copy(update={"step": context.tasks[0]})  # a day overdue
    csm = Contact(name=MEI.name, email=MEI.email)
    cases = [
        ("welcome", MailTemplate.WELCOME, request.champion, Role.CHAMPION),
        ("reminder-customer", MailTemplate.REMINDER, request.champion, Role.CHAMPION),
        ("reminder-csm", MailTemplate.REMINDER, csm, Role.CSM),
        ("brief", MailTemplate.HANDOFF_BRIEF, csm, Role.CSM),
    ]
    messages: dict[str, EmailMessage] = {}
    for key, template, to, role in cases:
        mail = Mail(key=key, template=template, to=to, role=role)
        assert notify.send_email(mail, context, request.account_id, to).sent
        message = message_from_bytes((tmp_path / f"{key}.eml").read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        messages[key] = message
    welcome = messages["welcome"]
    assert welcome["Subject"] == "ご利用開始のご案内"
    body = welcome.get_body(("plain",))
    assert body is not None
    text = str(body.get_content())  # type: ignore[attr-defined]
    assert "専任カスタマーサクセス担当 · mei.tanaka@example.com" in text
    assert "2026年12月1日まで" in text  # the customer's day, in Tokyo
    assert messages["reminder-customer"]["Subject"].startswith("【期日超過】Add users")
    # The CS team reads the deployment's language (INTERNAL_LOCALE, en): dates too.
    for key in ("reminder-csm", "brief"):
        internal = messages[key].get_body(("plain",))
        assert internal is not None
        content = str(internal.get_content())  # type: ignore[attr-defined]
        assert content.startswith("Hi Mei,") and "様" not in content, key
    assert "Contract:      JP¥9,600,000" in str(
        messages["brief"].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    )


def test_a_japanese_team_has_its_own_mail_in_japanese(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    """INTERNAL_LOCALE=ja: greetings, dates and words of every message to the team are
    Japanese, the customer's mail stays in the deal's language."""
    request = deal("acme")
    settings = Settings(outbox_dir=tmp_path, internal_locale="ja", default_timezone="Asia/Tokyo")
    notify = Notify(sessions, FileOutbox(tmp_path), settings)
    context = contexts(request)[1]
    context = context.model_copy(update={"step": context.tasks[0]})  # a day overdue
    csm = Contact(name="田中 芽衣", email=MEI.email)
    mail = Mail(key="r", template=MailTemplate.REMINDER, to=csm, role=Role.CSM)
    notify.send_email(mail, context, "acme", csm)
    message = message_from_bytes((tmp_path / "r.eml").read_bytes(), policy=policy.default)
    body = message.get_body(("plain",))  # type: ignore[attr-defined]
    text = str(body.get_content())
    assert text.startswith("田中 芽衣 さん\n\nお疲れさまです。\n"), text
    assert "「Add users」は期日（2026年12月1日）を過ぎております" in text
    assert "期日を延ばす場合： starter.py extend acme --task add-users" in text
    # The brief, as every message to the team, is Japanese too; the commands as the CLI reads them.
    brief = Mail(key="b", template=MailTemplate.HANDOFF_BRIEF, to=csm, role=Role.CSM)
    notify.send_email(brief, context.model_copy(update={"csm": MEI}), "acme", csm)
    message = message_from_bytes((tmp_path / "b.eml").read_bytes(), policy=policy.default)
    assert (
        message["Subject"]
        == "【引き継ぎ】Acme Logistics GmbH 様（premium、ハイタッチ）のご担当をお願いします"
    )
    body = message.get_body(("plain",))  # type: ignore[attr-defined]
    text = str(body.get_content())
    assert text.startswith(
        "田中 芽衣 さん\n\nお疲れさまです。\n\nAcme Logistics GmbH 様のご担当をお願いします。"
    ), text
    assert "契約金額：     $84,000\n" in text  # the values line up: a wide character is two columns
    assert text.endswith("オンボーディングの状況： starter.py status acme\n")
    # The customer of an English deal is still written to in English.
    english = Mail(key="w", template=MailTemplate.WELCOME, to=request.champion)
    notify.send_email(english, context, "acme", request.champion)
    welcome = message_from_bytes((tmp_path / "w.eml").read_bytes(), policy=policy.default)
    assert welcome["Subject"] == "Welcome aboard, Kenji!"


@pytest.mark.parametrize("internal_locale", i18n.SUPPORTED_LOCALES)
def test_every_message_to_the_team_is_in_internal_locale_whatever_the_customers(
    internal_locale: str,
    sessions: SessionFactory,
    tmp_path: Path,
    chat: tuple[list[dict[str, Any]], str],
) -> None:
    """A Japanese customer's onboarding: each message to the team, and its chat post, goes
    out in INTERNAL_LOCALE, `en` as it always was."""
    request = japanese_deal()
    posts, chat_url = chat
    settings = Settings(outbox_dir=tmp_path, internal_locale=internal_locale, chat_urls=[chat_url])
    notify = Notify(sessions, FileOutbox(tmp_path), settings)
    context = internal_contexts(request)[1]  # the queue's: every template has a chat version
    to = Contact(name=QUEUED.name, email=QUEUED.email)
    for template in INTERNAL_MAIL:
        mail = Mail(key=str(template), template=template, to=to, role=Role.CSM, chat=True)
        assert notify.send_email(mail, context, request.account_id, to).sent
        message = message_from_bytes(
            (tmp_path / f"{template}.eml").read_bytes(), policy=policy.default
        )
        body = message.get_body(("plain",))  # type: ignore[attr-defined]
        text, subject = str(body.get_content()), str(message["Subject"])
        if internal_locale == "ja":
            assert text.startswith("Lena Park 各位\n\nお疲れさまです。\n\n"), (template, text)
            assert subject.startswith("【") and "様" in subject, (template, subject)
        else:
            assert text.startswith("Hi Lena Park,\n\n"), (template, text)
            assert "様" not in text + subject and "【" not in subject, (template, text)
        if template in CHAT:
            assert notify.send_chat(mail, context, request.account_id).sent
            post = posts[-1]
            japanese = "様" in post["title"]
            assert japanese is (internal_locale == "ja"), (template, post)


def test_the_portal_link_shows_only_when_there_is_one() -> None:
    context = contexts(japanese_deal())[1]
    wording = {"en": "See your onboarding plan: ", "ja": "オンボーディングの進捗はこちら："}
    for locale, words in wording.items():
        for template in (MailTemplate.WELCOME, MailTemplate.REMINDER):
            without, _ = rendered(template, context, locale)
            assert words not in without.text and "portal" not in (without.html or "")
            url = "https://portal.example.com/p/abc"
            linked, _ = rendered(template, context, locale, portal_url=url)
            assert f"{words}{url}" in linked.text
            assert f'<a href="{url}">{url}</a>' in (linked.html or "")


# --- dates, times, money ---------------------------------------------------------------------


def test_dates_follow_the_locale_in_the_readers_time_zone() -> None:
    late = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # already the 2nd in Tokyo
    assert i18n.format_date(late, "en", "UTC") == "1 Dec 2026"
    assert i18n.format_date(late, "ja", "UTC") == "2026年12月1日"
    assert i18n.format_date(late, "ja", "Asia/Tokyo") == "2026年12月2日"
    assert i18n.format_date(late, "en", "America/New_York") == "1 Dec 2026"
    assert i18n.format_date(date(2026, 12, 1), "ja") == "2026年12月1日"
    assert i18n.format_date(late, "fr", "UTC") == "1 Dec 2026"  # unknown: the default's


def test_times_are_in_the_readers_zone_with_the_zone_shown() -> None:
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert i18n.format_datetime(at, "ja", "Asia/Tokyo") == "2026年12月1日 18:30 JST"
    assert i18n.format_datetime(at, "en", "Europe/Berlin") == "1 Dec 2026, 10:30 CET"
    assert i18n.format_datetime(at, "en", "UTC") == "1 Dec 2026, 09:30 UTC"
    assert i18n.format_time(at, "en", "America/Sao_Paulo") == "06:30 GMT-03:00"
    summer = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
    assert i18n.format_time(summer, "en", "Europe/Berlin") == "11:30 CEST"


def test_money_as_the_locale_writes_it() -> None:
    assert i18n.format_money(84_000, "EUR", "en") == "€84,000"
    assert i18n.format_money(84_000, "USD", "en") == "US$84,000"
    assert i18n.format_money(1250.5, "GBP", "en") == "£1,250.50"
    assert i18n.format_money(9_600_000, "JPY", "ja") == "￥9,600,000"
    assert i18n.format_money(1250.5, "JPY", "ja") == "￥1,250"  # JPY has no minor unit
    assert i18n.format_money(84_000, "EUR", "ja") == "€84,000"


def test_the_filters_use_the_contexts_time_zone() -> None:
    env = template_environment("ja")
    late = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    template = env.from_string("{{ at | date }} / {{ at | datetime }} / {{ 1200 | money('JPY') }}")
    assert template.render(at=late, timezone="Asia/Tokyo") == (
        "2026年12月2日 / 2026年12月2日 05:00 JST / ￥1,200"
    )
    assert template.render(at=late, timezone="UTC").startswith("2026年12月1日 / ")


@pytest.mark.parametrize(
    ("name", "locale", "shown"),
    [
        ("森 健二", "ja", "森 様"),
        ("森健二", "ja", "森健二 様"),  # no space: family and given name cannot be told apart
        ("Kenji Mori", "ja", "Kenji Mori 様"),  # Latin script: the order is unknown
        ("Kenji Mori", "en", "Kenji Mori"),
    ],
)
def test_a_customer_is_named_as_the_locale_does(name: str, locale: str, shown: str) -> None:
    assert i18n.honorific(name, locale) == shown


# --- the door, the CSV, the settings, running onboardings ------------------------------------


def test_a_japanese_deal_passes_the_door() -> None:
    request = admit(OnboardingRequest, (ROOT / "examples" / "deal-ja.json").read_text())
    assert (request.locale, request.timezone) == ("ja", "Asia/Tokyo")
    english = admit(OnboardingRequest, deal("acme").model_dump_json(exclude={"locale"}))
    assert (english.locale, english.timezone) == ("en", None)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("locale", "fr", "locale: must be one of en, ja ('fr' given)"),
        ("locale", "JA", "locale: must be one of en, ja ('JA' given)"),
        ("timezone", "Tokyo", "timezone: must be an IANA time zone name, such as Asia/Tokyo"),
        ("timezone", "Mars/Olympus_Mons", "timezone: must be an IANA time zone name"),
        ("timezone", "../etc/passwd", "timezone: must be an IANA time zone name"),
    ],
)
def test_a_locale_or_time_zone_we_cannot_write_in_is_refused_naming_the_field(
    field: str, value: str, words: str
) -> None:
    data = deal("acme").model_dump(mode="json") | {field: value}
    with pytest.raises(ValidationError) as refused:
        admit(OnboardingRequest, data)
    [error] = refused.value.errors()
    assert f"{error['loc'][0]}: {error['msg']}".startswith(words)


def test_running_onboardings_decode_what_they_hold_and_render_it_in_the_defaults() -> None:
    """Only the door checks: an input decoded by a worker is taken as it is."""
    old = deal("acme").model_dump(mode="json")
    del old["locale"], old["timezone"]  # as 0.3.0 wrote it
    decoded = OnboardingRequest.model_validate(old)
    assert (decoded.locale, decoded.timezone) == ("en", None)
    odd = OnboardingRequest.model_validate(old | {"locale": "fr", "timezone": "Mars/Base"})
    mail, _ = rendered(MailTemplate.WELCOME, MailContext(account=odd, csm=MEI), "fr")
    assert mail.text.startswith("Hi Kenji,")
    assert i18n.timezone("Mars/Base", "Asia/Tokyo").key == "Asia/Tokyo"


def test_a_csv_export_may_name_the_locale_and_time_zone(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    header = (
        "account_id,account_name,plan,touch_model,industry,use_case,contract_value,"
        "account_executive_id,account_executive_name,account_executive_email,"
        "champion_name,champion_email,locale,timezone\n"
    )
    row = (
        "acme,Acme,premium,high,logistics,fleet tracking,12000,"
        "ae-001,Sam,sam@v.example,Kim,kim@acme.example,"
    )
    cells = [
        ("acme", "ja,Asia/Tokyo"),
        ("beta", ","),
        ("gamma", "de,Europe/Berlin"),
        ("delta", "en,Berlin"),
    ]
    path.write_text(header + "".join(f"{row.replace('acme', a)}{c}\n" for a, c in cells))
    deals, errors = read_deals(path)
    assert [(d.request.account_id, d.request.locale, d.request.timezone) for d in deals] == [
        ("acme", "ja", "Asia/Tokyo"),
        ("beta", "en", None),
    ]
    assert [(e.row, e.field) for e in errors] == [(4, "locale"), (5, "timezone")]


def test_the_time_zone_and_internal_language_settings_are_checked() -> None:
    settings = Settings(default_timezone="Asia/Tokyo", internal_locale="ja")
    assert (settings.default_timezone, settings.internal_locale) == ("Asia/Tokyo", "ja")
    assert (Settings().default_timezone, Settings().internal_locale) == ("UTC", "en")
    with pytest.raises(ValidationError, match="IANA time zone"):
        Settings(default_timezone="JST9")
    with pytest.raises(ValidationError, match="one of en, ja"):
        Settings(internal_locale="de")
