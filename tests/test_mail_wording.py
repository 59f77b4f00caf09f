"""What a reader notices in every mail (issue 13, "Mails"): each one rendered through the real
code path — the onboarding's rules (workflows/onboarding/core.py) decide the messages and fill
their context pass by pass, the effects activity renders and writes them to a file outbox —
for each touch model, a signed and an unsigned deal, a named CSM, the pooled team and the
queue; then read as the recipient reads them: greeting, who signs, the right words for a
signed contract, money with its currency, where a reply goes, no step already done listed as
to do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from activities.effects import EffectActivities
from activities.mail import FileOutbox
from activities.notify import Notify
from activities.records import Records
from infra.db import SessionFactory
from infra.settings import Settings
from models.activities import Effects, Mail, MailContext, MailTemplate
from models.deal_csv import read_deals
from models.door import admit
from models.journey import (
    QUEUE_ID,
    Cancel,
    CancelReason,
    Contact,
    CsmRef,
    Escalation,
    Milestone,
    OnboardingRequest,
    Stage,
    TouchModel,
)
from tests.conftest import _fresh, deal, onboarding_input
from workflows.onboarding.core import Onboarding, new_state

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
run = ActivityEnvironment().run

# Who looks after the account, as the roster (playbooks/csms.toml) answers.
MEI = CsmRef(id="csm-007", name="Mei Tanaka", email="mei.tanaka@example.com")  # high, low
TEAM = CsmRef(id="csm-pool", name="Scaled CS team", email="scaled-cs@example.com")  # low, tech...
QUEUE_INBOX = Contact(name="Lena Park (CS lead, onboarding queue)", email="cs-queue@example.com")
QUEUED = CsmRef(
    id=QUEUE_ID,
    name=QUEUE_INBOX.name,
    email=str(QUEUE_INBOX.email),
    pooled=True,
    reason="every CSM serving the touch model is at capacity",
)
ANA = Contact(name="Ana Ruiz", email="ana@acme-logistics.example")
AE = deal("acme").account_executive

# Every touch model with whom the roster can give it: a CSM of its own, the pooled team (the
# roster's `csm-pool` serves low-, tech- and community-touch), the queue when nobody has room.
CASES = [
    (TouchModel.HIGH, MEI),
    (TouchModel.HIGH, QUEUED),
    (TouchModel.LOW, MEI),
    (TouchModel.LOW, TEAM),
    (TouchModel.LOW, QUEUED),
    (TouchModel.TECH, TEAM),
    (TouchModel.TECH, QUEUED),
    (TouchModel.COMMUNITY, TEAM),
    (TouchModel.COMMUNITY, QUEUED),
]
IDS = [f"{touch}-{csm.id}" for touch, csm in CASES]
SIGNED = T0 - 2 * DAY


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Wording does not depend on the database: SQLite only (the outbox needs one)."""
    return _fresh(sqlite_url)


@dataclass
class Journey:
    """One onboarding walked from depart to everboarding, each pass carried out as the
    workflow does (its batch completed with the context of that moment)."""

    o: Onboarding
    effects: EffectActivities
    outbox: Path
    prefix: str
    now: datetime = T0
    keys: list[str] = field(default_factory=list)

    def carry_out(self, effects: Effects) -> None:
        batch = self.o.complete_batch(effects, self.now)
        self.keys += [mail.key.removeprefix(f"{self.prefix}:") for mail in batch.mails]
        run(self.effects.carry_out, batch)

    def pass_(self, act: Callable[[Effects], object]) -> None:
        effects = Effects(account_id=self.o.request.account_id, at=self.now)
        act(effects)
        self.carry_out(effects)

    def mail(self, key: str) -> EmailMessage:
        path = self.outbox / f"{self.prefix}_{key}.eml".replace(":", "_")
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


