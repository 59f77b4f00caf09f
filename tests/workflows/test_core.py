"""The onboarding's rules driven by hand, without a server: each stage's mails, the kickoff's
checklist and academy access, the endings, and what reminders and escalations decide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.activities import Effects, HandoffRecord, Mail, MailTemplate, academy_key
from models.journey import (
    QUEUE_ID,
    Cancel,
    CancelReason,
    ChampionChanged,
    ChampionLossReason,
    Contact,
    CsmRef,
    Engagement,
    EngagementKind,
    Milestone,
    RiskLevel,
    Stage,
    TouchModel,
)
from models.onboarding import OnboardingInput
from tests.conftest import deal, onboarding_input
from workflows.onboarding.core import TEMPORAL_CANCEL_NOTE, Onboarding, new_state

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PREFIX = "onboarding-acme.0000aaaa"
KENJI = deal("acme").champion
ANA = Contact(name="Ana Ruiz", email="ana@acme-logistics.example")
BO = Contact(name="Bo Chen", email="bo@acme-logistics.example")
CY = Contact(name="Cy Park", email="cy@acme-logistics.example")
MEI_REF = CsmRef(id="csm-007", name="Mei Tanaka", email="mei.tanaka@example.com")
MEI = Contact(name="Mei Tanaka", email="mei.tanaka@example.com")
RAJ_REF = CsmRef(id="csm-012", name="Raj Patel", email="raj.patel@example.com")
RAJ = Contact(name="Raj Patel", email="raj.patel@example.com")
QUEUE = CsmRef(id=QUEUE_ID, name="CS queue", email="cs-queue@example.com", pooled=True)
LEAD = Contact(name="Lena Park", email="lena.park@example.com")


def onboarding(input: OnboardingInput | None = None, **changes: object) -> Onboarding:
    """A new onboarding of Acme started at T0 (the deal changed by `changes`)."""
    input = input or onboarding_input(deal("acme", **changes))
    return Onboarding(input, new_state(input.request, T0), PREFIX)


def batch(now: datetime = T0) -> Effects:
    return Effects(account_id="acme", at=now)


def drive(o: Onboarding, to: Stage, now: datetime, effects: Effects) -> None:
    """Walk the journey as the workflow's loop does until `to` is entered: the CSM assigned
    on entering Handoff, each stage's entry actions, its milestone reported, and on."""
    while True:
        if not o.state.journey.entered:
            if o.journey.stage is Stage.HANDOFF:
                o.assigned("handoff:brief", o.csm.assigned(MEI_REF), effects)
            o.enter(now, effects)
        if o.journey.stage is to:
            return
        if (milestone := o.journey.waits_for()) is not None and not o.settled(now):
            o.milestone_reported(milestone, "test", None, now, None)
        o.advance(now)


def sent(effects: Effects) -> list[tuple[str, MailTemplate, Contact | None]]:
    """Each mail as (key without the run chain's prefix, template, addressee)."""
    assert all(mail.key.startswith(f"{PREFIX}:") for mail in effects.mails)
    return [(m.key.removeprefix(f"{PREFIX}:"), m.template, m.to) for m in effects.mails]


def mail(effects: Effects, key: str) -> Mail:
    [found] = [m for m in effects.mails if m.key == f"{PREFIX}:{key}"]
    return found


def with_adopt(o: OnboardingInput, **plan: object) -> OnboardingInput:
    adopt = o.playbook.stages["adopt"].model_copy(update=plan)
    playbook = o.playbook.model_copy(update={"stages": o.playbook.stages | {"adopt": adopt}})
    return o.model_copy(update={"playbook": playbook})


# --- the journey ------------------------------------------------------------------------------


