"""The one activity a workflow pass hands its side effects to: records first, then messages,
each idempotent on its own business key, so a retried batch repeats nothing."""

from __future__ import annotations

from temporalio import activity

from activities.notify import Notify, Outcome
from activities.records import Records
from models.activities import Effects, EffectsDone, MailFailure
from models.journey import Contact


class EffectActivities:
    def __init__(self, records: Records, notify: Notify, queue: Contact) -> None:
        self.records = records
        self.notify = notify
        self.queue = queue
        """The CS team's queue inbox: internal notices with nobody else to go to."""

    @activity.defn
    def carry_out(self, effects: Effects) -> EffectsDone:
        account, records = effects.account_id, self.records
        # A late attempt of an onboarding whose account has started again since (after a
        # terminated run) must not write into the new one's records nor mail its people.
        fresh = records.open(effects.opened) if effects.opened is not None else True
        if not fresh or (effects.run_id and not records.belongs_to(account, effects.run_id)):
            activity.logger.warning("%s: batch of an earlier onboarding; skipped", account)
            return EffectsDone(superseded=True)
        if effects.row is not None:
            records.row(account, effects.row)
        if effects.visits:
            records.visits(account, effects.visits)
        if effects.handoff is not None:
            records.handoff(effects.handoff)
        if effects.tasks:
            records.tasks(account, effects.tasks)
        if effects.removed_tasks:
            records.remove_tasks(account, effects.removed_tasks)
        for access in effects.grants:
            records.grant(access)
        for ticket in effects.tickets:
            records.ticket(ticket)
        if effects.risk is not None:
            records.risk(account, effects.risk, effects.at)
        for escalation in effects.escalations:
            records.escalation(account, escalation)
        if effects.churn is not None:
            records.churn(account, effects.churn)
        activity.heartbeat("recorded")
        done = EffectsDone()
        for mail in effects.mails:
            assert effects.context is not None, "a batch with mail carries their context"
            context = mail.context(effects.context)
            sent = self.notify.send_email(mail, context, account, mail.to or self.queue)
            chat = self.notify.send_chat(mail, context, account) if mail.chat else Outcome()
            for key, outcome in ((mail.key, sent), (f"{mail.key}:chat", chat)):
                if outcome.sent:
                    done.delivered.append(key)
                if outcome.failure is not None:
                    failure = outcome.failure
                    done.failed.append(
                        MailFailure(
                            key=key,
                            template=mail.template,
                            error_type=failure.error_type,
                            reason=failure.reason,
                        )
                    )
            activity.heartbeat(mail.key)
        return done
