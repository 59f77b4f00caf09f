"""The names other systems depend on, defined once: the task queue, workflow types and ids,
signal, update and query names, and the search attributes.

The CLI (and anything else that talks to the workflows) uses these names instead of
importing workflow code. Renaming any of them breaks running onboardings and their callers:
add, never rename.
"""

from typing import Any

from temporalio.common import SearchAttributeKey

TASK_QUEUE = "onboarding"

ONBOARDING_WORKFLOW = "OnboardingWorkflow"
EVERBOARDING_WORKFLOW = "EverboardingWorkflow"


def onboarding_id(account_id: str) -> str:
    return f"onboarding-{account_id}"


def everboarding_id(account_id: str) -> str:
    return f"everboarding-{account_id}"


def account_of(workflow_id: str | None) -> str | None:
    """The account an onboarding or everboarding id names (for logs), else None."""
    for prefix in ("onboarding-", "everboarding-"):
        if workflow_id and workflow_id.startswith(prefix):
            return workflow_id.removeprefix(prefix)
    return None


class Signals:
    """Fire and forget, from other systems; idempotent."""

    CONTRACT_SIGNED = "contract_signed"
    KICKOFF_HELD = "kickoff_held"
    INTEGRATION_DONE = "integration_done"
    REVIEW_PASSED = "review_passed"
    TASK_DONE = "task_done"
    ENGAGEMENT = "engagement"
    CHAMPION_CHANGED = "champion_changed"
    USERS_ADDED = "users_added"
    HELP_REQUESTED = "help_requested"  # the customer asks, from the portal
    # Everboarding
    ANNOUNCE_FEATURE = "announce_feature"
    CUSTOMER_CHURNED = "customer_churned"


class Updates:
    """A person's actions: validated, answered with the result or the reason for refusal."""

    COMPLETE_MILESTONE = "complete_milestone"
    COMPLETE_TASK = "complete_task"
    EXTEND_DEADLINE = "extend_deadline"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    SET_CHAMPION = "set_champion"
    ACKNOWLEDGE_ESCALATION = "acknowledge_escalation"
    REASSIGN_CSM = "reassign_csm"
    ADD_USERS = "add_users"
    RESOLVE_INCIDENT = "resolve_incident"
    ADOPT_PLAYBOOK = "adopt_playbook"  # starter.py migrate --apply


class Queries:
    STATUS = "status"
    PLAYBOOK_PREVIEW = "playbook_preview"  # starter.py migrate --preview


# Search attributes, for filtering in the Web UI and `starter.py list` (no PII in them).
SA_STAGE = SearchAttributeKey.for_keyword("OnboardingStage")
SA_TOUCH_MODEL = SearchAttributeKey.for_keyword("TouchModel")
SA_PLAN = SearchAttributeKey.for_keyword("Plan")
SA_RISK = SearchAttributeKey.for_keyword("RiskLevel")
SA_CSM = SearchAttributeKey.for_keyword("CsmId")
SA_NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
SA_OVERDUE = SearchAttributeKey.for_bool("Overdue")
SA_ESCALATED = SearchAttributeKey.for_bool("Escalated")
SA_INCIDENTS = SearchAttributeKey.for_int("OpenIncidents")
SA_PLAYBOOK_VERSION = SearchAttributeKey.for_keyword("PlaybookVersion")
SEARCH_ATTRIBUTES: list[SearchAttributeKey[Any]] = [
    SA_STAGE,
    SA_TOUCH_MODEL,
    SA_PLAN,
    SA_RISK,
    SA_CSM,
    SA_NEXT_DEADLINE,
    SA_OVERDUE,
    SA_ESCALATED,
    SA_INCIDENTS,
    SA_PLAYBOOK_VERSION,
]