def test_a_whole_journey_by_hand() -> None:
    o = onboarding(users=[ANA, BO])
    effects = batch()
    o.enter(T0, effects)  # depart
    assert not o.settled(T0 + DAY)
    o.milestone_reported(Milestone.CONTRACT_SIGNED, "ae-001", None, T0 + DAY, None)
    assert o.settled(T0 + DAY)
    assert o.advance(T0 + DAY) is Stage.DEPART

    o.assigned("handoff:brief", o.csm.assigned(MEI_REF), effects)  # handoff
    o.enter(T0 + DAY, effects)
    assert o.settled(T0 + DAY)
    o.advance(T0 + DAY)

    o.enter(T0 + DAY, effects)  # kickoff
    o.milestone_reported(Milestone.KICKOFF_HELD, "csm-007", None, T0 + 8 * DAY, None)
    o.advance(T0 + 8 * DAY)
    o.enter(T0 + 8 * DAY, effects)  # adopt
    o.milestone_reported(Milestone.INTEGRATION_DONE, "se", None, T0 + 40 * DAY, None)
    o.advance(T0 + 40 * DAY)
    o.enter(T0 + 40 * DAY, effects)  # review
    o.milestone_reported(Milestone.REVIEW_PASSED, "csm-007", None, T0 + 50 * DAY, None)
    o.advance(T0 + 50 * DAY)
    o.enter(T0 + 50 * DAY, effects)  # expand
    o.complete(T0 + 51 * DAY)

    assert o.journey.stage is Stage.COMPLETED
    assert [visit.stage for visit in o.state.journey.history] == list(Stage)[:7]
    assert sent(effects) == [
        ("depart:what-to-expect", MailTemplate.WHAT_TO_EXPECT, KENJI),
        ("handoff:brief", MailTemplate.HANDOFF_BRIEF, MEI),
        (academy_key("kenji.mori@acme-logistics.example"), MailTemplate.ACADEMY_INVITE, KENJI),
        (academy_key("ana@acme-logistics.example"), MailTemplate.ACADEMY_INVITE, ANA),
        (academy_key("bo@acme-logistics.example"), MailTemplate.ACADEMY_INVITE, BO),
        ("kickoff:welcome", MailTemplate.WELCOME, KENJI),
        ("review:checklist", MailTemplate.REVIEW_CHECKLIST, MEI),
        ("expand:next-steps", MailTemplate.EXPAND, KENJI),
    ]
    assert effects.handoff == HandoffRecord(account_id="acme", notes=deal("acme").goals)
    assert o.checklist.open_steps() == []


def test_kickoff_sends_the_dated_checklist_and_gives_the_champion_and_the_users_access() -> None:
    o = onboarding(users=[ANA, BO])
    effects = batch()
    drive(o, Stage.KICKOFF, T0, effects)

    welcome = mail(effects, "kickoff:welcome")
    assert [(t.id, t.due_at - T0, t.done_at) for t in welcome.tasks] == [
        ("kickoff-call", 7 * DAY, None),
        ("academy-access", 3 * DAY, T0),  # access was just given
        ("add-users", 17 * DAY, None),
        ("configure", 31 * DAY, None),
        ("integration-test", 50 * DAY, None),
        ("open-questions", 65 * DAY, None),
    ]
    courses = [course.id for course in o.path.courses]
    assert [(g.user, g.courses, g.at) for g in effects.grants] == [
        (KENJI, courses, T0),
        (ANA, courses, T0),
        (BO, courses, T0),
    ]
    invite = mail(effects, academy_key("ana@acme-logistics.example"))
    assert [course.id for course in invite.courses] == [
        "getting-started",
        "integrations-basics",
        "sso-and-audit",
        "logistics-tracking",
    ]
    assert Milestone.KICKOFF_HELD not in o.state.journey.milestones  # high touch: the CSM's


def test_tech_touch_kickoff_records_its_own_milestone() -> None:
    o = onboarding(touch_model=TouchModel.TECH)
    drive(o, Stage.KICKOFF, T0, batch())
    record = o.state.journey.milestones[Milestone.KICKOFF_HELD]
    assert (record.by, record.at) == ("playbook", T0)
    assert o.settled(T0)
    assert o.closes_at() is None


