"""`status` (one account, from its workflow) and `list` (all, from visibility)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.app import app, connect, out, run, when
from cli.tables import Rows
from models.enums import Milestone, RiskLevel, Stage
from models.wording import duration

if TYPE_CHECKING:
    from service.views import StatusReport


@app.command()
def status(
    account: Annotated[str, typer.Argument(help="The account id (slug), e.g. acme.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Where an account's onboarding is: stage, dates, CSM, next deadline, history."""
    from service import onboardings

    async def go() -> None:
        report = await onboardings.status(await connect(), account)
        if as_json:
            out.print_json(report.model_dump_json())
            return
        _print_status(report)

    run(go())


def _print_status(report: StatusReport) -> None:
    out.print(
        f"[bold]{report.account_name}[/bold] ({report.account_id}) · {report.plan} plan · "
        f"{report.touch_model}-touch · playbook {report.playbook}"
        f"{f' ({report.playbook_version})' if report.playbook_version else ''} · workflow "
        f"{report.workflow_status}",
        highlight=False,
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_row("Stage", f"{report.stage} since {when(report.stage_entered_at)}")
    facts.add_row("Next deadline", when(report.next_deadline))
    facts.add_row(
        "CSM",
        "[yellow]in the pooled queue (no CSM has capacity)[/yellow]"
        if report.csm_pooled
        else report.csm_id or "not assigned yet",
    )
    facts.add_row("First value", when(report.first_value_at))
    facts.add_row("Risk", f"{report.risk.level}" + "".join(f"; {r}" for r in report.risk.reasons))
    for e in report.escalations:
        state = (
            f"acknowledged by {e.acknowledged_by} {when(e.acknowledged_at)} {e.note or ''}"
            if e.acknowledged_at
            else "[red]open[/red]"
        )
        facts.add_row(
            f"Escalation #{e.number}",
            f"{when(e.raised_at)}, told {', '.join(e.notified)}: {state}",
        )
    if report.overdue:
        facts.add_row("Overdue", "[red]" + ", ".join(report.overdue) + "[/red]")
    for i in report.incidents:
        facts.add_row(
            f"Incident #{i.number}",
            f"[red]{when(i.at)}: the {i.template} message could not be sent ({i.error_type}): "
            f"{i.reason}[/red] (starter.py incident retry {report.account_id} --number {i.number})",
        )
    if report.paused_since:
        facts.add_row("Clock", f"paused since {when(report.paused_since)}")
    if report.cancellation:
        c = report.cancellation
        facts.add_row(
            "Cancelled", f"{when(c.at)} in {c.stage} by {c.by}: {c.reason} {c.note or ''}"
        )
    if report.pending_milestones:
        facts.add_row("Recorded early", ", ".join(report.pending_milestones))
    if report.everboarding_workflow_id:
        facts.add_row(
            "Everboarding", f"{report.everboarding_workflow_id} ({report.everboarding_status})"
        )
    out.print(facts, highlight=False)

    milestones = Rows(("milestone", "at", "by", "note"), {"milestone", "by"}, "Milestones")
    for milestone in Milestone:
        record = report.milestones.get(milestone)
        if record:
            milestones.add(milestone, when(record.at), record.by, record.note or "")
        else:
            milestones.add(milestone, "-", "", "")
    milestones.print(out)

    if report.tasks:
        tasks = Rows(
            ("task", "stage", "owner", "due", "done", "reminders"),
            {"task", "stage", "owner"},
            "Checklist",
        )
        for t in sorted(report.tasks, key=lambda t: t.due_at):
            done = f"{when(t.done_at)} by {t.done_by}" if t.done_at else "-"
            due = when(t.due_at) + (f" (+{duration(t.extended_by)})" if t.extended_by else "")
            tasks.add(t.id, t.stage, t.owner, due, done, str(t.reminders_sent))
        tasks.print(out)

    if report.learning:
        finished = sum(1 for c in report.learning if c.done_at)
        courses = Rows(
            ("course", "level", "module", "due", "done"),
            {"course", "level", "module"},
            f"Learning path ({finished}/{len(report.learning)} courses done; academy users: "
            f"{len(report.academy_users)})",
        )
        for course in report.learning:
            for n, module in enumerate(course.modules):
                due = when(module.due_at)
                courses.add(
                    course.id if n == 0 else "",
                    course.level if n == 0 else "",
                    module.id,
                    f"[red]{due} overdue[/red]" if module.overdue else due,
                    when(module.done_at),
                )
        courses.print(out)
    if report.waiting_for_courses:
        out.print(
            f"Review waits for these courses: {', '.join(report.waiting_for_courses)}",
            highlight=False,
        )

    history = Rows(("stage", "entered", "exited", "days"), {"stage"}, "Stage history")
    for visit in report.history:
        days = (
            f"{(visit.exited_at - visit.entered_at).total_seconds() / 86400:.1f}"
            if visit.exited_at
            else ""
        )
        history.add(visit.stage, when(visit.entered_at), when(visit.exited_at), days)
    history.print(out)


@app.command("list")
def list_onboardings(
    stage: Annotated[Stage | None, typer.Option(help="Only onboardings in this stage.")] = None,
    risk: Annotated[RiskLevel | None, typer.Option(help="Only at this risk level.")] = None,
    csm: Annotated[
        str | None, typer.Option(metavar="CSM", help="Only this CSM's onboardings.")
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only overdue ones.")] = False,
    escalated: Annotated[
        bool, typer.Option("--escalated", help="Only those with an open escalation.")
    ] = False,
    incidents: Annotated[
        bool, typer.Option("--incidents", help="Only those with an open incident.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """All onboardings, one line each, newest first (filters use search attributes)."""
    from service.onboardings import Filters, list_onboardings

    filters = Filters(stage, risk, csm, overdue, escalated, incidents)

    async def go() -> None:
        lines = await list_onboardings(await connect(), filters)
        if as_json:
            out.print_json(json.dumps([line.model_dump(mode="json") for line in lines]))
            return
        if not lines:
            out.print("no onboardings yet")
            return
        table = Rows(
            ("account", "stage", "risk", "csm", "next deadline", "started", "workflow"),
            {"account", "stage", "csm"},
        )
        for line in lines:
            table.add(
                line.account_id,
                line.stage,
                (line.risk or "-")
                + (" [red]escalated[/red]" if line.escalated else "")
                + (f" [red]{line.incidents} incident(s)[/red]" if line.incidents else ""),
                line.csm_id or "-",
                when(line.next_deadline),
                when(line.started_at),
                line.workflow_status,
            )
        table.print(out)

    run(go())
