"""The onboarding's rules over its state, without Temporal: the components (stages, checklist,
risk, learning, CSM, read model) wired together, and what each event and each look at the
clock decides. The workflow turns these decisions into activities and timers; unit tests drive
this class directly with `now` and facts."""

from __future__ import annotations

from datetime import datetime

from models.activities import (
    AcademyAccess,
    CsmRequest,
    Effects,
    EffectsDone,
    HandoffRecord,
    Mail,
    MailContext,
    MailTemplate,
    OnboardingOpened,
    ReassignRequest,
    Role,
    academy_key,
)
from models.everboarding import EverboardingInput, EverboardingState
from models.journey import (
    Cancel,
    CancelReason,
    ChampionChanged,
    CompleteMilestone,
    Contact,
    CsmRef,
    Engagement,
    EngagementKind,
    ExtendDeadline,
    HelpRequest,
    Milestone,
    MilestoneRecord,
    MilestoneResult,
    OnboardingRequest,
    ReassignCsm,
    ResolveIncident,
    Stage,
    StageVisit,
    TaskStatus,
    TouchModel,
)
from models.onboarding import (
    Incident,
    JourneyState,
    OnboardingInput,
    OnboardingState,
    RiskState,
)
from models.playbook import Playbook
from workflows.onboarding.checklist import Checklist, Reminder, due
from workflows.onboarding.csm import CsmDesk
from workflows.onboarding.incidents import Incidents
from workflows.onboarding.learning import Learning
from workflows.onboarding.readmodel import ReadModel
from workflows.onboarding.risk import RiskWatch, Rung
from workflows.onboarding.stages import STAGE_MILESTONE, Journey, bound

TEMPORAL_CANCEL_NOTE = "cancelled in Temporal (Web UI or CLI)"
# What still goes once an onboarding is cut short: its ending's messages, and CS ops' notices.
ENDING_MAIL = {MailTemplate.FAREWELL, MailTemplate.CLOSED, MailTemplate.INCIDENT}
# The roles of the playbook's reminder recipients and escalation rungs, as a message's reader;
# the rungs above the CSM (cs_lead, head_of_cs) are the lead's.
REMINDED = {"champion": Role.CHAMPION, "csm": Role.CSM, "ae": Role.AE, "queue": Role.QUEUE}


def new_state(request: OnboardingRequest, now: datetime) -> OnboardingState:
    state = OnboardingState(
        journey=JourneyState(
            started_at=now,
            history=[StageVisit(stage=Stage.DEPART, entered_at=now)],
            last_activity_at=now,
        ),
        risk=RiskState(quiet_from=now, champion=request.champion),
    )
    state.learning.users_waiting = [request.champion, *request.users]
    if request.contract_signed_at is not None:
        state.journey.milestones[Milestone.CONTRACT_SIGNED] = MilestoneRecord(
            at=min(request.contract_signed_at, now),
            by=request.account_executive.id,
            note="signed before the onboarding started",
            recorded_at=now,
        )
    return state