def test_the_review_gate_holds_adopt_until_the_gate_courses_are_done() -> None:
    input = onboarding_input(deal("acme"))
    learning = input.playbook.learning.model_copy(update={"review_gate": ["getting-started"]})
    o = onboarding(
        input.model_copy(
            update={"playbook": input.playbook.model_copy(update={"learning": learning})}
        )
    )
    drive(o, Stage.ADOPT, T0, batch())
    o.milestone_reported(Milestone.INTEGRATION_DONE, "se", None, T0 + DAY, None)
    assert not o.settled(T0 + DAY)
    done = Engagement(kind=EngagementKind.COURSE_COMPLETED, value="getting-started")
    assert o.engaged(done, T0 + DAY) is None  # nothing to note
    assert o.settled(T0 + DAY)


def test_progress_on_a_course_not_on_the_path_is_ignored_with_a_note() -> None:
    o = onboarding()
    note = o.engaged(Engagement(kind=EngagementKind.COURSE_COMPLETED, value="governance"), T0)
    assert note == "progress on 'governance' is not on this path; ignored"


# --- the checklist's tasks --------------------------------------------------------------------


def test_the_last_required_task_completes_the_stage_where_the_playbook_says_so() -> None:
    o = onboarding(with_adopt(onboarding_input(deal("acme")), tasks_complete_stage=True))
    drive(o, Stage.ADOPT, T0, batch())
    assert o.task_done("add-users", "champion", T0 + DAY, T0 + DAY)
    assert o.task_done("configure", "champion", T0 + 2 * DAY, T0 + 2 * DAY)
    assert not o.settled(T0 + 2 * DAY)

    assert o.task_done("integration-test", "se", T0 + 3 * DAY, T0 + 3 * DAY)

    record = o.state.journey.milestones[Milestone.INTEGRATION_DONE]
    assert (record.by, record.at, record.note) == (
        "checklist",
        T0 + 3 * DAY,
        "all required adopt tasks done",
    )
    assert o.settled(T0 + 3 * DAY)


def test_finishing_the_tasks_completes_nothing_where_the_playbook_does_not_say_so() -> None:
    o = onboarding()
    drive(o, Stage.ADOPT, T0, batch())
    for task in ("add-users", "configure", "integration-test"):
        o.task_done(task, "champion", T0 + DAY, T0 + DAY)
    assert not o.settled(T0 + DAY)


def test_tasks_done_before_their_stage_complete_it_when_it_is_reached() -> None:
    o = onboarding(with_adopt(onboarding_input(deal("acme")), tasks_complete_stage=True))
    effects = batch()
    drive(o, Stage.KICKOFF, T0, effects)
    for task in ("add-users", "configure", "integration-test"):  # done early, during kickoff
        o.task_done(task, "champion", T0 + DAY, T0 + DAY)
    o.milestone_reported(Milestone.KICKOFF_HELD, "csm-007", None, T0 + 2 * DAY, None)
    o.advance(T0 + 2 * DAY)
    o.enter(T0 + 2 * DAY, effects)
    assert o.settled(T0 + 2 * DAY)


def test_a_repeated_or_unknown_task_report_is_ignored() -> None:
    o = onboarding()
    drive(o, Stage.KICKOFF, T0, batch())
    assert o.task_reported("kickoff-call", "calendar", None, T0 + DAY)
    assert not o.task_reported("kickoff-call", "calendar", None, T0 + 2 * DAY)
    assert not o.task_reported("no-such-task", "calendar", None, T0 + 2 * DAY)
    assert o.state.clock.tasks["kickoff-call"].done_at == T0 + DAY


def test_a_task_reported_with_a_time_in_the_future_is_taken_as_now() -> None:
    o = onboarding()
    drive(o, Stage.KICKOFF, T0, batch())
    o.task_reported("kickoff-call", "calendar", T0 + 30 * DAY, T0 + DAY)
    assert o.state.clock.tasks["kickoff-call"].done_at == T0 + DAY


# --- reminders and escalations ----------------------------------------------------------------


