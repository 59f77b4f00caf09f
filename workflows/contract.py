"""Workflow code: decisions only, deterministic, no I/O.

The names other systems depend on are defined here, once.
"""

from typing import Any

from temporalio.common import SearchAttributeKey

TASK_QUEUE = "onboarding"

# Memo keys an onboarding keeps current, so listings need no worker (no PII here).
MEMO_STAGE = "stage"
MEMO_CSM = "csm_id"
MEMO_NEXT_DEADLINE = "next_deadline"
MEMO_OVERDUE = "overdue"
MEMO_RISK = "risk"
MEMO_ESCALATED = "escalated"


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


# Search attributes, for filtering in the Web UI and `starter.py list` (no PII in them).
SA_STAGE = SearchAttributeKey.for_keyword("OnboardingStage")
SA_TOUCH_MODEL = SearchAttributeKey.for_keyword("TouchModel")
SA_PLAN = SearchAttributeKey.for_keyword("Plan")
SA_RISK = SearchAttributeKey.for_keyword("RiskLevel")
SA_CSM = SearchAttributeKey.for_keyword("CsmId")
SA_NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
SA_OVERDUE = SearchAttributeKey.for_bool("Overdue")
SA_ESCALATED = SearchAttributeKey.for_bool("Escalated")
SEARCH_ATTRIBUTES: list[SearchAttributeKey[Any]] = [
    SA_STAGE,
    SA_TOUCH_MODEL,
    SA_PLAN,
    SA_RISK,
    SA_CSM,
    SA_NEXT_DEADLINE,
    SA_OVERDUE,
    SA_ESCALATED,
]
