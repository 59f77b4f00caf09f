"""The onboarding workflow (workflow.py) over its rules (core.py) and their components."""

from workflows.onboarding.workflow import OnboardingWorkflow

__all__ = ["OnboardingWorkflow"]
