"""The worker's own Prometheus counters, next to the SDK's (README: Metrics).

Counted from workflow code through the SDK's meter, which emits nothing while a workflow
replays: a worker restart never counts an onboarding twice. Attributes stay low-cardinality
(plan, touch model, stage; never an account).
"""

from __future__ import annotations

from temporalio import workflow

COUNTERS = {
    "onboarding_started": "Onboardings started (deal closed).",
    "onboarding_completed": "Onboardings that reached completion (everboarding started).",
    "onboarding_cancelled": "Onboardings cancelled: the customer let go, or ops cancelled the run.",
    "onboarding_lapsed": "Onboardings closed as lapsed: overdue past every allowance, silent.",
    "onboarding_reminders_sent": "Deadline and task reminders sent.",
    "onboarding_escalations_raised": "Escalations raised (the ladder's first rung told).",
    "onboarding_escalations_climbed": "Escalations not acknowledged in time, told the next rung.",
    "onboarding_incidents": "Messages that could not be sent for good (an incident each).",
    "everboarding_mail_failed": "Everboarding messages that could not be sent for good.",
    "everboarding_churned": "Customers who left (recorded by the everboarding).",
}


def count(name: str, **attributes: str) -> None:
    workflow.metric_meter().create_counter(name, COUNTERS[name]).add(1, attributes)