def test_reminders_go_to_the_people_of_each_step_owner() -> None:
    o = onboarding()
    drive(o, Stage.ADOPT, T0, batch())
    effects = batch(T0 + 5 * DAY)
    o.remind(T0 + 5 * DAY, effects)
    assert sent(effects) == [
        ("kickoff:task:kickoff-call:reminder:1", MailTemplate.REMINDER, MEI),
        ("adopt:task:add-users:reminder:1", MailTemplate.REMINDER, KENJI),
    ]
    assert mail(effects, "adopt:task:add-users:reminder:1").cc == []
    assert o.state.risk.champion_reminders == [T0 + 5 * DAY]


def test_once_switched_to_high_touch_the_csm_is_copied_on_the_customers_reminders() -> None:
    o = onboarding(touch_model=TouchModel.LOW)
    drive(o, Stage.ADOPT, T0, batch())
    effects = batch(T0 + 14 * DAY)
    assert o.reassess(T0 + 14 * DAY, effects)  # 14 days quiet: high
    assert o.touch_model is TouchModel.HIGH
    o.remind(T0 + 14 * DAY, effects)
    reminder = mail(effects, "adopt:task:add-users:reminder:1")
    assert (reminder.to, reminder.cc) == (KENJI, [MEI])


def test_before_there_is_a_csm_an_escalation_goes_to_the_lead() -> None:
    o = onboarding()
    o.enter(T0, batch())
    effects = batch(T0 + 14 * DAY)
    o.reassess(T0 + 14 * DAY, effects)
    o.escalate(T0 + 14 * DAY, effects)
    assert effects.risk is not None and effects.risk.level == "high"
    assert sent(effects) == [("escalation:1:cs_lead", MailTemplate.ESCALATION, LEAD)]
    assert mail(effects, "escalation:1:cs_lead").chat


def test_a_champion_who_left_without_successor_makes_the_csm_name_one() -> None:
    o = onboarding()
    drive(o, Stage.ADOPT, T0, batch())
    o.champion_changed(ChampionChanged(reason=ChampionLossReason.LEFT), T0 + DAY)
    effects = batch(T0 + DAY)
    o.reassess(T0 + DAY, effects)
    o.escalate(T0 + DAY, effects)
    assert sent(effects) == [
        ("champion:ask:1", MailTemplate.NAME_CHAMPION, MEI),
        ("escalation:1:csm", MailTemplate.ESCALATION, MEI),
    ]


def test_a_deadline_passing_while_paused_is_not_a_missed_deadline() -> None:
    o = onboarding()
    drive(o, Stage.KICKOFF, T0, batch())
    o.checklist.pause(T0 + 5 * DAY)
    o.remind(T0 + 8 * DAY, batch(T0 + 8 * DAY))  # a look while paused: a signal woke the loop
    o.resume(T0 + 10 * DAY)  # kickoff-call is due on day 12 now
    assert o.state.risk.missed == []
    assert o.risk.assess(T0 + 10 * DAY).level is RiskLevel.LOW


def test_nothing_is_reassessed_or_escalated_while_paused() -> None:
    o = onboarding()
    o.enter(T0, batch())
    o.checklist.pause(T0 + DAY)
    effects = batch(T0 + 20 * DAY)
    assert not o.reassess(T0 + 20 * DAY, effects)
    assert o.escalate(T0 + 20 * DAY, effects) == []
    assert effects.empty


def test_next_wake_is_the_soonest_of_reminders_risk_and_lapse_and_none_while_paused() -> None:
    o = onboarding()
    drive(o, Stage.ADOPT, T0, batch())
    assert o.next_wake(T0) == T0 + 5 * DAY  # add-users' and kickoff-call's first reminders
    o.checklist.pause(T0 + DAY)
    assert o.next_wake(T0 + DAY) is None


# --- the CSM ------------------------------------------------------------------------------------


