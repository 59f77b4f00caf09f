"""One customer's onboarding, from deal close to everboarding."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.assign import AssignActivities
    from activities.notify import NotifyActivities
    from activities.records import RecordActivities
    from models.academy import CoursePlan, CourseStatus
    from models.activities import (
        AcademyAccess,
        ChatRequest,
        Checklist,
        CsmRequest,
        EmailRequest,
        EscalationRecord,
        HandoffRecord,
        MailContext,
        MailTemplate,
        OnboardingOpened,
        ReassignRequest,
        RiskRecord,
        StageChange,
        TaskDue,
    )
    from models.everboarding import EverboardingInput, EverboardingState
    from models.journey import (
        Acknowledge,
        Cancel,
        Cancellation,
        ChampionChange,
        ChampionChanged,
        CompleteMilestone,
        CompleteTask,
        Contact,
        CsmRef,
        Engagement,
        EngagementKind,
        Escalation,
        ExtendDeadline,
        Milestone,
        MilestoneRecord,
        MilestoneResult,
        MilestoneSignal,
        OnboardingInput,
        OnboardingStatus,
        PauseClock,
        ReassignCsm,
        ResumeClock,
        RiskAssessment,
        RiskLevel,
        SetChampion,
        Stage,
        StageVisit,
        TaskSignal,
        TaskStatus,
        TouchModel,
        UsersAdded,
    )
    from workflows.activity_options import run_activity
    from workflows.contract import (
        MEMO_CSM,
        MEMO_ESCALATED,
        MEMO_NEXT_DEADLINE,
        MEMO_OVERDUE,
        MEMO_RISK,
        MEMO_STAGE,
        SA_CSM,
        SA_ESCALATED,
        SA_NEXT_DEADLINE,
        SA_OVERDUE,
        SA_PLAN,
        SA_RISK,
        SA_STAGE,
        SA_TOUCH_MODEL,
        everboarding_id,
    )
    from workflows.deadlines import STAGE_OWNER, next_reminder, shift
    from workflows.engagement import SCORECARD_PATCH, record_support_ticket
    from workflows.everboarding import EverboardingWorkflow
    from workflows.metrics import count
    from workflows.risk import RiskFacts, assess

# The milestone that ends each stage that waits for one.
STAGE_MILESTONE = {milestone.stage: milestone for milestone in Milestone}
# The stages whose playbook tasks make up the customer's checklist.
PLANNED_STAGES = (Stage.KICKOFF, Stage.ADOPT, Stage.REVIEW)
# workflow.patched ids: deadlines, reminders, tasks, pause and cancel; then academy access,
# the learning path's gate, and retrying a pooled assignment.
DEADLINES_PATCH = "deadlines-v1"
ACADEMY_PATCH = "academy-v1"


def _task_due(task: TaskStatus) -> TaskDue:
    return TaskDue(
        stage=task.stage,
        id=task.id,
        title=task.title,
        owner=task.owner,
        required=task.required,
        due_at=task.due_at,
        done_at=task.done_at,
    )


@workflow.defn
class OnboardingWorkflow:
    """Walks one account through depart → handoff → kickoff → adopt → review → expand.

    Signals (system-to-system, fire and forget; early ones are kept, duplicates ignored):
        contract_signed, kickoff_held, integration_done, review_passed, task_done,
        engagement (also course progress), champion_changed, users_added
    Updates (the CSM's interface, validated): complete_milestone, complete_task,
        extend_deadline, pause, resume, cancel, set_champion, acknowledge_escalation,
        reassign_csm
    Query: status
    """

    @workflow.init
    def __init__(self, input: OnboardingInput) -> None:
        # Decided here, not in run(): a signal in the first activation already publishes.
        # Onboardings started before deadlines existed replay the plain milestone waits.
        self._deadlines = workflow.patched(DEADLINES_PATCH)
        self._academy = self._deadlines and workflow.patched(ACADEMY_PATCH)
        # Search attributes are kept current when the run was started with them (the starter
        # does; the time-skipping test server knows none and would fail the task).
        self._indexed = SA_STAGE in workflow.info().typed_search_attributes
        self._request = input.request
        self._playbook = input.playbook
        now = workflow.now()
        self._started_at = now
        self._stage = Stage.DEPART
        self._history = [StageVisit(stage=Stage.DEPART, entered_at=now)]
        self._milestones: dict[Milestone, MilestoneRecord] = {}
        self._csm: CsmRef | None = None
        self._everboarding_id: str | None = None
        # Deadlines (from the version with reminders on): the current stage's clock, the
        # checklist, the pause, and a counter handlers bump so the wait loop re-plans.
        self._stage_clock: TaskStatus | None = None
        self._tasks: dict[str, TaskStatus] = {}
        self._unsaved_tasks: set[str] = set()
        self._lapse_moved = False  # a resumed pause moved the stage's lapse moment
        self._paused_at: datetime | None = None
        self._cancellation: Cancellation | None = None
        self._changes = 0
        # Risk: the facts it is computed from, the assessment, and the escalations raised.
        self._champion_contact = input.request.champion
        self._champion_change: ChampionChange | None = None
        self._champion_losses = 0  # numbers the "name a new champion" mails
        self._champion_named_at: datetime | None = None
        self._ask_for_champion = False
        self._last_engagement: datetime | None = None
        self._champion_reminders: list[datetime] = []
        self._missed: set[str] = set()
        self._risk = RiskAssessment()
        self._escalations: list[Escalation] = []
        self._escalation_armed = True
        self._unsaved_escalation = False
        self._high_touch_since: datetime | None = None
        # Learning: the path, progress (`course` or `course/module` → when), academy users.
        self._path = input.path
        self._courses_done: dict[str, datetime] = {}
        self._academy_opened_at: datetime | None = None
        self._users_waiting: list[Contact] = [input.request.champion, *input.request.users]
        self._academy_users: list[str] = []
        self._reassignments = 0
        self._reassigning = False
        if input.request.contract_signed_at is not None:
            self._milestones[Milestone.CONTRACT_SIGNED] = MilestoneRecord(
                at=input.request.contract_signed_at,
                by=input.request.account_executive.id,
                note="signed before the onboarding started",
                recorded_at=now,
            )

    @workflow.run
    async def run(self, input: OnboardingInput) -> OnboardingStatus:
        self._publish()
        self._count("onboarding_started")
        await run_activity(
            RecordActivities.open_onboarding,
            OnboardingOpened(
                request=self._request,
                workflow_id=workflow.info().workflow_id,
                playbook=self._playbook.name,
                started_at=self._started_at,
            ),
            summary="open the onboarding record",
        )
        await self._record_stage(previous=None)
        self._start_stage_clock()
        stage_actions = {
            Stage.DEPART: self._depart,
            Stage.HANDOFF: self._handoff,
            Stage.KICKOFF: self._kickoff,
            Stage.ADOPT: self._adopt,
            Stage.REVIEW: self._review,
            Stage.EXPAND: self._expand,
        }
        while not self._stage.ended:
            stage = self._stage
            if self._academy and self._csm is not None and self._csm.pooled:
                # Capacity may have freed up since: try again at every stage.
                await self._take_csm(f"{stage}:brief")
            await stage_actions[stage]()
            milestone = STAGE_MILESTONE.get(stage)
            if milestone is not None:
                if self._playbook.stage(stage).automated and milestone not in self._milestones:
                    self._record(milestone, by="playbook", note="automated for this touch model")
                if self._deadlines:
                    await self._wait_keeping_deadlines(milestone)
                else:
                    await workflow.wait_condition(lambda m=milestone: m in self._milestones)  # type: ignore[misc]
            if self._cancellation is not None:
                await self._let_go()
            else:
                await self._advance()
        # Let a late update finish before the run closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._count(f"onboarding_{self._stage}")  # completed or cancelled
        workflow.logger.info("onboarding %s", self._stage)
        return self.status()

    def _count(self, name: str, **attributes: str) -> None:
        count(
            name,
            plan=str(self._request.plan),
            touch_model=str(self._request.touch_model),
            **attributes,
        )

    # --- deadlines and reminders ---------------------------------------------------------

    async def _wait_keeping_deadlines(self, milestone: Milestone) -> None:
        """Wait for the milestone while reminding on the playbook's cadence.

        The updatable-timer pattern: sleep until the next reminder is due or a handler changes
        something (a task done, a deadline moved, a pause), then plan again.
        """

        def settled() -> bool:
            if self._cancellation is not None:
                return True
            gated = milestone.stage is Stage.ADOPT and bool(self._waiting_for_courses())
            return milestone in self._milestones and not gated

        while not settled():
            await self._save_tasks()
            await self._save_lapse()
            await self._grant_academy_access()
            if self._paused_at is not None:
                # A paused clock sends nothing; resuming shifts every deadline (see `resume`).
                await workflow.wait_condition(lambda: self._paused_at is None or settled())
                continue
            await self._send_due_reminders()
            await self._watch_risk()
            wake_at = self._next_wake()
            seen = self._changes
            timeout = max(wake_at - workflow.now(), timedelta(seconds=1)) if wake_at else None
            # On timeout a reminder is due: the next pass sends it.
            with suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda seen=seen: self._changes != seen or settled(),  # type: ignore[misc]
                    timeout=timeout,
                    timeout_summary="next reminder",
                )
        await self._save_tasks()

    def _open_steps(self) -> list[TaskStatus]:
        """The stage's own deadline and the open tasks of stages reached so far."""
        steps = [self._stage_clock] if self._stage_clock else []
        return steps + [
            task
            for task in self._tasks.values()
            if task.done_at is None and task.active_from is not None
        ]

    def _next_wake(self) -> datetime | None:
        """The next moment something may be due: a reminder, a deadline passing (a missed
        deadline raises risk), a quiet-time threshold, or an escalation's next rung."""
        now = workflow.now()
        times = [next_reminder(s, self._playbook.reminders) for s in self._open_steps()]
        times += [s.due_at for s in self._open_steps()]
        limits = self._playbook.risk
        quiet_since = self._quiet_since()
        times += [quiet_since + limits.quiet_medium, quiet_since + limits.quiet_high]
        if (open_escalation := self._open_escalation()) is not None:
            times.append(open_escalation.next_level_at)
        return min((t for t in times if t is not None and t > now), default=None)

    async def _send_due_reminders(self) -> None:
        now = workflow.now()
        for step in self._open_steps():
            due = next_reminder(step, self._playbook.reminders)
            if due is None or due > now:
                continue
            step.reminders_sent += 1
            step.last_reminded_at = now
            owner = STAGE_OWNER[step.stage] if step is self._stage_clock else step.owner
            roles = list(self._playbook.reminders.recipients.get(owner, []))  # type: ignore[call-overload]
            if self._high_touch_since and "csm" not in roles:
                roles.append("csm")  # high-touch: a human follows every reminder
            people = [person for role in roles if (person := self._person(role)) is not None]
            if not people:
                continue
            if people[0] == self._champion:
                self._champion_reminders.append(now)
            what = "deadline" if step is self._stage_clock else f"task:{step.id}"
            await self._mail(
                MailTemplate.REMINDER,
                f"{step.stage}:{what}:reminder:{step.reminders_sent}",
                people[0],
                cc=people[1:],
                step=step,
            )
            self._count("onboarding_reminders_sent", stage=step.stage)
            self._publish()

    # --- risk and escalation --------------------------------------------------------------

    def _quiet_since(self) -> datetime:
        return self._last_engagement or self._started_at

    def _open_escalation(self) -> Escalation | None:
        latest = self._escalations[-1] if self._escalations else None
        return latest if latest and latest.acknowledged_at is None else None

    def _assess(self) -> RiskAssessment:
        now = workflow.now()
        self._missed |= {step.id for step in self._open_steps() if step.overdue(now)}
        change = self._champion_change
        recovered = (
            change is not None
            and self._champion_named_at is not None
            and self._last_engagement is not None
            and self._last_engagement > max(change.at, self._champion_named_at)
        )
        quiet_since = self._quiet_since()
        return assess(
            RiskFacts(
                now=now,
                last_engagement_at=quiet_since,
                missed_deadlines=len(self._missed),
                unanswered_reminders=sum(1 for t in self._champion_reminders if t > quiet_since),
                champion_change=None if recovered else change,
            ),
            self._playbook.risk,
        )

    async def _watch_risk(self) -> None:
        """Re-assess; record a change; raise, climb or re-arm the escalation ladder."""
        now = workflow.now()
        if self._ask_for_champion and (csm := self._csm_contact) is not None:
            self._ask_for_champion = False
            await self._mail(
                MailTemplate.NAME_CHAMPION, f"champion:ask:{self._champion_losses}", csm
            )
        risk = self._assess()
        changed_level = risk.level is not self._risk.level
        self._risk = risk  # reasons read fresh ("12 days"); the level is what gets recorded
        if changed_level:
            self._publish()
            await run_activity(
                RecordActivities.record_risk,
                RiskRecord(account_id=self._request.account_id, risk=risk, at=now),
                summary=f"risk is {risk.level}",
            )
        policy = self._playbook.escalation
        if (
            policy.switch_to_high_touch
            and risk.level is RiskLevel.HIGH
            and self._high_touch_since is None
            and self._request.touch_model in (TouchModel.LOW, TouchModel.TECH)
        ):
            await self._switch_to_high_touch()
        at_level = risk.level.rank >= RiskLevel(policy.at).rank
        if not at_level:
            self._escalation_armed = True
        elif self._escalation_armed and self._open_escalation() is None:
            self._escalation_armed = False
            self._escalations.append(
                Escalation(number=len(self._escalations) + 1, raised_at=now, reasons=risk.reasons)
            )
            self._count("onboarding_escalations_raised")
            workflow.logger.warning(
                "escalation #%d raised: %s",
                len(self._escalations),
                "; ".join(risk.reasons),
            )
            await self._notify_rung(self._escalations[-1])
        escalation = self._open_escalation()
        if (
            escalation is not None
            and escalation.next_level_at is not None
            and escalation.next_level_at <= now
        ):
            escalation.level += 1
            self._count("onboarding_escalations_climbed")
            await self._notify_rung(escalation)
        if self._unsaved_escalation and self._escalations:
            self._unsaved_escalation = False
            await self._save_escalation(self._escalations[-1])

    async def _switch_to_high_touch(self) -> None:
        """For the rest of the journey: a named CSM, copied on every reminder."""
        self._high_touch_since = workflow.now()
        await self._take_csm("high-touch:brief")

    async def _notify_rung(self, escalation: Escalation) -> None:
        ladder = self._playbook.escalation.ladder
        rung = ladder[escalation.level]
        if rung.role == "csm":
            person = self._csm_contact
        else:
            person = Contact(name=rung.name or rung.role, email=rung.email)  # type: ignore[arg-type]
        top = escalation.level + 1 >= len(ladder)
        escalation.next_level_at = None if top else workflow.now() + rung.ack_within
        escalation.notified.append(rung.role)
        self._publish()
        key = f"escalation:{escalation.number}:{rung.role}"
        if person is not None:
            await self._mail(MailTemplate.ESCALATION, key, person, escalation=escalation)
        if self._playbook.channels.chat:
            await run_activity(
                NotifyActivities.send_chat,
                ChatRequest(
                    key=f"{workflow.info().workflow_id}:{key}:chat",
                    account_id=self._request.account_id,
                    template=MailTemplate.ESCALATION,
                    context=MailContext(
                        account=self._request,
                        csm=self._csm,
                        risk=self._risk,
                        escalation=escalation,
                        now=workflow.now(),
                    ),
                ),
                summary=f"chat: escalation #{escalation.number} to {rung.role}",
            )
        await self._save_escalation(escalation)

    async def _save_escalation(self, escalation: Escalation) -> None:
        await run_activity(
            RecordActivities.record_escalation,
            EscalationRecord(account_id=self._request.account_id, escalation=escalation),
            summary=f"record escalation #{escalation.number}",
        )

    @workflow.signal
    async def engagement(self, signal: Engagement) -> None:
        at = signal.at or workflow.now()
        if self._last_engagement is None or at > self._last_engagement:
            self._last_engagement = at
        if signal.kind is EngagementKind.COURSE_COMPLETED and signal.value:
            if self._path.unknown(signal.value):
                workflow.logger.info("progress on %r: not on this path, ignored", signal.value)
            else:
                self._courses_done.setdefault(signal.value, at)
                self._publish()
        self._changes += 1
        await record_support_ticket(self._request.account_id, signal)

    @workflow.signal
    def users_added(self, signal: UsersAdded) -> None:
        """New users get academy access: now if the academy is open, else at kickoff."""
        known = {*self._academy_users, *(str(u.email).lower() for u in self._users_waiting)}
        for user in signal.users:
            if str(user.email).lower() not in known:
                self._users_waiting.append(user)
                known.add(str(user.email).lower())
        self._changes += 1

    def _waiting_for_courses(self) -> list[str]:
        """Courses the playbook wants finished before Review that are not finished yet."""
        gate = self._playbook.learning.review_gate
        if not (self._academy and gate):
            return []  # the common case, checked on every wake of the wait loop
        return [
            course.id for course in self._learning() if course.id in gate and course.done_at is None
        ]

    def _learning(self) -> list[CourseStatus]:
        return self._path.progress(self._academy_opened_at, self._courses_done, workflow.now())

    async def _grant_academy_access(self) -> None:
        """Every user waiting gets access (recorded once per user) and an invitation with
        the courses of the account's path."""
        if self._academy_opened_at is None:
            return
        courses = [course.id for course in self._path.courses]
        while self._users_waiting:
            user = self._users_waiting.pop(0)
            email = str(user.email).lower()
            await run_activity(
                RecordActivities.grant_academy_access,
                AcademyAccess(
                    account_id=self._request.account_id,
                    user=user,
                    courses=courses,
                    at=workflow.now(),
                ),
                summary="grant academy access",
            )
            self._academy_users.append(email)
            await self._mail(
                MailTemplate.ACADEMY_INVITE,
                f"academy:{email}",
                user,
                courses=self._path.level("onboarding"),
            )
        self._publish()

    @workflow.update
    async def reassign_csm(self, update: ReassignCsm) -> CsmRef:
        """Hand the account to another CSM: reminders, escalations and open tasks follow."""
        self._reassigning = True
        before = self._csm
        number = self._reassignments + 1
        try:
            after = await run_activity(
                AssignActivities.reassign_csm,
                ReassignRequest(
                    account_id=self._request.account_id,
                    number=number,
                    to=update.to,
                    touch_model=self._touch_model,
                    reason=update.reason,
                    by=update.by,
                    at=workflow.now(),
                    over_capacity=update.over_capacity,
                ),
                summary=f"reassign to {update.to}",
            )
        except ActivityError as error:
            # The roster refused (unknown, inactive, at capacity): nothing changed.
            cause = error.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(error)
            raise ApplicationError(message, type="ReassignRefused", non_retryable=True) from None
        finally:
            self._reassigning = False
        self._reassignments = number
        self._csm = after
        self._changes += 1
        self._publish()
        open_tasks = [_task_due(step) for step in self._open_steps()]
        people = [(after, "to")] + ([(before, "from")] if before and not before.pooled else [])
        for csm, side in people:
            await self._mail(
                MailTemplate.REASSIGNED,
                f"reassign:{number}:{side}",
                Contact(name=csm.name, email=csm.email),
                tasks=open_tasks,
                escalation=self._open_escalation(),
                previous_csm=before,
                note=update.reason,
            )
        return after

    @reassign_csm.validator
    def _validate_reassign(self, update: ReassignCsm) -> None:
        self._check_running()
        if self._csm is None:
            raise ValueError(
                f"{self._request.account_id} has no CSM yet; one is assigned at handoff"
            )
        if update.to == self._csm.id:
            raise ValueError(f"{self._request.account_id} is already with {update.to}")
        if self._reassigning:
            raise ValueError("another reassignment of this account is under way")

    @workflow.signal
    def champion_changed(self, signal: ChampionChanged) -> None:
        now = workflow.now()
        self._champion_losses += 1
        self._champion_change = ChampionChange(
            reason=signal.reason, new_champion=signal.new_champion, at=signal.at or now
        )
        if signal.new_champion is not None:
            self._champion_contact = signal.new_champion
            self._champion_named_at = now
        else:
            self._champion_named_at = None
            self._ask_for_champion = True
        self._changes += 1

    @workflow.update
    def set_champion(self, update: SetChampion) -> OnboardingStatus:
        self._champion_contact = update.champion
        self._champion_named_at = workflow.now()
        self._changes += 1
        self._publish()
        return self.status()

    @set_champion.validator
    def _validate_set_champion(self, update: SetChampion) -> None:
        self._check_running()

    @workflow.update
    def acknowledge_escalation(self, update: Acknowledge) -> Escalation:
        escalation = self._open_escalation()
        assert escalation is not None
        escalation.acknowledged_at = workflow.now()
        escalation.acknowledged_by = update.by
        escalation.note = update.note
        escalation.next_level_at = None
        self._unsaved_escalation = True
        self._changes += 1
        self._publish()
        return escalation

    @acknowledge_escalation.validator
    def _validate_acknowledge(self, update: Acknowledge) -> None:
        self._check_running()
        if self._open_escalation() is None:
            raise ValueError(f"{self._request.account_id} has no open escalation")

    def _person(self, role: str) -> Contact | None:
        if role == "champion":
            return self._champion
        if role == "csm":
            return self._csm_contact
        ae = self._request.account_executive
        return Contact(name=ae.name, email=ae.email)

    def _start_stage_clock(self) -> None:
        """Give the entered stage its deadline and activate its tasks' due dates."""
        if not self._deadlines:
            return
        entered = self._history[-1].entered_at
        self._stage_clock = None
        if self._stage in STAGE_OWNER and not self._playbook.stage(self._stage).automated:
            self._stage_clock = TaskStatus(
                id="stage",
                title=f"finish {self._stage}",
                owner=STAGE_OWNER[self._stage],
                stage=self._stage,
                required=True,
                due_at=entered + self._playbook.stage(self._stage).deadline,
                active_from=entered,
            )
        if self._stage in PLANNED_STAGES:
            for plan in self._playbook.stage(self._stage).tasks:
                task = self._tasks.get(plan.id)
                if task is not None and task.done_at is None:
                    # A task counts from the day its stage really starts.
                    task.due_at = entered + plan.due + task.extended_by
                    task.active_from = entered
                    self._unsaved_tasks.add(task.id)

    async def _save_tasks(self) -> None:
        if not self._unsaved_tasks:
            return
        tasks = [self._tasks[task_id] for task_id in sorted(self._unsaved_tasks)]
        self._unsaved_tasks.clear()
        await run_activity(
            RecordActivities.create_checklist,
            Checklist(
                account_id=self._request.account_id,
                stage=self._stage,
                tasks=[_task_due(task) for task in tasks],
            ),
            summary=f"update {len(tasks)} checklist task(s)",
        )

    # --- the stages' entry actions -------------------------------------------------------

    async def _depart(self) -> None:
        await self._mail(MailTemplate.WHAT_TO_EXPECT, "depart:what-to-expect", self._champion)

    async def _handoff(self) -> None:
        await self._take_csm("handoff:brief")

    async def _take_csm(self, brief_key: str) -> None:
        """Assign a CSM for the touch model in force, record them with the AE's notes, and
        brief them (at handoff, and again when the account switches to high-touch)."""
        before = self._csm
        self._csm = await run_activity(
            AssignActivities.assign_csm,
            CsmRequest(
                account_id=self._request.account_id,
                touch_model=self._touch_model,
                industry=self._request.industry,
            ),
            summary=f"assign a CSM ({self._touch_model}-touch)",
        )
        self._publish()
        if before is None or before.id != self._csm.id:
            await run_activity(
                RecordActivities.record_handoff,
                HandoffRecord(
                    account_id=self._request.account_id,
                    csm_id=None if self._csm.pooled else self._csm.id,
                    notes=self._request.goals,
                ),
                summary="record the CSM and the AE's handoff notes",
            )
        if before is not None and before.id == self._csm.id and self._csm.pooled:
            return  # still queued: the CS lead was told when it was queued
        assert self._csm_contact is not None
        await self._mail(MailTemplate.HANDOFF_BRIEF, brief_key, self._csm_contact)
        if self._academy and self._csm.pooled and self._playbook.channels.chat:
            await run_activity(
                NotifyActivities.send_chat,
                ChatRequest(
                    key=f"{workflow.info().workflow_id}:{brief_key}:queued:chat",
                    account_id=self._request.account_id,
                    template=MailTemplate.HANDOFF_BRIEF,
                    context=MailContext(account=self._request, csm=self._csm),
                ),
                summary="chat: queued, no CSM has capacity",
            )

    async def _kickoff(self) -> None:
        checklist = self._checklist()
        if self._deadlines:
            entered = self._history[-1].entered_at
            for task in checklist:
                self._tasks[task.id] = TaskStatus(
                    id=task.id,
                    title=task.title,
                    owner=task.owner,
                    stage=task.stage,
                    required=task.required,
                    due_at=task.due_at,
                    active_from=entered if task.stage is Stage.KICKOFF else None,
                )
        await run_activity(
            RecordActivities.create_checklist,
            Checklist(account_id=self._request.account_id, stage=Stage.KICKOFF, tasks=checklist),
            summary=f"create the customer's checklist ({len(checklist)} tasks)",
        )
        if self._academy:
            self._academy_opened_at = workflow.now()
            await self._grant_academy_access()
            # Access given: the checklist's "give every new user access" step is done.
            access = self._tasks.get("academy-access")
            if access is not None and access.done_at is None:
                self._finish_task(access, by="academy")
        await self._mail(MailTemplate.WELCOME, "kickoff:welcome", self._champion, tasks=checklist)

    async def _adopt(self) -> None:
        # The customer does the work; reminders and risk watching arrive with the next
        # version of this workflow.
        pass

    async def _review(self) -> None:
        assert self._csm_contact is not None
        await self._mail(MailTemplate.REVIEW_CHECKLIST, "review:checklist", self._csm_contact)

    async def _expand(self) -> None:
        await self._mail(MailTemplate.EXPAND, "expand:next-steps", self._champion)
        child_id = everboarding_id(self._request.account_id)
        plan = self._playbook.everboarding
        try:
            await workflow.start_child_workflow(
                EverboardingWorkflow.run,
                EverboardingInput(
                    request=self._request,
                    csm=self._csm,
                    cadence=plan.cadence,
                    path=self._path,
                    state=EverboardingState(courses_done=self._courses_done),
                    checkin_every=(
                        plan.checkin_every if self._touch_model is TouchModel.HIGH else None
                    ),
                    suggest=plan.suggest,
                ),
                id=child_id,
                # `starter.py announce` finds everboardings by plan.
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(SA_PLAN, self._request.plan.value)]
                )
                if self._indexed
                else None,
                # Everboarding outlives the onboarding: it runs as long as the customer stays.
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"Everboarding for {self._request.account_id}",
            )
        except WorkflowAlreadyStartedError:
            # A returning customer whose everboarding never stopped: keep that one.
            workflow.logger.info("everboarding %s already running; keeping it", child_id)
        self._everboarding_id = child_id

    # --- moving through the journey ------------------------------------------------------

    async def _advance(self) -> None:
        # State changes before any await, so a query right after the milestone sees the new
        # stage even while the bookkeeping activities run.
        now = workflow.now()
        previous = self._stage
        self._history[-1].exited_at = now
        self._stage = previous.next
        self._history.append(StageVisit(stage=self._stage, entered_at=now))
        self._start_stage_clock()
        self._publish()
        workflow.logger.info("stage %s -> %s", previous, self._stage)
        await self._record_stage(previous=previous)

    async def _let_go(self) -> None:
        """The customer cancelled: no more timers, a thank-you with the exit survey, no
        everboarding."""
        assert self._cancellation is not None
        now = workflow.now()
        previous = self._stage
        self._history[-1].exited_at = now
        self._stage = Stage.CANCELLED
        self._history.append(StageVisit(stage=Stage.CANCELLED, entered_at=now))
        self._stage_clock = None
        self._publish()
        await self._mail(MailTemplate.FAREWELL, "cancelled:farewell", self._champion)
        await self._record_stage(previous=previous)

    def _publish(self) -> None:
        """Keep what ops see without a worker current: the memo (read by `starter.py list`
        from visibility) and the run's details in the Web UI. No PII in either."""
        deadline = self._next_deadline()
        workflow.upsert_memo(
            {
                MEMO_STAGE: self._stage.value,
                MEMO_CSM: self._csm.id if self._csm else None,
                MEMO_NEXT_DEADLINE: deadline.isoformat() if deadline else None,
                MEMO_OVERDUE: bool(self._deadlines and self._overdue()),
                MEMO_RISK: self._risk.level.value,
                MEMO_ESCALATED: self._open_escalation() is not None,
            }
        )
        if self._indexed:
            workflow.upsert_search_attributes(
                [
                    SA_STAGE.value_set(self._stage.value),
                    SA_TOUCH_MODEL.value_set(self._touch_model.value),
                    SA_RISK.value_set(self._risk.level.value),
                    SA_OVERDUE.value_set(bool(self._deadlines and self._overdue())),
                    SA_ESCALATED.value_set(self._open_escalation() is not None),
                    SA_CSM.value_set(self._csm.id) if self._csm else SA_CSM.value_unset(),
                    SA_NEXT_DEADLINE.value_set(deadline)
                    if deadline
                    else SA_NEXT_DEADLINE.value_unset(),
                ]
            )
        lines = [
            f"**Stage:** {self._stage}",
            f"**Next deadline:** {f'{deadline:%Y-%m-%d %H:%M} UTC' if deadline else '-'}",
            f"**CSM:** {self._csm.id if self._csm else 'not assigned yet'}",
            f"**Overdue:** {(', '.join(self._overdue()) or 'nothing') if self._deadlines else '-'}",
            f"**Clock:** {'paused' if self._paused_at else 'running'}",
            f"**Risk:** {self._risk.level} {'; '.join(self._risk.reasons)}",
            f"**Academy:** {self._academy_summary()}",
            "",
            *(f"- {'✅' if m in self._milestones else '⬜'} {m}" for m in Milestone),
        ]
        workflow.set_current_details("  \n".join(lines))

    def _academy_summary(self) -> str:
        courses = self._learning()
        done = sum(1 for course in courses if course.done_at is not None)
        waiting = self._waiting_for_courses()
        users = len(self._academy_users)
        return f"{done}/{len(courses)} courses done, {users} user{'' if users == 1 else 's'}" + (
            f"; Review waits for {', '.join(waiting)}" if waiting else ""
        )

    async def _record_stage(self, previous: Stage | None) -> None:
        def at(milestone: Milestone) -> datetime | None:
            return self._milestones[milestone].at if self._applied(milestone) else None

        # Overdue beyond what the playbook allows: the stage's deadline as planned (moved by
        # pauses, not by extensions) plus the most an extension may add.
        entered, clock = self._history[-1].entered_at, self._stage_clock
        if clock is not None:
            lapses_at: datetime | None = clock.due_at - clock.extended_by
        elif self._stage in STAGE_MILESTONE:
            lapses_at = entered + self._playbook.stage(self._stage).deadline
        else:
            lapses_at = None
        if lapses_at is not None:
            lapses_at += self._playbook.max_extension

        await run_activity(
            RecordActivities.record_stage,
            StageChange(
                account_id=self._request.account_id,
                stage=self._stage,
                previous=previous,
                at=entered,
                contract_signed_at=at(Milestone.CONTRACT_SIGNED),
                kickoff_at=at(Milestone.KICKOFF_HELD),
                first_value_at=at(Milestone.INTEGRATION_DONE),
                cancellation=self._cancellation,
                lapses_at=lapses_at,
            ),
            summary=f"record stage {self._stage}",
        )

    async def _save_lapse(self) -> None:
        """After a pause the stage lapses later: bring the onboarding row up to date."""
        if self._lapse_moved:
            self._lapse_moved = False
            if workflow.patched(SCORECARD_PATCH):
                await self._record_stage(previous=None)

    def _checklist(self) -> list[TaskDue]:
        """Every task from kickoff on, dated on the planned timeline: each stage starts when
        the previous one's deadline ends, so the customer sees a date on every step."""
        tasks = []
        stage_start = self._history[-1].entered_at
        for stage in PLANNED_STAGES:
            plan = self._playbook.stage(stage)
            tasks += [
                TaskDue(
                    stage=stage,
                    id=task.id,
                    title=task.title,
                    owner=task.owner,
                    required=task.required,
                    due_at=stage_start + task.due,
                )
                for task in plan.tasks
            ]
            stage_start += plan.deadline
        return tasks

    async def _mail(
        self,
        template: MailTemplate,
        key: str,
        to: Contact,
        tasks: list[TaskDue] | None = None,
        cc: list[Contact] | None = None,
        step: TaskStatus | None = None,
        escalation: Escalation | None = None,
        courses: list[CoursePlan] | None = None,
        previous_csm: CsmRef | None = None,
        note: str | None = None,
    ) -> None:
        await run_activity(
            NotifyActivities.send_email,
            EmailRequest(
                key=f"{workflow.info().workflow_id}:{key}",
                account_id=self._request.account_id,
                template=template,
                to=to,
                cc=cc or [],
                context=MailContext(
                    account=self._request,
                    csm=self._csm,
                    due_at=self._next_deadline(),
                    tasks=tasks or [],
                    step=_task_due(step) if step else None,
                    now=workflow.now(),
                    cancellation=self._cancellation,
                    risk=self._risk,
                    escalation=escalation,
                    path=self._path,
                    courses=courses or [],
                    previous_csm=previous_csm,
                    note=note,
                ),
            ),
            summary=f"mail: {template}",
        )

    @property
    def _csm_contact(self) -> Contact | None:
        return Contact(name=self._csm.name, email=self._csm.email) if self._csm else None

    @property
    def _touch_model(self) -> TouchModel:
        return TouchModel.HIGH if self._high_touch_since else self._request.touch_model

    @property
    def _champion(self) -> Contact:
        return self._champion_contact

    # --- milestones ----------------------------------------------------------------------

    def _record(
        self, milestone: Milestone, by: str, at: datetime | None = None, note: str | None = None
    ) -> MilestoneRecord | None:
        """Keep a milestone fact once; the stage loop applies it when its stage is reached."""
        if milestone in self._milestones:
            workflow.logger.info("duplicate %s from %s ignored", milestone, by)
            return None
        now = workflow.now()
        record = MilestoneRecord(at=at or now, by=by, note=note, recorded_at=now)
        self._milestones[milestone] = record
        self._publish()
        return record

    @workflow.signal
    def contract_signed(self, signal: MilestoneSignal) -> None:
        self._record(Milestone.CONTRACT_SIGNED, signal.by, signal.at, signal.note)

    @workflow.signal
    def kickoff_held(self, signal: MilestoneSignal) -> None:
        self._record(Milestone.KICKOFF_HELD, signal.by, signal.at, signal.note)

    @workflow.signal
    def integration_done(self, signal: MilestoneSignal) -> None:
        self._record(Milestone.INTEGRATION_DONE, signal.by, signal.at, signal.note)

    @workflow.signal
    def review_passed(self, signal: MilestoneSignal) -> None:
        self._record(Milestone.REVIEW_PASSED, signal.by, signal.at, signal.note)

    @workflow.update
    def complete_milestone(self, update: CompleteMilestone) -> MilestoneResult:
        record = self._record(update.milestone, update.by, update.at, update.note)
        assert record is not None  # the validator rejected duplicates
        return MilestoneResult(
            milestone=update.milestone, recorded_at=record.recorded_at, stage=self._stage
        )

    @complete_milestone.validator
    def _validate_milestone(self, update: CompleteMilestone) -> None:
        account, stage = self._request.account_id, self._stage
        if stage is Stage.COMPLETED:
            raise ValueError(f"the onboarding of {account} is already completed")
        if (done := self._milestones.get(update.milestone)) is not None:
            raise ValueError(
                f"{update.milestone} was already recorded for {account} "
                f"at {done.at:%Y-%m-%d %H:%M} UTC by {done.by}"
            )
        missing = [m for m in update.milestone.prerequisites if m not in self._milestones]
        if missing:
            raise ValueError(
                f"{account} is in stage {stage}; {update.milestone} needs "
                f"{', '.join(missing)} first"
            )
        if update.at is not None and update.at > workflow.now() + timedelta(minutes=5):
            raise ValueError(f"at {update.at.isoformat()} is in the future")

    # --- checklist tasks, deadlines, pause, cancel ---------------------------------------

    def _check_task(self, task_id: str) -> TaskStatus:
        task = self._tasks.get(task_id)
        if task is None:
            known = ", ".join(self._tasks) or "none yet (the checklist is made at kickoff)"
            raise ValueError(
                f"unknown task {task_id!r} for {self._request.account_id}; tasks: {known}"
            )
        return task

    def _finish_task(self, task: TaskStatus, by: str, at: datetime | None = None) -> None:
        task.done_at = at or workflow.now()
        task.done_by = by
        self._unsaved_tasks.add(task.id)
        self._changes += 1
        plan = self._playbook.stage(task.stage)
        milestone = STAGE_MILESTONE.get(task.stage)
        required = [t for t in self._tasks.values() if t.stage is task.stage and t.required]
        if (
            plan.tasks_complete_stage
            and milestone is not None
            and all(t.done_at is not None for t in required)
            and milestone not in self._milestones
            and all(m in self._milestones for m in milestone.prerequisites)
        ):
            self._record(milestone, by="checklist", note=f"all required {task.stage} tasks done")
        self._publish()

    @workflow.signal
    def task_done(self, signal: TaskSignal) -> None:
        task = self._tasks.get(signal.task_id)
        if task is None or task.done_at is not None:
            workflow.logger.info("task_done for %s ignored (unknown or done)", signal.task_id)
            return
        self._finish_task(task, signal.by, signal.at)

    @workflow.update
    def complete_task(self, update: CompleteTask) -> TaskStatus:
        task = self._tasks[update.task_id]
        self._finish_task(task, update.by)
        return task

    @complete_task.validator
    def _validate_complete_task(self, update: CompleteTask) -> None:
        self._check_running()
        task = self._check_task(update.task_id)
        if task.done_at is not None:
            raise ValueError(
                f"task {task.id} was already done at {task.done_at:%Y-%m-%d %H:%M} UTC "
                f"by {task.done_by}"
            )

    def _extension_target(self, update: ExtendDeadline) -> TaskStatus:
        if update.task_id is None:
            if self._stage_clock is None:
                raise ValueError(f"stage {self._stage} has no deadline to move")
            return self._stage_clock
        return self._check_task(update.task_id)

    def _new_due(self, step: TaskStatus, update: ExtendDeadline) -> datetime:
        return update.due_at if update.due_at is not None else step.due_at + update.extend_by  # type: ignore[operator]

    @workflow.update
    def extend_deadline(self, update: ExtendDeadline) -> TaskStatus:
        step = self._extension_target(update)
        new_due = self._new_due(step, update)
        step.extended_by += new_due - step.due_at
        step.due_at = new_due
        if step is not self._stage_clock:
            self._unsaved_tasks.add(step.id)
        self._changes += 1
        self._publish()
        return step

    @extend_deadline.validator
    def _validate_extend_deadline(self, update: ExtendDeadline) -> None:
        self._check_running()
        step = self._extension_target(update)
        if step.done_at is not None:
            raise ValueError(f"task {step.id} is already done")
        new_due = self._new_due(step, update)
        if new_due <= workflow.now():
            raise ValueError(f"{new_due:%Y-%m-%d %H:%M} UTC is in the past")
        if new_due <= step.due_at:
            raise ValueError(
                f"{new_due:%Y-%m-%d %H:%M} UTC is not later than the current deadline "
                f"{step.due_at:%Y-%m-%d %H:%M} UTC"
            )
        allowed = self._playbook.max_extension - step.extended_by
        if new_due - step.due_at > allowed:
            raise ValueError(
                f"the playbook allows moving this deadline by {self._playbook.max_extension} "
                f"in total; {allowed} is left"
            )

    @workflow.update
    def pause(self, update: PauseClock) -> OnboardingStatus:
        self._paused_at = workflow.now()
        self._changes += 1
        self._publish()
        workflow.logger.info("clock paused by %s: %s", update.by, update.reason)
        return self.status()

    @pause.validator
    def _validate_pause(self, update: PauseClock) -> None:
        self._check_running()
        if self._paused_at is not None:
            raise ValueError(
                f"the clock is already paused since {self._paused_at:%Y-%m-%d %H:%M} UTC"
            )

    @workflow.update
    def resume(self, update: ResumeClock) -> OnboardingStatus:
        assert self._paused_at is not None
        paused_for = workflow.now() - self._paused_at
        for step in [self._stage_clock, *self._tasks.values()]:
            if step is not None and step.done_at is None:
                shift(step, paused_for)
                if step is self._stage_clock:
                    self._lapse_moved = True
                else:
                    self._unsaved_tasks.add(step.id)
        self._paused_at = None
        self._changes += 1
        self._publish()
        return self.status()

    @resume.validator
    def _validate_resume(self, update: ResumeClock) -> None:
        self._check_running()
        if self._paused_at is None:
            raise ValueError("the clock is not paused")

    @workflow.update
    def cancel(self, update: Cancel) -> OnboardingStatus:
        self._cancellation = Cancellation(
            **update.model_dump(), at=workflow.now(), stage=self._stage
        )
        self._changes += 1
        return self.status()

    @cancel.validator
    def _validate_cancel(self, update: Cancel) -> None:
        self._check_running()
        if self._stage is Stage.EXPAND:
            raise ValueError("the onboarding is finishing; end the everboarding instead")

    def _check_running(self) -> None:
        if not self._deadlines:
            raise ValueError("this onboarding started before deadlines existed")
        if self._stage.ended or self._cancellation is not None:
            raise ValueError(
                f"the onboarding of {self._request.account_id} has ended ({self._stage})"
            )

    # --- status --------------------------------------------------------------------------

    def _next_deadline(self) -> datetime | None:
        if self._stage.ended:
            return None
        if self._deadlines:
            return min((step.due_at for step in self._open_steps()), default=None)
        return self._history[-1].entered_at + self._playbook.stage(self._stage).deadline

    def _overdue(self) -> list[str]:
        now = workflow.now()
        return [step.id for step in self._open_steps() if step.overdue(now)]

    def _applied(self, milestone: Milestone) -> bool:
        """Recorded, and its stage is behind us."""
        return milestone in self._milestones and milestone.stage.position < self._stage.position

    @workflow.query
    def status(self) -> OnboardingStatus:
        return OnboardingStatus(
            account_id=self._request.account_id,
            account_name=self._request.account_name,
            plan=self._request.plan,
            touch_model=self._request.touch_model,
            playbook=self._playbook.name,
            stage=self._stage,
            stage_entered_at=self._history[-1].entered_at,
            next_deadline=self._next_deadline(),
            csm_id=self._csm.id if self._csm else None,
            milestones=self._milestones,
            pending_milestones=[
                m for m in self._milestones if m.stage.position > self._stage.position
            ],
            first_value_at=(
                self._milestones[Milestone.INTEGRATION_DONE].at
                if self._applied(Milestone.INTEGRATION_DONE)
                else None
            ),
            everboarding_workflow_id=self._everboarding_id,
            history=self._history,
            tasks=list(self._tasks.values()),
            overdue=self._overdue(),
            paused_since=self._paused_at,
            cancellation=self._cancellation,
            risk=self._risk,
            escalations=self._escalations,
            champion=self._champion_contact,
            last_engagement_at=self._last_engagement,
            high_touch_since=self._high_touch_since,
            csm_pooled=bool(self._csm and self._csm.pooled),
            learning=self._learning(),
            academy_users=self._academy_users,
            waiting_for_courses=self._waiting_for_courses(),
        )