def start(
    sessions: SessionFactory,
    tmp_path: Path,
    request: OnboardingRequest,
    settings: Settings | None = None,
) -> Journey:
    outbox = tmp_path / "outbox"
    settings = settings or Settings(outbox_dir=outbox)
    input = onboarding_input(request)
    account = request.account_id
    prefix = f"onboarding-{account}.0000aaaa"  # as the workflow's: its id, its run chain
    o = Onboarding(input, new_state(request, T0), prefix)
    notify = Notify(sessions, FileOutbox(outbox), settings)
    effects = EffectActivities(Records(sessions), notify, QUEUE_INBOX)
    journey = Journey(o, effects, outbox, prefix)
    opening = Effects(account_id=account, at=T0, opened=o.opened(f"onboarding-{account}", "run-1"))
    o.enter(T0, opening)  # depart: what to expect
    journey.carry_out(opening)
    return journey


def enter(o: Onboarding, csm: CsmRef, now: datetime, effects: Effects) -> None:
    """A stage's entry, as the workflow's `_enter`: in Handoff, the roster answers first."""
    if o.journey.stage is Stage.HANDOFF:
        o.assigned("handoff:brief", o.csm.assigned(csm), effects)
    o.enter(now, effects)


def walk(j: Journey, csm: CsmRef) -> None:
    """From depart to expand: the contract signed (unless the deal says so), the CSM the
    roster chose, a reminder of a CSM's step and of a customer's, each stage's milestone."""
    o = j.o
    while o.journey.stage is not Stage.COMPLETED:
        stage = o.journey.stage
        if not o.state.journey.entered:
            j.pass_(lambda e: enter(o, csm, j.now, e))
        if stage is Stage.EXPAND:
            o.complete(j.now)
            break
        if stage in (Stage.KICKOFF, Stage.ADOPT) and not o.settled(j.now):
            j.now += 6 * DAY  # the first reminders of the stage's steps come due
            j.pass_(lambda e: o.remind(j.now, e))
        milestone = o.journey.waits_for()
        if milestone is not None and not o.settled(j.now):
            j.now += DAY
            o.milestone_reported(milestone, "test", None, j.now, None)
        o.advance(j.now)


def journey(
    sessions: SessionFactory, tmp_path: Path, touch: TouchModel, csm: CsmRef, signed: bool
) -> Journey:
    request = deal(
        "acme",
        touch_model=touch,
        users=[ANA],
        contract_signed_at=SIGNED if signed else None,
    )
    j = start(sessions, tmp_path, request)
    walk(j, csm)
    return j


