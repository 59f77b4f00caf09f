"""Logging for the worker: plain lines for a terminal, one JSON object per line for a log
pipeline (LOG_FORMAT=json), each carrying the account and workflow it is about.

Workflow code logs through `workflow.logger` (silent while replaying) and activities through
`activity.logger`; the SDK puts the run's ids on the record, we lift them to top-level keys
and read the account from the workflow id (`onboarding-acme` → `acme`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

from workflows.contract import account_of

# Keys lifted from the SDK's `temporal_workflow` / `temporal_activity` record extras.
TEMPORAL_KEYS = ("workflow_id", "run_id", "workflow_type", "activity_type", "attempt")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for source in ("temporal_workflow", "temporal_activity"):
            details = getattr(record, source, None) or {}
            entry.update({k: details[k] for k in TEMPORAL_KEYS if k in details})
        if account := account_of(entry.get("workflow_id")):
            entry["account_id"] = account
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(format: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    if format == "json":
        handler.setFormatter(JsonFormatter())
        # The ids travel as keys; keep the message itself readable.
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