class Onboarding:
    def __init__(
        self,
        input: OnboardingInput,
        state: OnboardingState,
        key_prefix: str,
        chain: str | None = None,
    ) -> None:
        self.request = input.request
        self.playbook = input.playbook
        self.path = input.path
        self.state = state
        self.key_prefix = key_prefix
        """Starts every mail key: the workflow id and its run chain."""
        self.chain = chain
        """The first run of the workflow's continue-as-new chain: fences its records."""
        account = self.request.account_id
        self.journey = Journey(state.journey, self.playbook, account)
        self.checklist = Checklist(state.clock, self.playbook)
        self.risk = RiskWatch(state.risk, self.playbook, self.request.touch_model)
        self.learning = Learning(state.learning, self.path, self.playbook)
        self.csm = CsmDesk(state.csm, account)
        self.records = ReadModel(state.recorded, account)
        self.incidents = Incidents(state.incidents, account)

    # --- the playbook's versions -------------------------------------------------------------

    def use_playbook(self, playbook: Playbook) -> None:
        """Go on with another version of the playbook: every component reads this one."""
        self.playbook = playbook
        for component in (self.journey, self.checklist, self.risk, self.learning):
            component.playbook = playbook

    # --- who is who -----------------------------------------------------------------------

    @property
    def touch_model(self) -> TouchModel:
        """High-touch from the moment a low- or tech-touch customer at risk was switched."""
        return TouchModel.HIGH if self.state.risk.high_touch_since else self.request.touch_model

    @property
    def champion(self) -> Contact:
        return self.state.risk.champion

    def person(self, role: str) -> Contact | None:
        if role == "champion":
            return self.champion
        if role == "csm":
            return self.csm.contact
        ae = self.request.account_executive
        return Contact(name=ae.name, email=ae.email)

    def opened(self, workflow_id: str, run_id: str) -> OnboardingOpened:
        """The first record of a new onboarding (a new run chain starts its row afresh)."""
        return OnboardingOpened(
            request=self.request,
            workflow_id=workflow_id,
            run_id=run_id,
            playbook=self.playbook.name,
            started_at=self.state.journey.started_at,
        )

    # --- facts from outside -----------------------------------------------------------------

    def milestone_reported(
        self, milestone: Milestone, by: str, at: datetime | None, now: datetime, note: str | None
    ) -> str | None:
        """A milestone signal: kept once, its time bounded. Returns what was changed about
        the time (for the log), if anything."""
        moment, changed = bound(at, self.journey.earliest(milestone), now)
        self.journey.record(milestone, by, moment, now, note)
        return changed

    def milestone_completed(self, update: CompleteMilestone, now: datetime) -> MilestoneResult:
        """A CSM's milestone (its validator has checked it)."""
        at = min(update.at or now, now)  # the validator allows a few minutes of clock skew
        record = self.journey.record(update.milestone, update.by, at, now, update.note)
        assert record is not None  # the validator refused duplicates
        return MilestoneResult(
            milestone=update.milestone, recorded_at=record.recorded_at, stage=self.journey.stage
        )

    def extend(self, update: ExtendDeadline, now: datetime) -> TaskStatus:
        self.journey.sign_of_life(now)
        return self.checklist.extend(update, now, self.request.account_id, self.journey.stage)

    def task_reported(self, task_id: str, by: str, at: datetime | None, now: datetime) -> bool:
        """A task_done signal: its time bounded; False when unknown or done before."""
        moment, _ = bound(at, self.state.journey.started_at, now)
        return self.task_done(task_id, by, moment, now)

    def task_done(self, task_id: str, by: str, at: datetime, now: datetime) -> bool:
        """A task is done (signal or update); False when unknown or done before. The stage's
        milestone follows where the playbook lets the last required task complete it."""
        task = self.checklist.finish(task_id, by, at)
        if task is None:
            return False
        self.journey.sign_of_life(now)
        self._tasks_complete(task.stage, at, now)
        return True

    def _tasks_complete(self, stage: Stage, at: datetime, now: datetime) -> None:
        """Where the playbook lets the stage's last required task complete it, record its
        milestone once every required task is done and the milestones before it are there:
        when the last task is done, or when the stage is reached with them done already."""
        milestone = STAGE_MILESTONE.get(stage)
        if (
            self.playbook.stage(stage).tasks_complete_stage
            and milestone is not None
            and self.checklist.stage_tasks_done(stage)
            and all(m in self.state.journey.milestones for m in milestone.prerequisites)
        ):
            self.journey.record(milestone, "checklist", at, now, f"all required {stage} tasks done")

    def engaged(self, signal: Engagement, now: datetime) -> str | None:
        """Engagement from the product: cheap on purpose (a busy account sends thousands).
        Only the facts move; the wait loop wakes only if that changes what it would do."""
        at, changed = bound(signal.at, self.state.journey.started_at, now)
        self.risk.engaged(signal.kind, at, signal.count)
        self.journey.sign_of_life(at)
        if signal.kind is EngagementKind.SUPPORT_TICKET:
            self.records.ticket(signal.value or at.isoformat(), at)
        progress = signal.kind is EngagementKind.COURSE_COMPLETED and signal.value
        if progress and not self.learning.progress(progress, at):
            return f"progress on {progress!r} is not on this path; ignored"
        return changed

    def champion_changed(self, signal: ChampionChanged, now: datetime) -> str | None:
        at, changed = bound(signal.at, self.state.journey.started_at, now)
        self.risk.champion_changed(signal, at, now)
        return changed

    def name_champion(self, champion: Contact, now: datetime) -> None:
        self.risk.name_champion(champion, now)
        self.journey.sign_of_life(now)

    def resume(self, now: datetime) -> None:
        """Paused time counts for nothing: deadlines, quiet time and an escalation's next rung
        all move by it."""
        paused_at, paused_for = self.checklist.resume(now)
        self.risk.resume(paused_at, paused_for)
        self.journey.sign_of_life(now)

    def csm_request(self) -> CsmRequest:
        return CsmRequest(
            account_id=self.request.account_id,
            touch_model=self.touch_model,
            industry=self.request.industry,
            run_id=self.chain,
        )

    def reassign_request(self, update: ReassignCsm, now: datetime) -> ReassignRequest:
        return ReassignRequest(
            run_id=self.chain,
            account_id=self.request.account_id,
            number=self.csm.next_reassignment,
            to=update.to,
            touch_model=self.touch_model,
            reason=update.reason,
            by=update.by,
            at=now,
            over_capacity=update.over_capacity,
        )

    def reassigned(self, number: int, to: CsmRef, reason: str, effects: Effects) -> None:
        """Another CSM took over: both hear of it, with the open steps and the open
        escalation (the queue's inbox is not told it lost an account)."""
        before = self.csm.reassigned(number, to)
        open_steps = [due(step) for step in self.checklist.open_steps()]
        sides = [(to, "to")] + ([(before, "from")] if before and not before.pooled else [])
        for csm, side in sides:
            self._mail(
                effects,
                MailTemplate.REASSIGNED,
                f"reassign:{number}:{side}",
                Contact(name=csm.name, email=csm.email),
                role=Role.CSM,
                tasks=open_steps,
                escalation=self.risk.open_escalation(),
                previous_csm=before,
                note=reason,
            )

    def users_added(self, users: list[Contact]) -> list[Contact]:
        if self.journey.ending:
            self.learning.refuse_users(users)
            return []
        return self.learning.add_users(users)

    def cancel_from_temporal(self, now: datetime) -> None:
        if self.state.journey.cancellation is None and not self.journey.ended:
            self.journey.cancel(
                Cancel(reason=CancelReason.OTHER, note=TEMPORAL_CANCEL_NOTE, by="temporal"), now
            )

    # --- entering a stage -------------------------------------------------------------------

    def enter(self, now: datetime, effects: Effects) -> None:
        """The stage's entry actions (the CSM's assignment and the everboarding's start are
        the workflow's: they need answers from outside)."""
        stage = self.journey.stage
        self.checklist.start_stage(stage, self.journey.entered_at)
        if stage is Stage.DEPART:
            self._mail(
                effects,
                MailTemplate.WHAT_TO_EXPECT,
                "depart:what-to-expect",
                self.champion,
                role=Role.CHAMPION,
            )
        elif stage is Stage.KICKOFF:
            self.checklist.plan(self.journey.entered_at)
            self.learning.open_academy(now)
            self.grant_waiting(now, effects)
            # Access given: the checklist's "give every new user access" step is done.
            self.task_done("academy-access", "academy", now, now)
            self._mail(
                effects,
                MailTemplate.WELCOME,
                "kickoff:welcome",
                self.champion,
                role=Role.CHAMPION,
                tasks=self.checklist.tasks(),
            )
        elif stage is Stage.REVIEW:
            self._mail(
                effects,
                MailTemplate.REVIEW_CHECKLIST,
                "review:checklist",
                self.csm.contact,
                role=Role.CSM,
            )
        elif stage is Stage.EXPAND:
            self.grant_waiting(now, effects)  # users added late still get their access
            self._mail(
                effects, MailTemplate.EXPAND, "expand:next-steps", self.champion, role=Role.CHAMPION
            )
        milestone = self.journey.waits_for()
        if milestone is not None and self.playbook.stage(stage).automated:
            self.journey.record(milestone, "playbook", now, now, "automated for this touch model")
        self._tasks_complete(stage, now, now)
        self.journey.entered()

    def assigned(self, brief_key: str, changed: bool, effects: Effects) -> None:
        """The roster answered (and wrote who it chose): keep the AE's notes with the
        onboarding where the CSM changed, and brief the CSM (unless the account simply stays
        queued: the lead was told when it was queued)."""
        csm = self.csm.current
        assert csm is not None
        if changed:
            effects.handoff = HandoffRecord(
                account_id=self.request.account_id, notes=self.request.goals
            )
        if not changed and csm.pooled:
            return
        self._mail(
            effects,
            MailTemplate.HANDOFF_BRIEF,
            brief_key,
            self.csm.contact,
            role=Role.CSM,
            chat=csm.pooled and self.playbook.channels.chat,
        )

    def settled(self, now: datetime) -> bool:
        """The current stage's milestone is there (and, in Adopt, the Review gate passed)."""
        if not self.journey.settled():
            return False
        return not (self.journey.stage is Stage.ADOPT and self.learning.waiting_for_courses(now))

    def advance(self, now: datetime) -> Stage:
        return self.journey.advance(now)

    # --- one look at the clock ---------------------------------------------------------------

    def grant_waiting(self, now: datetime, effects: Effects) -> None:
        courses = [course.id for course in self.path.courses]
        for user in self.learning.take_waiting():
            effects.grants.append(
                AcademyAccess(
                    account_id=self.request.account_id, user=user, courses=courses, at=now
                )
            )
            self._mail(
                effects,
                MailTemplate.ACADEMY_INVITE,
                academy_key(str(user.email)),
                user,
                role=Role.USER,
                courses=self.path.level("onboarding"),
            )

    def remind(self, now: datetime, effects: Effects) -> list[Reminder]:
        """Every reminder due, to the step's owner's people (a CSM copied on all of them once
        the account went high-touch)."""
        sent = []
        for reminder in self.checklist.due_reminders(now):
            roles = list(self.playbook.reminders.recipients.get(reminder.owner, []))  # type: ignore[call-overload]
            if self.state.risk.high_touch_since and "csm" not in roles:
                roles.append("csm")
            people = [(role, p) for role in roles if (p := self.person(role)) is not None]
            if not people:
                continue
            (role, addressee), copied = people[0], [person for _, person in people[1:]]
            if addressee == self.champion:
                self.risk.champion_reminded(now)
            self._mail(
                effects,
                MailTemplate.REMINDER,
                reminder.key,
                addressee,
                role=REMINDED.get(role),
                cc=copied,
                step=due(reminder.step),
            )
            sent.append(reminder)
        if not self.checklist.paused:  # a deadline passing while paused is not missed
            self.risk.missed(
                [f"{s.stage}:{s.id}" for s in self.checklist.open_steps() if s.overdue(now)]
            )
        return sent

    def reassess(self, now: datetime, effects: Effects) -> bool:
        """Record a new risk level; True when the account must now get a named CSM."""
        if self.checklist.paused:
            return False
        record, switch = self.risk.reassess(now)
        if record is not None:
            effects.risk = record
        return switch

    def escalate(self, now: datetime, effects: Effects) -> list[Rung]:
        if self.checklist.paused:
            return []
        if self.risk.ask_for_champion(self.csm.contact):
            key = f"champion:ask:{self.state.risk.champion_losses}"
            self._mail(effects, MailTemplate.NAME_CHAMPION, key, self.csm.contact, role=Role.CSM)
        rungs = self.risk.climb(now, self.csm.contact)
        for rung in rungs:
            self._mail(
                effects,
                MailTemplate.ESCALATION,
                f"escalation:{rung.escalation.number}:{rung.role}",
                rung.person,
                role=REMINDED.get(rung.role, Role.LEAD),
                escalation=rung.escalation.model_copy(deep=True),
                chat=self.playbook.channels.chat,
            )
        return rungs

    def closes_at(self) -> datetime | None:
        overdue_from = self.checklist.lapses_at(self.journey.stage, self.journey.entered_at)
        if self.journey.waits_for() is None or self.journey.settled():
            return None
        return self.journey.closes_at(overdue_from, self.checklist.paused)

    def lapsing(self, now: datetime) -> bool:
        closes_at = self.closes_at()
        return closes_at is not None and closes_at <= now

    def unrecorded(self) -> dict[str, object]:
        """What the database does not hold yet (the parts of a batch that bring it up to
        date); empty when it is current."""
        lapses_at = self.checklist.lapses_at(self.journey.stage, self.journey.entered_at)
        return self.records.differences(
            self.journey.row(lapses_at),
            self.state.journey.history,
            self.checklist.tasks(),
            self.state.risk.escalations,
        )

    def next_wake(self, now: datetime) -> datetime | None:
        times = [
            self.checklist.next_wake(now),
            self.risk.next_wake(now, self.checklist.paused),
            self.closes_at(),
        ]
        return min((t for t in times if t is not None and t > now), default=None)

    # --- endings -----------------------------------------------------------------------------

    def end(self, now: datetime, effects: Effects) -> Stage:
        """Carry out the cancellation waiting (a CSM's: thank the customer; from Temporal:
        tell the CSM, the customer hears nothing) or the lapse; returns the end reached."""
        if self.journey.ended:
            return self.journey.stage
        cancellation = self.state.journey.cancellation
        if cancellation is not None:
            self.journey.let_go(now)
            if cancellation.by == "temporal":
                self._notice(effects, "cancelled:notice", cancellation.note or "")
            else:
                self._mail(
                    effects,
                    MailTemplate.FAREWELL,
                    "cancelled:farewell",
                    self.champion,
                    role=Role.CHAMPION,
                )
        else:
            self.journey.lapse(now)
            self._notice(
                effects,
                "lapsed:notice",
                f"overdue past every allowance and no sign of life since "
                f"{self.state.journey.last_activity_at:%Y-%m-%d %H:%M} UTC",
            )
        self.checklist.stop()
        return self.journey.stage

    def complete(self, now: datetime) -> None:
        self.journey.advance(now)
        self.checklist.stop()

    # --- incidents ------------------------------------------------------------------------

    def carried_out(
        self, batch: Effects, done: EffectsDone, now: datetime, effects: Effects
    ) -> list[Incident]:
        """A batch went through: note what is on record, raise an incident for each message
        that failed for good and tell CS ops (a failed notice raises no notice of its own)."""
        self.records.recorded(batch)
        raised = self.incidents.raise_for(done.failed, batch, self.champion, now)
        for incident in raised:
            if incident.template is not MailTemplate.INCIDENT:
                self._mail(
                    effects,
                    MailTemplate.INCIDENT,
                    f"incident:{incident.number}",
                    None,
                    role=Role.QUEUE,
                    note=f"#{incident.number}: the {incident.template} message could not be "
                    f"sent ({incident.error_type}): {incident.reason}",
                    chat=True,
                )
        return raised

    def help_requested(self, request: HelpRequest, now: datetime, effects: Effects) -> bool:
        """The customer's question goes to their CSM (the queue's inbox while pooled, the CS
        lead before there is a CSM), replies to the customer; False once ended."""
        if self.journey.ending:
            return False
        self.journey.sign_of_life(now)
        to = self.csm.contact or self.risk.lead()
        role = Role.CSM if self.csm.contact else Role.LEAD if to else Role.QUEUE
        self._mail(
            effects,
            MailTemplate.HELP_REQUEST,
            f"help:{request.id}",
            to,
            role=role,
            note=request.message,
            reply_to=request.reply_to,
        )
        return True

    def resolve_incident(self, resolve: ResolveIncident, now: datetime, effects: Effects) -> None:
        for incident in self.incidents.resolve(resolve, self.champion, now):
            if resolve.retry and incident.mail is not None:
                effects.mails.append(incident.mail)

    def _notice(self, effects: Effects, key: str, note: str) -> None:
        """An internal notice that the run closed: to the CSM with the CS lead copied (the
        lead alone, or the queue inbox, when there is no CSM of their own)."""
        lead = self.risk.lead()
        to, cc = (self.csm.named, [lead] if lead else []) if self.csm.named else (lead, [])
        role = Role.CSM if self.csm.named else Role.LEAD if lead else Role.QUEUE
        self._mail(effects, MailTemplate.CLOSED, key, to, role=role, cc=cc, note=note)

    # --- mail ---------------------------------------------------------------------------------

    def _mail(
        self,
        effects: Effects,
        template: MailTemplate,
        key: str,
        to: Contact | None,
        **parts: object,
    ) -> None:
        effects.mails.append(
            Mail.model_validate(
                {"key": f"{self.key_prefix}:{key}", "template": template, "to": to} | parts
            )
        )

    def everboarding_input(self) -> EverboardingInput:
        """What the everboarding starts from: the champion of now, the CSM, the path and the
        courses done so far; check-ins for the CSM where the account is high-touch."""
        plan = self.playbook.everboarding
        return EverboardingInput(
            request=self.request.model_copy(update={"champion": self.champion}),
            csm=self.csm.current,
            cadence=plan.cadence,
            path=self.path,
            state=EverboardingState(courses_done=self.state.learning.courses_done),
            checkin_every=plan.checkin_every if self.touch_model is TouchModel.HIGH else None,
            suggest=plan.suggest,
        )

    def complete_batch(self, effects: Effects, now: datetime) -> Effects:
        """The batch as it is carried out: with what the database still lacks and the
        messages' shared context. Once the onboarding is cut short, only the ending's own
        messages go (a reminder decided before a cancel does not)."""
        if self.journey.cut_short:
            effects.mails = [m for m in effects.mails if m.template in ENDING_MAIL]
            for access in effects.grants:  # never told: not given either
                self.learning.revoke(access.user)
            effects.grants = []
        batch = effects.model_copy(update=self.unrecorded() | {"at": now, "run_id": self.chain})
        if batch.mails:
            batch.context = self.mail_context(now)
        return batch

    def mail_context(self, now: datetime) -> MailContext:
        """What every message of a batch shares (the parts of each message are its own)."""
        signed = self.state.journey.milestones.get(Milestone.CONTRACT_SIGNED)
        clock = self.state.clock.stage_clock
        return MailContext(
            # The champion named now: the deal's may have left since.
            account=self.request.model_copy(update={"champion": self.champion}),
            csm=self.csm.current,
            due_at=None if self.journey.ended else self.checklist.next_deadline(),
            stage_due_at=clock.due_at if clock and not self.journey.ended else None,
            now=now,
            cancellation=self.state.journey.cancellation,
            risk=self.state.risk.assessment,
            path=self.path,
            touch_model=self.touch_model,
            contract_signed_at=signed.at if signed else None,
            kickoff_automated=self.playbook.stage(Stage.KICKOFF).automated,
        )
