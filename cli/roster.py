"""`csm …`: the CSM roster in the database (infra/roster.py does the work)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cli.app import app, db_session, out, split_list
from cli.help import App
from cli.tables import Rows

csm_app = App(
    help="The CSM roster: who takes onboardings, for which touch models, how many at once.",
    no_args_is_help=True,
)
app.add_typer(csm_app, name="csm")

# Options shared by `csm add` and `csm update`.
TOUCH_MODELS = Annotated[
    str | None,
    typer.Option(
        metavar="MODELS", help="Touch models served, comma-separated: high,low,tech,community."
    ),
]
INDUSTRIES = Annotated[
    str | None,
    typer.Option(metavar="NAMES", help="Industries preferred, comma-separated (optional)."),
]
CAPACITY = Annotated[int | None, typer.Option(metavar="N", help="Most active onboardings at once.")]
CHAT = Annotated[str | None, typer.Option(metavar="HANDLE", help="Chat handle, e.g. @mei.")]
CSM_ID = Annotated[str, typer.Argument(metavar="CSM", help="The CSM's id, e.g. csm-011.")]


@csm_app.command("add")
def csm_add(
    csm_id: CSM_ID,
    name: Annotated[str, typer.Option(help="Full name.")],
    email: Annotated[str, typer.Option(help="Work email.")],
    touch_models: TOUCH_MODELS = None,
    industries: INDUSTRIES = None,
    capacity: CAPACITY = None,
    chat: CHAT = None,
) -> None:
    """Add a CSM to the roster."""
    from pydantic import ValidationError

    from infra.roster import RosterEntry, add_csm, queued  # the database's libraries: here only
    from models.door import admit
    from models.playbook import format_validation_error

    if not split_list(touch_models):
        raise typer.BadParameter(
            "say which touch models they serve, e.g. --touch-models high,low",
            param_hint="--touch-models",
        )
    given = {
        "touch_models": split_list(touch_models),
        "industries": split_list(industries),
        "capacity": capacity,
        "chat": chat,
    }
    try:
        entry = admit(
            RosterEntry,
            {"id": csm_id, "name": name, "email": email}
            | {key: value for key, value in given.items() if value is not None},
        )
    except ValidationError as error:
        raise typer.BadParameter(format_validation_error(error)) from None
    with db_session() as session:
        add_csm(session, entry=entry)
        waiting = queued(session)
    out.print(f"added {entry.id} ({entry.name}), capacity {entry.capacity}")
    if waiting:
        out.print(
            f"{len(waiting)} onboarding(s) wait in the queue: "
            f"{', '.join(o.account_id for o in waiting)}; `starter.py reassign ACCOUNT --to "
            f"{entry.id} --reason ...` moves one"
        )


@csm_app.command("update")
def csm_update(
    csm_id: CSM_ID,
    name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    email: Annotated[str | None, typer.Option(help="Work email.")] = None,
    touch_models: TOUCH_MODELS = None,
    industries: INDUSTRIES = None,
    capacity: CAPACITY = None,
    chat: CHAT = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Take new onboardings or not.")
    ] = None,
) -> None:
    """Change a CSM's details; only the options given change."""
    from infra.roster import active_loads, update_csm

    changes = {
        "name": name,
        "email": email,
        "touch_models": split_list(touch_models),
        "industries": split_list(industries),
        "capacity": capacity,
        "chat": chat,
        "active": active,
    }
    changes = {key: value for key, value in changes.items() if value is not None}
    if not changes:
        raise typer.BadParameter("give at least one option to change (see --help)")
    with db_session() as session:
        row = update_csm(session, csm_id=csm_id, changes=changes)
        load = active_loads(session).get(csm_id, 0)
    out.print(f"updated {csm_id}: {', '.join(sorted(changes))}")
    if load > row.capacity:
        out.print(
            f"[yellow]note:[/yellow] {csm_id} has {load} active onboardings, above the new "
            f"capacity {row.capacity}; they get no new ones until below it"
        )


@csm_app.command("remove")
def csm_remove(csm_id: CSM_ID) -> None:
    """Take a CSM off the roster: no new onboardings (refused while they have active ones)."""
    from infra.roster import remove_csm

    with db_session() as session:
        out.print(remove_csm(session, csm_id=csm_id))


@csm_app.command("list")
def csm_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The roster with each CSM's load against capacity, and the queue."""
    from sqlmodel import select

    from cli.views import CsmLine
    from infra.roster import active_loads, queued
    from models.tables import Csm

    with db_session() as session:
        load = active_loads(session)
        lines = [
            CsmLine(**row.model_dump(), active_onboardings=load.get(row.id, 0))
            for row in session.exec(select(Csm).order_by(Csm.id)).all()
        ]
        waiting = [o.account_id for o in queued(session)]
    if as_json:
        out.print_json(
            json.dumps({"csms": [line.model_dump() for line in lines], "queue": waiting})
        )
        return
    table = Rows(("csm", "name", "touch models", "industries", "load", "active"), {"csm"})
    for line in lines:
        full = line.active_onboardings >= line.capacity
        table.add(
            line.id,
            line.name,
            ",".join(line.touch_models),
            ",".join(line.industries) or "-",
            ("[red]" if full else "")
            + f"{line.active_onboardings}/{line.capacity}"
            + (" full[/red]" if full else ""),
            "yes" if line.active else "no",
        )
    table.print(out)
    out.print(f"queue: {', '.join(waiting) if waiting else 'empty'}")
