"""Workflow code: decisions only, deterministic, no I/O.

The names other systems depend on are defined here, once.
"""

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
