"""Workflow code: decisions only, deterministic, no I/O.

The names other systems depend on are defined here, once.
"""

TASK_QUEUE = "onboarding"


def onboarding_id(account_id: str) -> str:
    return f"onboarding-{account_id}"


def everboarding_id(account_id: str) -> str:
    return f"everboarding-{account_id}"
