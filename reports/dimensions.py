"""The scorecard's breakdowns, in a module of their own: `starter.py report --help` names
them without importing the scorecard (and SQLAlchemy with it)."""

DIMENSIONS = ("touch_model", "plan", "industry", "playbook")
