"""The scorecard as one self-contained HTML page: tables and plotly charts, plotly.js inlined
once, so the file opens offline and can be mailed around."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io
from jinja2 import Environment, FileSystemLoader, select_autoescape
from plotly.offline import get_plotlyjs

from reports.figures import FUNNEL, Scorecard

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html", "j2"]),
)


def render(card: Scorecard) -> str:
    return TEMPLATES.get_template("scorecard.html.j2").render(
        card=card, charts=_charts(card), plotly_js=get_plotlyjs()
    )


def _charts(card: Scorecard) -> dict[str, str]:
    funnel = card.overall.funnel
    stages = [str(stage) for stage in FUNNEL]
    reach = go.Figure(go.Funnel(y=stages, x=[funnel[s].reached for s in stages], cliponaxis=False))
    # Room on the right for the widest bar's count, which plotly puts outside a thin bar.
    reach.update_layout(title="Funnel: onboardings that reached each stage", margin={"r": 80})

    # The raw values go into the figures after plotly checked them empty: it checks and copies
    # every value, 1.9 s of the 2.0 s page for the 700,000 values of 100,000 onboardings.
    ttfv_days = card.distributions.time_to_first_value_days
    unit, per_day = unit_for(ttfv_days)
    spread = go.Figure(go.Histogram(x=[], nbinsx=20, name="onboardings"))
    spread.update_layout(
        title=f"Time to first value ({unit}, contract signed → integration done)",
        xaxis_title=unit,
        yaxis_title="onboardings",
    )
    figures = card.overall.time_to_first_value
    # The median's label to the left of its line, the p90's to the right: never on each other.
    for label, value, side in (
        ("median", figures.median_days, "top left"),
        ("p90", figures.p90_days, "top right"),
    ):
        if value is not None:
            at = value * per_day
            spread.add_vline(
                x=at,
                line_dash="dash",
                annotation_text=f"{label} {at:.1f}",
                annotation_position=side,
            )

    stages_days = {stage: days for stage, days in card.distributions.stage_days.items() if days}
    stage_unit, stage_per_day = unit_for(*stages_days.values())
    durations = go.Figure([go.Box(y=[], name=stage) for stage in stages_days])
    durations.update_layout(
        title=f"Time spent per stage ({stage_unit})", yaxis_title=stage_unit, showlegend=False
    )
    for figure in (spread, durations):  # 0.5 reads 0.5, not 500m; 0.0001 never 100μ
        figure.update_xaxes(exponentformat="none")
        figure.update_yaxes(exponentformat="none")
    return {
        "funnel": _html(reach.to_dict()),
        "ttfv": _html(_with(spread.to_dict(), "x", [_scaled(ttfv_days, per_day)])),
        "stages": _html(
            _with(
                durations.to_dict(),
                "y",
                [_scaled(days, stage_per_day) for days in stages_days.values()],
            )
        ),
    }


UNITS = (("days", 1.0), ("hours", 24.0), ("minutes", 24.0 * 60))


def unit_for(*series: list[float]) -> tuple[str, float]:
    """Days, or hours or minutes when the longest is under one (a demo's stages take minutes):
    the unit in which the longest reads at least 1, and how many of it make a day."""
    longest = max((max(values) for values in series if values), default=0.0)
    for unit, per_day in UNITS:
        if longest * per_day >= 1:
            return unit, per_day
    return UNITS[-1]


def _scaled(days: list[float], per_day: float) -> list[float]:
    return days if per_day == 1 else [d * per_day for d in days]


def _with(figure: dict[str, Any], axis: str, values: list[list[float]]) -> dict[str, Any]:
    for trace, trace_values in zip(figure["data"], values, strict=True):
        trace[axis] = trace_values
    return figure


def _html(figure: dict[str, Any]) -> str:
    return plotly.io.to_html(figure, full_html=False, include_plotlyjs=False, validate=False)
