"""How much outside data the door lets in (models/door.py checks them; README *Bad input*).

One place for every bound, so the README, the CLI's messages and a future HTTP API agree.
"""

from __future__ import annotations

from datetime import timedelta

# Text. Names go into mail headers and subjects; notes and reasons into mail bodies and rows.
MAX_NAME = 200  # names, titles, industries, use cases, who did something, ids typed by hand
MAX_NOTE = 2_000  # notes and reasons
MAX_GOALS = 20  # the AE's handoff notes, one line each
MAX_GOAL = 200

# People: a deal's first users, or one `users add`.
MAX_USERS = 500

# Money: no real contract is worth more, in any currency (and floats stay exact up to here).
MAX_CONTRACT_VALUE = 1_000_000_000_000

# Time. An outside timestamp says when something already happened: not ahead of our clock
# by more than a sender's clock may drift, not older than any onboarding lasts.
CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(days=730)
# A playbook's durations (deadlines, reminders, cadences): longer makes no sense for an
# onboarding, and keeps every date a workflow computes far from datetime's limits.
MAX_DURATION = timedelta(days=730)

# Files.
MAX_DEAL_BYTES = 1024 * 1024  # one deal document (JSON)
MAX_CSV_BYTES = 16 * 1024 * 1024  # a bulk-start export
MAX_CSV_ROWS = 10_000
