"""The command line for the sales system, CSMs and CS leads. Talks to Temporal, and to the
database for the CSM roster (`csm ...`) and the scorecard (`report`). The commands live in
cli/, one module per group.

    starter.py start --from-file examples/deal-acme.json     (or --from-csv deals.csv)
    starter.py signal acme contract-signed --by ae-001
    starter.py status acme [--json]
    starter.py list [--json]
    starter.py csm list
    starter.py report [--from 2026-07-01] [--html report.html] [--json]
    starter.py announce --feature "Audit log" --plans premium,enterprise --summary "..."

Exit codes: 0 done, 1 refused or failed (the message says why), 2 wrong usage.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

# Each module registers its commands on the shared app when imported: this is --help's order.
# isort: off
from cli import start, journey, incidents, lookup, portal, report, roster  # noqa: F401
from cli import doctor, reconcile, migrate, replay  # noqa: F401

# isort: on
from cli.app import app, error_line
from infra.db import SchemaError


def main() -> NoReturn:
    try:
        app()
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except Exception as error:
        # Imported only now: the settings module costs pydantic-settings, which `--help` and
        # most usage errors never need (cli/app.py).
        from infra.settings import SettingsError

        if not isinstance(error, SettingsError | SchemaError):
            raise
        error_line(error)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # See worker.py: skip interpreter finalisation (temporalio/sdk-python#300).
    os._exit(status)


if __name__ == "__main__":
    main()
