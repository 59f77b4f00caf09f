"""`portal-link`: the link to an account's portal page, for a CSM to send; `--revoke` cuts
off every link sent before (a forwarded mail, a contact who left)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import app, db_session, error_line, out


@app.command("portal-link")
def portal_link(
    account: Annotated[str, typer.Argument(help="The account id (slug), e.g. acme.")],
    contact: Annotated[
        str | None,
        typer.Option(metavar="EMAIL", help="Whom the link is for (default: the champion)."),
    ] = None,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Links sent before no longer open.")
    ] = False,
) -> None:
    """Print a fresh link to the account's portal page (the welcome mail and every reminder
    carry one too); with --revoke, every earlier link stops opening first."""
    from datetime import UTC, datetime, timedelta

    from cli.journey import CURRENT_USER
    from infra.settings import load_settings
    from models.door import admit
    from models.journey import Contact
    from models.tables import Onboarding
    from portal import access, links

    settings = load_settings()
    secret = settings.portal_key()
    if secret is None:
        error_line(
            "no portal secret: set PORTAL_SECRET (or run `make run` once, which writes "
            f"{settings.portal_secret_file})"
        )
        raise typer.Exit(1)
    if contact is not None:
        from pydantic import ValidationError

        try:
            contact = admit(Contact, {"name": "contact", "email": contact}).email
        except ValidationError:
            raise typer.BadParameter(
                f"{contact!r} is not an email address", param_hint="--contact"
            ) from None
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # a link's time is in ms
    with db_session() as session:
        row = session.get(Onboarding, account)
        if row is None:
            error_line(f"no onboarding for account {account}")
            raise typer.Exit(1)
        email = contact or row.champion_email
        if revoke:
            access.revoke(session.get_bind(), account, now, CURRENT_USER)  # type: ignore[arg-type]
    token = links.issue(secret, account, email, now, timedelta(days=settings.portal_link_days))
    if revoke:
        out.print(f"revoked: every earlier link to the portal of {account} no longer opens")
    out.print(f"{settings.portal_url}/portal/{token}", highlight=False, soft_wrap=True)