def test_a_reassignment_tells_both_csms_with_the_open_steps() -> None:
    o = onboarding()
    drive(o, Stage.ADOPT, T0, batch())
    effects = batch(T0 + DAY)
    o.reassigned(1, RAJ_REF, "holiday cover", effects)
    assert sent(effects) == [
        ("reassign:1:to", MailTemplate.REASSIGNED, RAJ),
        ("reassign:1:from", MailTemplate.REASSIGNED, MEI),
    ]
    told = mail(effects, "reassign:1:to")
    assert (told.previous_csm, told.note) == (MEI_REF, "holiday cover")
    assert [step.id for step in told.tasks] == [
        "stage",
        "kickoff-call",
        "add-users",
        "configure",
        "integration-test",
    ]


def test_the_queue_is_not_told_it_lost_an_account() -> None:
    o = onboarding()
    o.enter(T0, batch())
    o.csm.assigned(QUEUE)
    effects = batch(T0 + DAY)
    o.reassigned(1, RAJ_REF, "capacity freed up", effects)
    assert sent(effects) == [("reassign:1:to", MailTemplate.REASSIGNED, RAJ)]


# --- endings ----------------------------------------------------------------------------------


def test_a_csm_cancel_thanks_the_champion() -> None:
    o = onboarding()
    drive(o, Stage.ADOPT, T0, batch())
    o.journey.cancel(Cancel(reason=CancelReason.PRICE, by="csm-007"), T0 + DAY)
    ending = batch(T0 + DAY)
    assert o.end(T0 + DAY, ending) is Stage.CANCELLED
    assert sent(ending) == [("cancelled:farewell", MailTemplate.FAREWELL, KENJI)]
    assert o.checklist.open_steps() == []


def test_a_temporal_cancel_tells_the_csm_and_the_lead_and_not_the_customer() -> None:
    o = onboarding()
    drive(o, Stage.ADOPT, T0, batch())
    o.cancel_from_temporal(T0 + DAY)
    ending = batch(T0 + DAY)
    assert o.end(T0 + DAY, ending) is Stage.CANCELLED
    assert sent(ending) == [("cancelled:notice", MailTemplate.CLOSED, MEI)]
    notice = mail(ending, "cancelled:notice")
    assert (notice.cc, notice.note) == ([LEAD], TEMPORAL_CANCEL_NOTE)


def test_a_temporal_cancel_before_there_is_a_csm_tells_the_lead() -> None:
    o = onboarding()
    o.enter(T0, batch())
    o.cancel_from_temporal(T0 + DAY)
    ending = batch(T0 + DAY)
    o.end(T0 + DAY, ending)
    assert [(m.template, m.to, m.cc) for m in ending.mails] == [(MailTemplate.CLOSED, LEAD, [])]


def test_a_temporal_cancel_after_a_csm_cancel_keeps_the_csms() -> None:
    o = onboarding()
    o.enter(T0, batch())
    o.journey.cancel(Cancel(reason=CancelReason.TOO_HARD, by="csm-007"), T0 + DAY)
    o.cancel_from_temporal(T0 + DAY)
    ending = batch(T0 + DAY)
    o.end(T0 + DAY, ending)
    assert sent(ending) == [("cancelled:farewell", MailTemplate.FAREWELL, KENJI)]


def test_an_ended_onboarding_ends_once() -> None:
    o = onboarding()
    o.enter(T0, batch())
    o.cancel_from_temporal(T0 + DAY)
    o.end(T0 + DAY, batch(T0 + DAY))
    again = batch(T0 + 2 * DAY)
    assert o.end(T0 + 2 * DAY, again) is Stage.CANCELLED
    assert again.mails == []


