"""The insights page: anonymised aggregates for partners and policy.

- ``/console/insights``: filters (from/to, week|month, break down by, state,
  township, language, channel), a chart per table drawn here as inline SVG
  (no JavaScript), each with its table view and a CSV download link;
- ``/console/insights/<measure>.csv``: that table as CSV (audited);
- ``/console/insights/print``: a one-page summary for a policy dialogue
  (print stylesheet).

Every figure comes from :mod:`lanpya.insights`, which suppresses small cells
in one place; this module only draws what it is given. Roles: insights,
supervisor, campaigner (and admin).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, render_template, request
from markupsafe import Markup, escape

from lanpya import audit, insights
from lanpya.insights import DIMENSIONS, FILTERS, MEASURES, InsightsError, Published
from lanpya.models import Staff
from webhook.auth import current_staff, login_required, nav_item
from webhook.ext import config, db

logger = logging.getLogger(__name__)

bp = Blueprint("insights", __name__, template_folder="templates")
ROLES = (Staff.INSIGHTS, Staff.SUPERVISOR, Staff.CAMPAIGNER)
nav_item("Insights", "insights.page", ROLES)

#: colour-blind-safe (Okabe–Ito, then Tol's muted)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#332288",
           "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499"]
HIDDEN_FILL = "#bbbbbb"
#: headline figures: (measure, column, label)
HEADLINES = [
    ("questions", "Total", "Questions asked"),
    ("reports", "Total", "Reports"),
    ("response", "Acknowledged by the deadline", "Acknowledged by the deadline"),
    ("reach", "Delivered", "Campaign messages delivered"),
    ("subscribers", "Joined", "New subscribers"),
]


@dataclass
class Chart:
    table: Published
    svg: Markup
    legend: list[tuple[str, str]]
    csv_url: str


def _args() -> dict[str, str]:
    return {k: request.args.get(k, "") for k in ("from", "to", "bucket", "by", *FILTERS)}


def _load(measures: list[str] | None = None):
    """(filters, by, tables) for this request; 400 with the reason on a bad filter."""
    args = _args()
    by = (args.get("by") or "period").strip().lower()
    if by not in DIMENSIONS:
        abort(Response(f"cannot break down by {by[:20]!r}", status=400, mimetype="text/plain"))
    try:
        filters = insights.filters_from(args, insights.yangon_today())
    except InsightsError as exc:
        return None, by, str(exc)
    k = config().insights_min_cell
    with db().session() as s:
        tables = [insights.table(s, m, filters, [by], k) for m in (measures or list(MEASURES))]
        headline = {m: insights.table(s, m, filters, [], k) for m, _, _ in HEADLINES}
        options = insights.filter_options(s, k)
    return filters, by, (tables, headline, options)


def _query(filters, by: str) -> str:
    q = {"from": filters.start.isoformat(), "to": filters.end.isoformat(), "bucket": filters.bucket, "by": by}
    q.update(filters.selected())
    return urlencode(q)


@bp.get("/console/insights")
@login_required(*ROLES)
def page():
    filters, by, loaded = _load()
    if filters is None:
        return render_template("insights.html", error=loaded, args=_args(), charts=[], headline=[],
                               options={}, dims=DIMENSIONS, query="", min_cell=config().insights_min_cell), 400
    tables, headline, options = loaded
    query = _query(filters, by)
    charts = [_chart(t, f"/console/insights/{t.measure}.csv?{query}") for t in tables]
    return render_template(
        "insights.html", error=None, args=_form_values(filters, by), charts=charts, options=options,
        headline=_headline(headline), dims=DIMENSIONS, query=query, filters=filters, by=by,
        min_cell=config().insights_min_cell,
    )


@bp.get("/console/insights/print")
@login_required(*ROLES)
def print_view():
    filters, by, loaded = _load()
    if filters is None:
        abort(Response(loaded, status=400, mimetype="text/plain"))
    tables, headline, _options = loaded
    charts = [_chart(_without_empty_columns(t), "", width=520, height=130) for t in tables]
    staff = current_staff()
    with db().session() as s:
        audit.record(s, "insights_print", "insights", None, staff_id=staff.id if staff else None,
                     detail={"by": by, "bucket": filters.bucket})
    return render_template("insights_print.html", charts=charts, headline=_headline(headline), filters=filters,
                           by=by, min_cell=config().insights_min_cell)


@bp.get("/console/insights/<measure>.csv")
@login_required(*ROLES)
def download(measure: str):
    if measure not in MEASURES:
        abort(404)
    filters, by, loaded = _load([measure])
    if filters is None:
        abort(Response(loaded, status=400, mimetype="text/plain"))
    table = loaded[0][0]
    staff = current_staff()
    with db().session() as s:
        audit.record(s, "insights_export", "insights", None, staff_id=staff.id if staff else None,
                     detail={"table": measure, "by": by, "bucket": filters.bucket})
    name = f"lanpya-{measure}-{by}-{filters.start.isoformat()}-{filters.end.isoformat()}.csv"
    return Response(table.csv(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _without_empty_columns(table: Published) -> Published:
    """The one-page summary drops columns that are 0 in every row (nothing hidden in them)."""
    keep = [j for j in range(len(table.columns)) if any(row[j] != 0 for row in table.cells)]
    if not table.cells or len(keep) == len(table.columns):
        return table
    return replace(table, columns=[table.columns[j] for j in keep],
                   cells=[[row[j] for j in keep] for row in table.cells])


def _form_values(filters, by: str) -> dict[str, str]:
    out = {"from": filters.start.isoformat(), "to": filters.end.isoformat(), "bucket": filters.bucket, "by": by}
    out.update({k: getattr(filters, k) or "" for k in FILTERS})
    return out


def _headline(headline: dict[str, Published]) -> list[tuple[str, object]]:
    out = []
    for measure, column, label in HEADLINES:
        t = headline[measure]
        out.append((label, t.value((), column) if t.rows else 0))
    return out


# --- charts ---------------------------------------------------------------------------------
def _chart(table: Published, csv_url: str, width: int = 760, height: int = 240) -> Chart:
    if table.kind == "partition":
        series = list(table.columns)
    else:  # metric tables: bars for the counts, the means stay in the table
        series = [c for c in table.columns if not c.startswith("Mean")]
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    svg = _bars(table, series, colours, width, height, stacked=table.kind == "partition")
    return Chart(table, svg, [(n, colours[n]) for n in series], csv_url)


def _num(v) -> float:
    return float(v) if isinstance(v, int | float) else 0.0


def _bars(table: Published, series: list[str], colours: dict[str, str], width: int, height: int,
          stacked: bool) -> Markup:
    left, right, top, bottom = 44, 8, 10, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    rows = table.rows
    idx = {c: table.columns.index(c) for c in series}
    chart_id = f"chart-{table.measure}"
    parts: list[str] = []
    if stacked:
        peaks = [_num(table.totals[i]) if table.totals else 0 for i in range(len(rows))]
    else:
        peaks = [max([_num(table.cells[i][idx[c]]) for c in series] or [0]) for i in range(len(rows))]
    top_value = _nice(max(peaks or [0]))
    scale = plot_h / top_value if top_value else 0
    # axis and grid
    for step in range(5):
        value = top_value * step / 4
        y = top + plot_h - value * scale
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e2e2"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#555">'
                     f'{_short(value)}</text>')
    n = max(1, len(rows))
    slot = plot_w / n
    bar_w = max(2.0, min(60.0, slot * 0.7))
    for i, labels in enumerate(rows):
        label = " · ".join(labels) or "all"
        x0 = left + i * slot + (slot - bar_w) / 2
        if stacked:
            y = top + plot_h
            shown_sum = 0.0
            for name in series:
                v = table.cells[i][idx[name]]
                if isinstance(v, int | float) and v > 0:
                    h = v * scale
                    y -= h
                    shown_sum += v
                    parts.append(f'<rect class="bar" data-series="{escape(name)}" x="{x0:.1f}" y="{y:.1f}" '
                                 f'width="{bar_w:.1f}" height="{h:.1f}" fill="{colours[name]}">'
                                 f'<title>{escape(label)} · {escape(name)}: {v}</title></rect>')
            total = table.totals[i] if table.totals else None
            rest = _num(total) - shown_sum
            if rest > 0:  # the hidden cells, as one grey block: their sum is the total minus the shown cells
                h = rest * scale
                y -= h
                parts.append(f'<rect class="bar hidden-cells" x="{x0:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                             f'height="{h:.1f}" fill="{HIDDEN_FILL}"><title>{escape(label)} · hidden small '
                             f'counts</title></rect>')
            if isinstance(total, str) and total:
                parts.append(f'<text x="{x0 + bar_w / 2:.1f}" y="{top + plot_h - 3:.1f}" text-anchor="middle" '
                             f'font-size="10" fill="#333">{escape(total)}</text>')
        else:
            sub = bar_w / max(1, len(series))
            for j, name in enumerate(series):
                v = table.cells[i][idx[name]]
                x = x0 + j * sub
                if isinstance(v, int | float) and v > 0:
                    h = v * scale
                    parts.append(f'<rect class="bar" data-series="{escape(name)}" x="{x:.1f}" '
                                 f'y="{top + plot_h - h:.1f}" width="{max(1.0, sub - 1):.1f}" height="{h:.1f}" '
                                 f'fill="{colours[name]}"><title>{escape(label)} · {escape(name)}: {v}</title></rect>')
        text = label if len(label) <= max(4, int(slot / 6)) else label[: max(3, int(slot / 6) - 1)] + "…"
        parts.append(f'<text x="{x0 + bar_w / 2:.1f}" y="{top + plot_h + 14:.1f}" text-anchor="middle" '
                     f'font-size="10" fill="#333">{escape(text)}</text>')
    if not rows:
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#555">'
                     f'No data for these filters</text>')
    desc = f"{table.title} by {', '.join(table.row_dims) or 'all'}; the table below has the figures."
    return Markup(  # noqa: S704 - every label above went through escape(); the rest are numbers and palette colours
        f'<svg class="chart" id="{chart_id}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-t">{escape(table.title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>'
        + "".join(parts) + "</svg>"
    )


def _nice(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000,
                 100000, 200000, 500000, 1000000, 2000000, 5000000, 10000000):
        if value <= step * 4:
            return float(step * 4)
    return float(value)


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"