def text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def html(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def lines(message: EmailMessage) -> list[str]:
    return [line.strip() for line in text(message).strip().splitlines()]


CUSTOMER_MAIL = ["depart:what-to-expect", "kickoff:welcome", "expand:next-steps"]


# --- who speaks, to whom -----------------------------------------------------------------------


@pytest.mark.parametrize(("touch", "csm"), CASES, ids=IDS)
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_every_customer_mail_greets_the_reader_and_is_signed_by_who_answers_a_reply(
    sessions: SessionFactory, tmp_path: Path, touch: TouchModel, csm: CsmRef, signed: bool
) -> None:
    j = journey(sessions, tmp_path, touch, csm, signed)
    invite = next(key for key in j.keys if key.startswith("academy:"))
    customer = [*CUSTOMER_MAIL, invite, "adopt:task:add-users:reminder:1"]
    assert set(customer) <= set(j.keys), j.keys
    named = csm is MEI and touch is TouchModel.HIGH
    for key in customer:
        message = j.mail(key)
        body = lines(message)
        reader = (
            "Ana" if key == invite and message["To"].addresses[0].username == "ana" else "Kenji"
        )
        assert body[0] == f"Hi {reader},", key
        if key == "depart:what-to-expect":  # Depart is the AE's: no CSM yet
            signer, title, reply_to = AE.name, "Your account executive", str(AE.email)
        elif csm.pooled:
            signer, title, reply_to = "Your customer success team", None, csm.email
        else:
            title = "Your customer success manager" if named else "Customer success"
            signer, reply_to = csm.name, csm.email
        assert body[-2:] == [signer, f"{title} · {reply_to}" if title else reply_to], key
        assert message["Reply-To"].addresses[0].addr_spec == reply_to, key
        shown = message["From"].addresses[0]
        assert shown.addr_spec == "success@example.com", key  # our domain: DMARC holds
        assert shown.display_name == (
            "Customer Success"
            if csm.pooled and key != "depart:what-to-expect"
            else f"{signer} via Customer Success"
        ), key
        if not named and key != "depart:what-to-expect":  # high-touch is promised one
            assert "customer success manager" not in text(message).lower(), key
        assert signer in html(message), key
        # The customer's own: nothing of the CS team's commands or ids.
        assert "starter.py" not in text(message) and "--by" not in text(message), key


@pytest.mark.parametrize(("touch", "csm"), CASES, ids=IDS)
def test_mail_to_the_cs_team_greets_a_person_by_name_and_a_team_as_a_team(
    sessions: SessionFactory, tmp_path: Path, touch: TouchModel, csm: CsmRef
) -> None:
    j = journey(sessions, tmp_path, touch, csm, signed=True)
    for key in ["handoff:brief", "review:checklist"]:
        greeting = lines(j.mail(key))[0]
        if csm is QUEUED:
            assert greeting == "Hi Lena Park,", key  # the queue's inbox, its reader named
        elif csm is TEAM:
            assert greeting == "Hi Scaled CS team,", key
        else:
            assert greeting == ("Hi Mei," if touch is TouchModel.HIGH else "Hi Mei Tanaka,"), key


@pytest.mark.parametrize(
    ("touch", "csm"),
    [case for case in CASES if case[1] is not QUEUED],
    ids=[i for i, case in zip(IDS, CASES, strict=True) if case[1] is not QUEUED],
)
def test_a_csms_own_reminder_is_not_signed_by_them_nor_offers_to_help_them(
    sessions: SessionFactory, tmp_path: Path, touch: TouchModel, csm: CsmRef
) -> None:
    j = journey(sessions, tmp_path, touch, csm, signed=True)
    reminders = [k for k in j.keys if ":reminder:" in k and not k.startswith("adopt:task:add")]
    internal = [k for k in reminders if j.mail(k)["To"].addresses[0].addr_spec == csm.email]
    if touch in (TouchModel.TECH, TouchModel.COMMUNITY):
        assert internal == [] or all(k.startswith("kickoff:") for k in internal)
    for key in internal:
        message = j.mail(key)
        assert "customer success manager" not in text(message).lower(), key
        assert lines(message)[-1] != csm.email and csm.name not in lines(message)[1:], key
        assert "Just reply" not in text(message), key
        assert "starter.py" in text(message), key  # what they can do about it
        assert "--for +7d" in text(message) and "--by +7d" not in text(message), key
        assert message["Reply-To"] is None
        assert message["From"] == "Customer Success <success@example.com>"


def test_a_reminder_to_the_ae_in_depart_is_theirs_not_the_customers(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    j = start(sessions, tmp_path, deal("acme"))
    j.now = T0 + 13 * DAY  # depart's deadline (14 days) is near, the contract not signed
    j.pass_(lambda e: j.o.remind(j.now, e))
    message = j.mail("depart:deadline:reminder:1")
    assert message["To"].addresses[0].addr_spec == str(AE.email)
    assert lines(message)[0] == "Hi Sara,"
    assert "Your customer success team" not in text(message) and message["Reply-To"] is None


# --- signed or not ------------------------------------------------------------------------------


@pytest.mark.parametrize("touch", list(TouchModel))
def test_what_to_expect_speaks_of_signing_only_before_the_contract_is_signed(
    sessions: SessionFactory, tmp_path: Path, touch: TouchModel
) -> None:
    unsigned = start(sessions, tmp_path / "u", deal("acme", touch_model=touch))
    signed = deal("acme", account_id="acme-signed", touch_model=touch, contract_signed_at=SIGNED)
    before = unsigned.mail("depart:what-to-expect")
    after = start(sessions, tmp_path / "s", signed).mail("depart:what-to-expect")
    for part in (text, html):
        assert "Before anything is signed" in part(before)
        assert "Questions before you sign?" in part(before)
        assert "before anything is signed" not in part(after).lower()
        assert "before you sign" not in part(after).lower()
        assert "Thank you for choosing us" in part(after)


def test_the_globex_example_signed_before_it_started_is_not_asked_to_sign(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    """The issue's case: `examples/deal-globex.json` says the contract is signed."""
    message = start(sessions, tmp_path, deal("globex")).mail("depart:what-to-expect")
    assert "sign?" not in text(message) and "Before anything is signed" not in text(message)
    assert lines(message)[:3] == [
        "Hi Ana,",
        "",
        "Thank you for choosing us for Globex Bakery. Here is how we will get your team to",
    ]


def test_a_contract_signed_by_signal_before_the_first_pass_counts_too(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    """The fact is the milestone, wherever it came from (the deal, or a signal that arrived
    with the start)."""
    request = deal("acme")
    o = Onboarding(onboarding_input(request), new_state(request, T0), "onboarding-acme.0")
    o.milestone_reported(Milestone.CONTRACT_SIGNED, "ae-001", T0, T0, None)
    assert o.mail_context(T0).contract_signed_at == T0


@pytest.mark.parametrize("touch", list(TouchModel))
def test_what_to_expect_describes_the_kickoff_the_touch_model_has(
    sessions: SessionFactory, tmp_path: Path, touch: TouchModel
) -> None:
    body = text(
        start(sessions, tmp_path, deal("acme", touch_model=touch)).mail("depart:what-to-expect")
    )
    meeting = "we agree goals, milestones and dates with you"
    automated = touch in (TouchModel.TECH, TouchModel.COMMUNITY)
    assert (meeting in body) is not automated
    assert ("your customer success manager" in body) is (touch is TouchModel.HIGH)


# --- the welcome's checklist --------------------------------------------------------------------


@pytest.mark.parametrize(("touch", "csm"), CASES, ids=IDS)
def test_the_welcome_lists_only_steps_still_to_do(
    sessions: SessionFactory, tmp_path: Path, touch: TouchModel, csm: CsmRef
) -> None:
    j = journey(sessions, tmp_path, touch, csm, signed=True)
    welcome = j.mail("kickoff:welcome")
    done = [t for t in j.o.checklist.tasks() if t.done_at is not None and t.done_at <= T0 + 2 * DAY]
    assert "academy-access" in {t.id for t in done}  # given at kickoff, before the welcome
    for part in (text, html):
        assert "Give every new user access to the academy" not in part(welcome)
    assert "access to the academy" in text(welcome)  # said as what they have, not a to-do
    if touch is TouchModel.HIGH:
        assert "- Hold the kickoff call: agree goals, milestones and dates (us, by" in text(welcome)
        assert "- Add your team's users (you, by" in text(welcome)


# --- money and replies ---------------------------------------------------------------------------


def test_the_contract_value_carries_the_deals_currency_or_the_default(
    sessions: SessionFactory, tmp_path: Path
) -> None:
    in_euros = journey_to_handoff(sessions, tmp_path / "eur", deal("acme", currency="EUR"))
    assert "Contract:      €84,000" in text(in_euros.mail("handoff:brief"))

    default = journey_to_handoff(sessions, tmp_path / "usd", deal("acme", account_id="usd"))
    assert "Contract:      US$84,000" in text(default.mail("handoff:brief"))

    settings = Settings(outbox_dir=tmp_path / "gbp" / "outbox", default_currency="GBP")
    odd = journey_to_handoff(
        sessions, tmp_path / "gbp", deal("acme", account_id="gbp", contract_value=1250.5), settings
    )
    assert "Contract:      £1,250.50" in text(odd.mail("handoff:brief"))


def journey_to_handoff(
    sessions: SessionFactory,
    tmp_path: Path,
    request: OnboardingRequest,
    settings: Settings | None = None,
) -> Journey:
    j = start(
        sessions, tmp_path, request.model_copy(update={"contract_signed_at": SIGNED}), settings
    )
    o = j.o
    o.advance(j.now)
    j.pass_(lambda e: enter(o, MEI, j.now, e))
    return j


def test_currency_is_an_iso_4217_code_checked_at_the_door() -> None:
    data = deal("acme").model_dump(mode="json")
    assert admit(OnboardingRequest, data | {"currency": "EUR"}).currency == "EUR"
    assert admit(OnboardingRequest, data).currency is None
    for wrong in ("eur", "US$", "EURO", ""):
        with pytest.raises(ValidationError, match="ISO 4217 code of three capital letters"):
            admit(OnboardingRequest, data | {"currency": wrong})
    # Only at the door: decoded from a workflow's history, it is taken as it is.
    assert OnboardingRequest.model_validate(data | {"currency": "eur"}).currency == "eur"


def test_a_csv_export_may_name_the_currency(tmp_path: Path) -> None:
    path = tmp_path / "deals.csv"
    header = (
        "account_id,account_name,plan,touch_model,industry,use_case,contract_value,"
        "account_executive_id,account_executive_name,account_executive_email,"
        "champion_name,champion_email,currency\n"
    )
    row = (
        "acme,Acme,premium,high,logistics,fleet tracking,12000,"
        "ae-001,Sam,sam@v.example,Kim,kim@acme.example,"
    )
    cells = [("acme", "JPY"), ("beta", ""), ("gamma", "yen")]
    path.write_text(header + "".join(f"{row.replace('acme', a)}{c}\n" for a, c in cells))
    deals, errors = read_deals(path)
    assert [(d.request.account_id, d.request.currency) for d in deals] == [
        ("acme", "JPY"),
        ("beta", None),
    ]
    assert [(e.row, e.field) for e in errors] == [(4, "currency")]


def test_default_currency_setting_must_be_a_code() -> None:
    assert Settings(default_currency="EUR").default_currency == "EUR"
    with pytest.raises(ValidationError, match="ISO 4217"):
        Settings(default_currency="euro")


# --- the rest of the family: endings, everboarding, the team's notices --------------------------


@pytest.mark.parametrize(("touch", "csm"), CASES, ids=IDS)
def test_the_farewell_is_signed_by_who_looked_after_the_account(
    sessions: SessionFactory, tmp_path: Path, touch: TouchModel, csm: CsmRef
) -> None:
    j = journey_to_handoff(sessions, tmp_path, deal("acme", touch_model=touch))
    o = j.o
    o.csm.assigned(csm)
    o.journey.cancel(Cancel(reason=CancelReason.NO_VALUE, by="csm-007"), j.now)
    j.pass_(lambda e: o.end(j.now, e))
    message = j.mail("cancelled:farewell")
    assert lines(message)[0] == "Hi Kenji,"
    assert message["Reply-To"].addresses[0].addr_spec == csm.email


def test_a_farewell_in_depart_is_the_aes(sessions: SessionFactory, tmp_path: Path) -> None:
    j = start(sessions, tmp_path, deal("acme"))
    j.o.journey.cancel(Cancel(reason=CancelReason.NO_VALUE, by="ae-001"), T0)
    j.pass_(lambda e: j.o.end(T0, e))
    message = j.mail("cancelled:farewell")
    assert lines(message)[-2:] == [AE.name, f"Your account executive · {AE.email}"]
    assert message["Reply-To"].addresses[0].addr_spec == str(AE.email)


@pytest.mark.parametrize(
    "template", [MailTemplate.KEEP_LEARNING, MailTemplate.DIGEST, MailTemplate.FAREWELL]
)
@pytest.mark.parametrize(("touch", "csm"), CASES, ids=IDS)
def test_everboardings_customer_mail_has_the_same_voice(
    sessions: SessionFactory, tmp_path: Path, template: MailTemplate, touch: TouchModel, csm: CsmRef
) -> None:
    """Everboarding's messages carry no role: the template says they are the champion's."""
    request = deal("acme", touch_model=touch)
    notify = Notify(sessions, FileOutbox(tmp_path), Settings(outbox_dir=tmp_path))
    context = MailContext(account=request, csm=csm, now=T0, path=onboarding_input(request).path)
    key = f"everboarding-acme.0000aaaa:{template}"
    notify.send_email(
        Mail(key=key, template=template, to=request.champion), context, "acme", request.champion
    )
    message = message_from_bytes(
        (tmp_path / f"{key.replace(':', '_')}.eml").read_bytes(), policy=policy.default
    )
    assert isinstance(message, EmailMessage)
    assert lines(message)[0] == "Hi Kenji,"
    assert message["Reply-To"].addresses[0].addr_spec == csm.email
    assert lines(message)[-2] == ("Your customer success team" if csm.pooled else csm.name)
    if not (csm is MEI and touch is TouchModel.HIGH):
        assert "customer success manager" not in text(message).lower()


@pytest.mark.parametrize("touch", list(TouchModel))
def test_the_review_is_due_by_the_reviews_deadline_not_an_older_open_step(
    sessions: SessionFactory, tmp_path: Path, touch: TouchModel
) -> None:
    j = journey(sessions, tmp_path, touch, TEAM if touch is not TouchModel.HIGH else MEI, True)
    [review] = [v for v in j.o.state.journey.history if v.stage is Stage.REVIEW]
    deadline = review.entered_at + j.o.playbook.stage(Stage.REVIEW).deadline
    open_before = [t for t in j.o.checklist.tasks() if t.done_at is None and t.due_at < deadline]
    assert open_before  # e.g. the kickoff call nobody marked done: its date is not the review's
    body = text(j.mail("review:checklist"))
    assert f"review by {deadline.day} {deadline:%b %Y}:" in " ".join(body.split())


@pytest.mark.parametrize("csm", [MEI, TEAM, QUEUED], ids=["named", "team", "queue"])
def test_the_teams_notices_greet_their_reader_and_say_who_has_the_account(
    sessions: SessionFactory, tmp_path: Path, csm: CsmRef
) -> None:
    j = journey_to_handoff(sessions, tmp_path, deal("acme", touch_model=TouchModel.LOW))
    o = j.o
    o.csm.assigned(csm)
    o.state.risk.champion = o.champion  # as it was
    context = o.mail_context(j.now)
    notify = j.effects.notify
    cases = [
        (MailTemplate.ESCALATION, Contact(name=csm.name, email=csm.email), "escalation"),
        (MailTemplate.INCIDENT, None, "incident"),
        (MailTemplate.CLOSED, None, "closed"),
        (MailTemplate.NAME_CHAMPION, Contact(name=csm.name, email=csm.email), "name"),
    ]
    escalation = Escalation(number=1, raised_at=j.now, reasons=["no engagement for 15 days"])
    for template, to, key in cases:
        mail = Mail(
            key=f"{j.prefix}:{key}", template=template, to=to, note="x", escalation=escalation
        )
        context = context.model_copy(update={"escalation": escalation, "note": "x"})
        notify.send_email(mail, context, "acme", to or QUEUE_INBOX)
        message = j.mail(key)
        greeting = lines(message)[0]
        if to is None or csm is QUEUED:
            assert greeting == "Hi Lena Park,", key  # the inbox's reader, not "Hi Lena Park (CS"
        else:
            assert greeting == ("Hi Scaled CS team," if csm is TEAM else "Hi Mei Tanaka,"), key
        assert message["Reply-To"] is None, key
        if template is MailTemplate.ESCALATION:
            shown = "none: waiting in the onboarding queue" if csm.pooled else csm.name
            assert f"CSM: {shown}" in text(message)