def test_an_onboarding_overdue_past_every_allowance_lapses_with_a_notice() -> None:
    o = onboarding()
    drive(o, Stage.ADOPT, T0, batch())
    # Adopt's deadline (45d) plus the most an extension may add (30d) plus the grace (14d).
    assert o.closes_at() == T0 + 89 * DAY
    assert not o.lapsing(T0 + 89 * DAY - timedelta(seconds=1))
    assert o.lapsing(T0 + 89 * DAY)

    ending = batch(T0 + 89 * DAY)
    assert o.end(T0 + 89 * DAY, ending) is Stage.LAPSED
    assert sent(ending) == [("lapsed:notice", MailTemplate.CLOSED, MEI)]
    notice = mail(ending, "lapsed:notice")
    assert notice.cc == [LEAD]
    assert notice.note == (
        "overdue past every allowance and no sign of life since 2026-03-02 09:00 UTC"
    )


def test_a_sign_of_life_or_a_pause_keeps_it_from_lapsing() -> None:
    o = onboarding()
    drive(o, Stage.ADOPT, T0, batch())
    o.engaged(Engagement(kind=EngagementKind.LOGIN), T0 + 80 * DAY)
    assert o.closes_at() == T0 + 94 * DAY
    o.checklist.pause(T0 + 81 * DAY)
    assert o.closes_at() is None
    assert not o.lapsing(T0 + 200 * DAY)


def test_users_added_in_expand_get_access_after_the_onboarding_completes() -> None:
    o = onboarding()
    drive(o, Stage.EXPAND, T0, batch())
    assert o.users_added([CY]) == [CY]

    o.complete(T0 + DAY)
    effects = batch(T0 + DAY)
    o.grant_waiting(T0 + DAY, effects)

    assert [grant.user for grant in effects.grants] == [CY]
    assert sent(effects) == [
        (academy_key("cy@acme-logistics.example"), MailTemplate.ACADEMY_INVITE, CY)
    ]
    assert o.users_added([ANA]) == []
    assert o.state.learning.refused_users == 1


def test_the_mail_context_carries_the_champion_named_now_and_no_due_date_once_ended() -> None:
    o = onboarding()
    drive(o, Stage.KICKOFF, T0, batch())
    o.name_champion(ANA, T0 + DAY)
    context = o.mail_context(T0 + DAY)
    assert (context.account.champion, context.due_at) == (ANA, T0 + 7 * DAY)
    o.cancel_from_temporal(T0 + DAY)
    o.end(T0 + DAY, batch(T0 + DAY))
    assert o.mail_context(T0 + DAY).due_at is None


def test_a_milestone_reported_before_the_one_it_follows_never_makes_first_value_negative() -> None:
    """The product reports the integration before the CRM reports the signature."""
    o = onboarding()
    o.milestone_reported(Milestone.INTEGRATION_DONE, "product", None, T0 + 2 * DAY, None)
    o.milestone_reported(Milestone.CONTRACT_SIGNED, "crm", None, T0 + 5 * DAY, None)
    drive(o, Stage.REVIEW, T0 + 6 * DAY, batch())
    row = o.journey.row(None)
    assert row.contract_signed_at == T0 + 5 * DAY
    assert row.first_value_at == T0 + 6 * DAY  # kickoff (recorded on day 6) came before it
    assert row.first_value_at >= row.kickoff_at >= row.contract_signed_at


def test_engagement_reported_in_batches_counts_every_event() -> None:
    o = onboarding()
    o.engaged(Engagement(kind=EngagementKind.LOGIN, count=250), T0 + DAY)
    o.engaged(Engagement(kind=EngagementKind.LOGIN), T0 + 2 * DAY)
    assert o.state.risk.engagements == {EngagementKind.LOGIN: 251}
    assert o.state.risk.last_engagement_at == T0 + 2 * DAY


def test_a_cancel_drops_the_grants_decided_before_it_with_their_invitations() -> None:
    o = onboarding(users=[ANA])
    effects = batch()
    drive(o, Stage.KICKOFF, T0, effects)
    assert len(effects.grants) == 2
    o.journey.cancel(Cancel(reason=CancelReason.PRICE, by="csm-007"), T0)
    carried = o.complete_batch(effects, T0)
    assert carried.grants == [] and o.state.learning.academy_users == []
    assert [m.template for m in carried.mails] == []
