"""`starter.py incident retry|dismiss ACCOUNT`: clear what an onboarding could not send (an
incident), once the data that broke it is fixed (README: On call)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from cli.app import admitted, app, out, run
from cli.journey import ACCOUNT, CURRENT_USER, YOU, _update
from workflows.contract import Updates


class IncidentAction(StrEnum):
    RETRY = "retry"
    DISMISS = "dismiss"


@app.command()
def incident(
    action: Annotated[IncidentAction, typer.Argument(help="retry (send again) or dismiss.")],
    account: ACCOUNT,
    number: Annotated[
        int | None,
        typer.Option(metavar="N", help="The incident's number (default: every open one)."),
    ] = None,
    note: Annotated[str | None, typer.Option(help="Why (for a dismissal).")] = None,
    by: Annotated[
        str, typer.Option(metavar="WHO", help=f"Who clears it ({YOU}).", show_default=False)
    ] = CURRENT_USER,
) -> None:
    """Send a message that failed again (after fixing the address or name it was built
    from), or dismiss it. `status ACCOUNT` lists the open incidents."""
    from models.journey import ResolveIncident
    from models.onboarding import OnboardingStatus

    resolve = admitted(
        ResolveIncident, number=number, retry=action is IncidentAction.RETRY, by=by, note=note
    )

    async def go() -> None:
        after = await _update(account, Updates.RESOLVE_INCIDENT, resolve, OnboardingStatus)
        what = f"incident #{number}" if number is not None else "every open incident"
        done = "sent again under a new key" if resolve.retry else "dismissed"
        left = len(after.incidents)
        out.print(f"accepted: {what} of {account} {done}; {left} still open")

    run(go())
