"""Anonymised insights: aggregate counts for partners and policy.

Only aggregates leave the database: every figure is a ``GROUP BY`` count (or
a mean over a group) computed in SQL; no row, message text, case narrative or
contact attribute is ever read into Python here. Every output — the console
page, its CSV downloads, the printable summary and ``lanpya insights export``
— goes through :func:`publish`, the one place where small cells are
suppressed (see docs/insights.md for the rule and its limits).

Times are naive UTC in the database; periods (week starting Monday, or month)
and the from/to dates are in Asia/Yangon (UTC+06:30, no daylight saving).
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import click
from sqlalchemy import String, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from lanpya import clock
from lanpya.models import Case, Contact, Inbound, Outbox

logger = logging.getLogger(__name__)

#: Asia/Yangon is UTC+06:30 all year
YANGON_OFFSET = timedelta(hours=6, minutes=30)
BUCKETS = ("week", "month")
#: what a table's rows may be broken down by (besides the period)
DIMENSIONS = ("period", "state", "township", "language", "channel")
FILTERS = ("state", "township", "language", "channel")
#: shown instead of a suppressed count (primary: the count is 1..k-1)
SMALL = "<{k}"
#: shown instead of a count hidden so that a small cell cannot be worked out from a total
HIDDEN = "x"
UNKNOWN = "(not known)"

#: the assistant's intents → the topic people asked about (conversation intents
#: such as greet, thanks, affirm or choose_language are not questions)
TOPICS: dict[str, str] = {
    "migrate_legally": "Legal migration",
    "documents": "Documents and passports",
    "check_agency": "Checking an agency",
    "check_job_offer": "Checking a job offer",
    "fees_debt": "Fees and debt",
    "rights_at_work": "Rights at work",
    "marriage_broker": "Marriage brokers",
    "trafficking_signs": "Signs of trafficking",
    "trouble_abroad": "Trouble abroad",
    "find_mrc": "Migrant resource centres",
    "report_concern": "Reporting a concern",
    "emergency": "Emergency",
    "talk_to_person": "Asking for a person",
    "subscribe": "Subscribing to updates",
    "delete_data": "Deleting their data",
    "out_of_scope": "Other questions",
}
CATEGORY_NAMES = {
    "trafficking": "Trafficking",
    "forced_marriage": "Forced marriage",
    "missing_person": "Missing person",
    "labour_exploitation": "Labour exploitation",
    "other": "Other",
}
SEVERITY_NAMES = {"emergency": "Emergency", "urgent": "Urgent", "normal": "Normal"}
AUDIENCE_ROLES = {"planning": "Planning to migrate", "family": "Family", "returnee": "Returnee"}
#: a campaign recipient who opts out within this long after a send counts against it
OPT_OUT_WINDOW = timedelta(days=7)

#: measure → (title, kind, column names). "partition" tables: the columns split the
#: row (the row total is their sum); "metrics": each column is its own figure.
MEASURES: dict[str, tuple[str, str]] = {
    "questions": ("Questions asked, by topic", "partition"),
    "reports": ("Reports, by category", "partition"),
    "severity": ("Reports, by severity", "partition"),
    "response": ("Hotline response", "metrics"),
    "reach": ("Campaign reach", "metrics"),
    "subscribers": ("Subscribers, by audience", "metrics"),
}
#: the column dimension a CLI user names in --by for a partition measure
COLUMN_DIMS = {"topic": "questions", "category": "reports", "severity": "severity"}

RESPONSE_COLUMNS = [
    ("cases", "Cases"),
    ("acknowledged", "Acknowledged"),
    ("ack_in_time", "Acknowledged by the deadline"),
    ("ack_mean_min", "Mean minutes to acknowledge"),
    ("closed", "Closed"),
    ("close_mean_h", "Mean hours to close"),
]
REACH_COLUMNS = [
    ("messages", "Campaign messages"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("failed", "Failed"),
    ("opted_out", "Opted out within 7 days"),
]
SUBSCRIBER_COLUMNS = [
    ("joined", "Joined"),
    *[(role, label) for role, label in AUDIENCE_ROLES.items()],
    ("still_subscribed", "Still subscribed"),
    ("opted_out", "Opted out"),
]
#: a mean is shown only when the count it is taken over is shown: metric → its count
MEAN_OF = {"ack_mean_min": "acknowledged", "close_mean_h": "closed"}


class InsightsError(ValueError):
    """A filter or breakdown that cannot be answered; the message says why."""


@dataclass(frozen=True)
class Filters:
    """What to count: Yangon dates ``start``..``end`` (both included), the
    period size, and optional equality filters."""

    start: date
    end: date
    bucket: str = "month"
    state: str | None = None
    township: str | None = None
    language: str | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.bucket not in BUCKETS:
            raise InsightsError(f"bucket must be one of {', '.join(BUCKETS)}, not {self.bucket!r}")
        if self.end < self.start:
            raise InsightsError("the end date is before the start date")
        if (self.end - self.start).days > 3 * 366:
            raise InsightsError("choose at most three years")

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time()) - YANGON_OFFSET

    @property
    def end_utc(self) -> datetime:
        """Exclusive: the first moment after ``end`` in Yangon."""
        return datetime.combine(self.end + timedelta(days=1), datetime.min.time()) - YANGON_OFFSET

    def selected(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FILTERS if getattr(self, name)}

    def periods(self) -> list[str]:
        """Every period label from start to end, in order (empty periods show as 0)."""
        out: list[str] = []
        day = self.start
        while day <= self.end:
            label = period_label(day, self.bucket)
            if not out or out[-1] != label:
                out.append(label)
            day += timedelta(days=1)
        return out


def period_label(day: date, bucket: str) -> str:
    """Week: the Monday's date (2026-11-23); month: 2026-11."""
    if bucket == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    return f"{day.year:04d}-{day.month:02d}"


# --- raw aggregates (stay inside this module) ----------------------------------
@dataclass
class _Raw:
    """Counts straight from SQL; never leaves the module unpublished."""

    measure: str
    rows: list[str]
    columns: list[tuple[str, str]]  # (key, label)
    cells: dict[tuple, dict[str, float]] = field(default_factory=dict)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _period_expr(session: Session, column, bucket: str):
    if _dialect(session) == "postgresql":
        shifted = column + literal(YANGON_OFFSET)
        return func.to_char(func.date_trunc(bucket, shifted), "YYYY-MM-DD" if bucket == "week" else "YYYY-MM")
    if bucket == "week":  # Monday of the week: on to the next Sunday (or stay), back six days
        return func.date(column, "+390 minutes", "weekday 0", "-6 days")
    return func.strftime("%Y-%m", column, "+390 minutes")


def _seconds(session: Session, later, earlier):
    if _dialect(session) == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _dims(measure: str) -> dict[str, tuple[object, bool]]:
    """dimension → (column, needs the contact join)."""
    if measure == "questions":
        return {"period": (Inbound.received_at, False), "state": (Contact.state, True),
                "township": (Contact.township, True), "language": (Inbound.language, False),
                "channel": (Inbound.channel, False)}
    if measure in ("reports", "severity", "response"):
        return {"period": (Case.created_at, False), "state": (Contact.state, True),
                "township": (Case.township, False), "language": (Case.language, False),
                "channel": (Case.channel, False)}
    if measure == "reach":
        return {"period": (Outbox.created_at, False), "state": (Contact.state, True),
                "township": (Contact.township, True), "language": (Contact.language, True),
                "channel": (Outbox.channel, False)}
    # subscribers
    return {"period": (Contact.joined_at, False), "state": (Contact.state, False),
            "township": (Contact.township, False), "language": (Contact.language, False),
            "channel": (Contact.channel, False)}


def _grouped(session: Session, measure: str, filters: Filters, rows: list[str], metrics: list,
             base_from, contact_join, time_column, extra_where: list, group_extra: tuple = ()):
    """SELECT row dims, metrics FROM base WHERE time in range AND filters GROUP BY row dims."""
    dims = _dims(measure)
    dims["period"] = (time_column, False)
    need_contact = any(dims[d][1] for d in rows) or any(dims[f][1] for f in filters.selected())
    keys = []
    for name in rows:
        col = dims[name][0]
        keys.append((_period_expr(session, col, filters.bucket) if name == "period" else col).label(f"d_{name}"))
    stmt = select(*keys, *metrics).select_from(base_from)
    if need_contact and contact_join is not None:
        stmt = stmt.join(Contact, contact_join, isouter=True)
    where = [time_column >= filters.start_utc, time_column < filters.end_utc, *extra_where]
    for name, value in filters.selected().items():
        where.append(dims[name][0] == value)
    stmt = stmt.where(and_(*where))
    if keys or group_extra:
        stmt = stmt.group_by(*keys, *group_extra)
    return session.execute(stmt).all()


def _row_key(row, rows: list[str]) -> tuple:
    return tuple(UNKNOWN if row[i] is None or row[i] == "" else str(row[i]) for i in range(len(rows)))


def _raw(session: Session, measure: str, filters: Filters, rows: list[str]) -> _Raw:
    for name in rows:
        if name not in DIMENSIONS:
            raise InsightsError(f"cannot break down by {name!r}: choose from {', '.join(DIMENSIONS)}")
    if len(set(rows)) != len(rows):
        raise InsightsError("a breakdown is named twice")
    if measure not in MEASURES:
        raise InsightsError(f"unknown measure {measure!r}: choose from {', '.join(MEASURES)}")
    n = len(rows)

    if measure == "questions":
        raw = _Raw(measure, rows, list(dict.fromkeys((t, t) for t in TOPICS.values())))
        result = _grouped(session, measure, filters, rows, [Inbound.intent, func.count().label("n")],
                          Inbound, Inbound.contact_id == Contact.id, Inbound.received_at,
                          [Inbound.intent.in_(list(TOPICS))], (Inbound.intent,))
        # GROUP BY intent too: several intents may share a topic (summed here, before suppression)
        return _partition(raw, result, n, lambda intent: TOPICS[intent])
    if measure in ("reports", "severity"):
        column, names = (Case.category, CATEGORY_NAMES) if measure == "reports" else (Case.severity, SEVERITY_NAMES)
        raw = _Raw(measure, rows, [(v, v) for v in names.values()])
        result = _grouped(session, measure, filters, rows, [column, func.count().label("n")],
                          Case, Case.contact_id == Contact.id, Case.created_at, [], (column,))
        return _partition(raw, result, n, lambda value: names.get(value, names.get("other", "Other")))
    if measure == "response":
        ack_s = _seconds(session, Case.acknowledged_at, Case.created_at)
        close_s = _seconds(session, Case.closed_at, Case.created_at)
        metrics = [
            func.count().label("cases"),
            func.count(Case.acknowledged_at).label("acknowledged"),
            func.sum(case((and_(Case.acknowledged_at.is_not(None), Case.deadline_at.is_not(None),
                                Case.acknowledged_at <= Case.deadline_at), 1), else_=0)).label("ack_in_time"),
            func.avg(ack_s).label("ack_mean_s"),
            func.count(Case.closed_at).label("closed"),
            func.avg(close_s).label("close_mean_s"),
        ]
        result = _grouped(session, measure, filters, rows, metrics, Case, Case.contact_id == Contact.id,
                          Case.created_at, [])
        raw = _Raw(measure, rows, list(RESPONSE_COLUMNS))
        for row in result:
            key = _row_key(row, rows)
            vals = row[n:]
            raw.cells[key] = {
                "cases": vals[0], "acknowledged": vals[1], "ack_in_time": int(vals[2] or 0),
                "ack_mean_min": None if vals[3] is None else float(vals[3]) / 60,
                "closed": vals[4], "close_mean_h": None if vals[5] is None else float(vals[5]) / 3600,
            }
        return raw
    if measure == "reach":
        opted = and_(Contact.opted_out_at.is_not(None), Outbox.sent_at.is_not(None),
                     Contact.opted_out_at >= Outbox.sent_at,
                     _seconds(session, Contact.opted_out_at, Outbox.sent_at) <= OPT_OUT_WINDOW.total_seconds())
        metrics = [
            func.count().label("messages"),
            func.sum(case((Outbox.state.in_(["sent", "delivered", "read", "undelivered"]), 1), else_=0)),
            func.sum(case((Outbox.state.in_(["delivered", "read"]), 1), else_=0)),
            func.sum(case((Outbox.state.in_(["failed", "undelivered"]), 1), else_=0)),
            func.count(func.distinct(case((opted, Outbox.contact_id), else_=None))),
        ]
        # the opt-out column needs the contact, whatever the breakdown
        stmt_rows = _grouped_reach(session, filters, rows, metrics)
        raw = _Raw(measure, rows, list(REACH_COLUMNS))
        for row in stmt_rows:
            vals = [int(v or 0) for v in row[n:]]
            raw.cells[_row_key(row, rows)] = dict(zip([k for k, _ in REACH_COLUMNS], vals, strict=True))
        return raw
    # subscribers
    roles_text = cast(Contact.roles, String)
    metrics = [func.count().label("joined")]
    for role in AUDIENCE_ROLES:
        metrics.append(func.sum(case((roles_text.like(f'%"{role}"%'), 1), else_=0)))
    metrics.append(func.sum(case((and_(Contact.subscribed.is_(True), Contact.opted_out.is_(False),
                                       Contact.erased_at.is_(None)), 1), else_=0)))
    joined = _grouped(session, measure, filters, rows, metrics, Contact, None, Contact.joined_at, [])
    left = _grouped(session, measure, filters, rows, [func.count()], Contact, None, Contact.opted_out_at,
                    [Contact.joined_at.is_not(None)])
    raw = _Raw(measure, rows, list(SUBSCRIBER_COLUMNS))
    names = ["joined", *AUDIENCE_ROLES, "still_subscribed"]
    for row in joined:
        raw.cells[_row_key(row, rows)] = {k: int(v or 0) for k, v in zip(names, row[n:], strict=True)}
    for row in left:
        cell = raw.cells.setdefault(_row_key(row, rows), {k: 0 for k in names})
        cell["opted_out"] = int(row[n] or 0)
    for cell in raw.cells.values():
        cell.setdefault("opted_out", 0)
    return raw


def _grouped_reach(session: Session, filters: Filters, rows: list[str], metrics: list):
    dims = _dims("reach")
    keys = [(_period_expr(session, dims[d][0], filters.bucket) if d == "period" else dims[d][0]).label(f"d_{d}")
            for d in rows]
    stmt = select(*keys, *metrics).select_from(Outbox).join(Contact, Outbox.contact_id == Contact.id, isouter=True)
    where = [Outbox.kind == Outbox.CAMPAIGN, Outbox.created_at >= filters.start_utc, Outbox.created_at < filters.end_utc]
    for name, value in filters.selected().items():
        where.append(dims[name][0] == value)
    stmt = stmt.where(and_(*where))
    if keys:
        stmt = stmt.group_by(*keys)
    return session.execute(stmt).all()


def _partition(raw: _Raw, result, n: int, name_of) -> _Raw:
    for row in result:
        key = _row_key(row, raw.rows)
        cell = raw.cells.setdefault(key, {})
        col = name_of(row[n])
        cell[col] = cell.get(col, 0) + int(row[n + 1])
    for cell in raw.cells.values():
        cell["total"] = sum(cell.values())
    return raw


# --- publishing: the one place small cells are suppressed ------------------------------------
@dataclass
class Published:
    """A table fit to leave the system: row labels and shown values only.

    ``cells[i][j]`` is an ``int``/``float`` or a string marker (``"<5"``,
    ``"x"``); the raw counts are gone."""

    measure: str
    title: str
    kind: str
    row_dims: list[str]
    columns: list[str]
    rows: list[tuple[str, ...]]
    cells: list[list[int | float | str]]
    totals: list[int | str] | None  # partition tables: the row total
    min_cell: int
    filters: Filters
    notes: list[str] = field(default_factory=list)

    def header(self) -> list[str]:
        head = [d for d in self.row_dims] + list(self.columns)
        return head + (["Total"] if self.totals is not None else [])

    def body(self) -> list[list[object]]:
        out = []
        for i, labels in enumerate(self.rows):
            line: list[object] = [*labels, *self.cells[i]]
            if self.totals is not None:
                line.append(self.totals[i])
            out.append(line)
        return out

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.header())
        for line in self.body():
            writer.writerow([_fmt(v) for v in line])
        return buf.getvalue()

    def long_csv(self, column_dim: str = "column") -> str:
        """One line per row × column (and the row total as column "all")."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*self.row_dims, column_dim, "count"])
        for i, labels in enumerate(self.rows):
            for j, col in enumerate(self.columns):
                writer.writerow([*labels, col, _fmt(self.cells[i][j])])
            if self.totals is not None:
                writer.writerow([*labels, "all", _fmt(self.totals[i])])
        return buf.getvalue()

    def value(self, row: tuple[str, ...] | str, column: str) -> int | float | str:
        """The shown value at (row labels, column name); 0 for an absent row."""
        key = (row,) if isinstance(row, str) else tuple(row)
        if column == "Total" and self.totals is not None:
            return self.totals[self.rows.index(key)] if key in self.rows else 0
        j = self.columns.index(column)
        return self.cells[self.rows.index(key)][j] if key in self.rows else 0


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    # labels may come from what people typed (a township): never let a spreadsheet run them
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: the row that gathers breakdown values (townships, states ...) with fewer than k in them
OTHER = "(others, each under {k})"


def _merge_small_rows(raw: _Raw, k: int) -> _Raw:
    """Rows whose largest count is under k are summed into one "others" row,
    so a rare value — a township one person typed — is never shown as a label."""
    if k <= 1 or not raw.rows or raw.rows == ["period"]:
        return raw
    keep = [i for i, name in enumerate(raw.rows) if name != "period"]
    merged: dict[tuple, dict[str, float]] = {}
    weights: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for key, cell in raw.cells.items():
        counts = [v for name, v in cell.items() if name not in MEAN_OF and v is not None]
        if max(counts or [0]) >= k:
            merged[key] = dict(cell)
            continue
        other = tuple(OTHER.format(k=k) if i in keep else label for i, label in enumerate(key))
        target = merged.setdefault(other, {})
        for name, v in cell.items():
            if name in MEAN_OF:
                base = float(cell.get(MEAN_OF[name]) or 0)
                if v is not None and base:
                    weights[other][name] += float(v) * base
                continue
            target[name] = (target.get(name) or 0) + (v or 0)
    for other, sums in weights.items():
        for name, weighted in sums.items():
            base = float(merged[other].get(MEAN_OF[name]) or 0)
            merged[other][name] = weighted / base if base else None
    for cell in merged.values():
        for name in MEAN_OF:
            if name in (c for c, _ in raw.columns):
                cell.setdefault(name, None)
    return _Raw(raw.measure, raw.rows, raw.columns, merged)


def suppress_count(value: int, k: int) -> int | str:
    """A count fit to publish: 0 and counts ≥ k as they are, 1..k-1 as "<k"."""
    if 0 < value < k:
        return SMALL.format(k=k)
    return value


def publish(raw: _Raw, filters: Filters, min_cell: int) -> Published:
    """Suppress small cells (and their complements) and drop the raw counts.

    Every output goes through here. Rules (docs/insights.md):

    0. rows of a state/township/language/channel breakdown whose largest
       count is under k are summed into one "(others, each under k)" row;
    1. primary: every count 1..k-1 is shown as "<k" — cells, row totals,
       every metric;
    2. complementary, partition tables: in each row (cells + its shown total)
       and each column (cells of one column across the rows), while a reader
       could pin down a hidden cell from the total (one hidden cell, or a
       "<k" cell left with a single possible value), the smallest other
       non-zero cell is hidden too (shown "x"; a zero when no other is left;
       in a row with nothing left, the total) — see :func:`_line_safe`;
    3. means (minutes to acknowledge ...) are shown only where the count
       they are taken over is shown.
    """
    k = max(1, int(min_cell))
    title, kind = MEASURES[raw.measure]
    raw = _merge_small_rows(raw, k)
    rows = _ordered_rows(raw, filters)
    columns = [key for key, _ in raw.columns]
    labels = [label for _, label in raw.columns]
    matrix: list[list[float]] = [[raw.cells.get(r, {}).get(c, 0) or 0 for c in columns] for r in rows]
    shown: list[list[int | float | str]] = []
    totals: list[int | str] | None = None
    notes = [f"Counts from 1 to {k - 1} are shown as {SMALL.format(k=k)}." if k > 1 else "No suppression (minimum 1)."]

    if kind == "partition":
        hidden = [[0 < v < k for v in line] for line in matrix]
        row_totals = [int(sum(line)) for line in matrix]
        col_totals = [int(sum(matrix[i][j] for i in range(len(rows)))) for j in range(len(columns))]
        total_hidden = [0 < t < k for t in row_totals]
        total_secondary = [False] * len(rows)
        secondary = [[False] * len(columns) for _ in rows]
        changed = True
        while changed:
            changed = False
            # rows: the shown total minus the shown cells must not pin down a hidden cell
            for i, line in enumerate(matrix):
                if total_hidden[i]:
                    continue
                result = _complement([(j, line[j]) for j in range(len(columns))], hidden[i], secondary[i], k)
                if result == "stuck":  # nothing left to hide: hide the total instead
                    total_hidden[i] = total_secondary[i] = True
                changed |= result is not None
            # columns: the same across rows (a coarser view — the month, the state, no filter —
            # shows the column's total); a column total under k is itself only shown as "<k"
            for j in range(len(columns)):
                if col_totals[j] < k:
                    continue
                col_hidden = [hidden[i][j] for i in range(len(rows))]
                col_secondary = [secondary[i][j] for i in range(len(rows))]
                if _complement([(i, matrix[i][j]) for i in range(len(rows))], col_hidden, col_secondary, k) == "hid":
                    changed = True
                    for i in range(len(rows)):
                        hidden[i][j], secondary[i][j] = col_hidden[i], col_secondary[i]
        for i, line in enumerate(matrix):
            shown.append([
                (HIDDEN if secondary[i][j] else SMALL.format(k=k)) if hidden[i][j] else int(v)
                for j, v in enumerate(line)
            ])
        totals = [HIDDEN if total_secondary[i] else suppress_count(t, k) for i, t in enumerate(row_totals)]
        if any(any(line) for line in secondary) or any(total_secondary):
            notes.append(f"{HIDDEN}: hidden so that a {SMALL.format(k=k)} figure cannot be worked out from a total.")
    else:
        for r in rows:
            cell = raw.cells.get(r, {})
            out: list[int | float | str] = []
            for key in columns:
                if key in MEAN_OF:
                    base = int(cell.get(MEAN_OF[key]) or 0)
                    mean = cell.get(key)
                    out.append("" if mean is None or base == 0 else
                               (SMALL.format(k=k) if base < k else round(float(mean), 1)))
                else:
                    out.append(suppress_count(int(cell.get(key) or 0), k))
            shown.append(out)
        if any(k_ in MEAN_OF for k_ in columns):
            notes.append("A mean is shown only where the count it is taken over is shown.")
    return Published(
        measure=raw.measure, title=title, kind=kind, row_dims=list(raw.rows), columns=labels,
        rows=rows, cells=shown, totals=totals, min_cell=k, filters=filters, notes=notes,
    )


def _complement(line: list[tuple[int, float]], hidden: list[bool], secondary: list[bool], k: int) -> str | None:
    """Hide one more cell of ``line`` (a row or column whose total is known) if
    its hidden cells could be worked out; "hid" when it did, "stuck" when it
    should but nothing is left to hide, None when the line is safe."""
    if _line_safe(line, hidden, secondary, k):
        return None
    visible = sorted((v, pos) for pos, (idx, v) in enumerate(line) if not hidden[idx] and v > 0)
    has_secondary = any(hidden[idx] and secondary[idx] for idx, _ in line)
    n_hidden = sum(1 for idx, _ in line if hidden[idx])
    if not visible and (n_hidden == 1 or not has_secondary):  # a hidden zero could also be ≥ k
        visible = [(0, pos) for pos, (idx, v) in enumerate(line) if not hidden[idx]]
    if not visible:
        return "stuck"
    idx = line[visible[0][1]][0]
    hidden[idx] = True
    secondary[idx] = True
    return "hid"


def _line_safe(line: list[tuple[int, float]], hidden: list[bool], secondary: list[bool], k: int) -> bool:
    """Can a reader who knows the line's total and this rule pin down a hidden cell?

    They see the sum H of the hidden cells (total − shown cells); each "<k"
    cell is 1..k-1 and each "x" cell is 0 or ≥ k. The line is safe when it
    does not have exactly one hidden cell and every "<k" cell could still
    take at least two values (all k-1 of them when k ≤ 3)."""
    n_hidden = sum(1 for idx, _ in line if hidden[idx])
    if n_hidden == 0:
        return True
    if n_hidden == 1:
        return False
    primaries = sum(1 for idx, _ in line if hidden[idx] and not secondary[idx])
    if primaries == 0:
        return True
    total_hidden = int(sum(v for idx, v in line if hidden[idx]))
    has_secondary = primaries < n_hidden
    lo, hi = primaries - 1, (primaries - 1) * (k - 1)  # what the other "<k" cells can add up to
    feasible = 0
    for a in range(1, k):
        rest = total_hidden - a
        if lo <= rest <= hi or (has_secondary and rest - k >= lo):
            feasible += 1
    return feasible >= min(2, k - 1)


def _ordered_rows(raw: _Raw, filters: Filters) -> list[tuple[str, ...]]:
    keys = set(raw.cells)
    if raw.rows == ["period"]:
        keys |= {(p,) for p in filters.periods()}  # empty periods are shown as 0
    if raw.rows and raw.rows[0] == "period":
        return sorted(keys)
    # other breakdowns: largest first, "(not known)" last
    def weight(key: tuple) -> tuple:
        cell = raw.cells.get(key, {})
        first = next(iter(cell.values()), 0) if cell else 0
        size = cell.get("total", first) or 0
        return (any(label.startswith("(") for label in key), -size, key)

    return sorted(keys, key=weight)


# --- the public entry points ---------------------------------------------------------------
def table(session: Session, measure: str, filters: Filters, rows: list[str] | None = None,
          min_cell: int = 5) -> Published:
    """One published (suppressed) table of ``measure`` broken down by ``rows``."""
    rows = list(rows) if rows is not None else ["period"]
    return publish(_raw(session, measure, filters, rows), filters, min_cell)


def dashboard(session: Session, filters: Filters, by: str = "period", min_cell: int = 5) -> list[Published]:
    """The page's tables, all broken down by ``by``."""
    return [table(session, measure, filters, [by], min_cell) for measure in MEASURES]


def parse_by(by: str) -> tuple[str, list[str]]:
    """``township,topic`` → ("questions", ["township"]). The column dimension
    (topic, category or severity) picks the measure; other names are rows."""
    names = [n.strip().lower() for n in by.split(",") if n.strip()]
    measures = [COLUMN_DIMS[n] for n in names if n in COLUMN_DIMS]
    rows = [n for n in names if n not in COLUMN_DIMS]
    if len(measures) > 1:
        raise InsightsError("name at most one of topic, category, severity in --by")
    for name in rows:
        if name not in DIMENSIONS:
            raise InsightsError(f"cannot break down by {name!r}: choose from "
                                f"{', '.join([*DIMENSIONS, *COLUMN_DIMS])}")
    return (measures[0] if measures else ""), rows


def filter_options(session: Session, min_cell: int = 5) -> dict[str, list[str]]:
    """Values offered in the page's filters: only those with at least
    ``min_cell`` contacts or cases, so the list itself singles nobody out."""
    out: dict[str, list[str]] = {}
    k = max(1, int(min_cell))
    for name, contact_col, case_col in (("state", Contact.state, None), ("township", Contact.township, Case.township),
                                        ("language", Contact.language, Case.language),
                                        ("channel", Contact.channel, Case.channel)):
        counts: dict[str, int] = defaultdict(int)
        for value, n in session.execute(select(contact_col, func.count()).where(contact_col.is_not(None))
                                        .group_by(contact_col)):
            counts[value] = max(counts[value], int(n))
        if case_col is not None:
            for value, n in session.execute(select(case_col, func.count()).where(case_col.is_not(None))
                                            .group_by(case_col)):
                counts[value] = max(counts[value], int(n))
        out[name] = sorted(v for v, n in counts.items() if v and n >= k)
    return out


def filters_from(args: dict, today: date) -> Filters:
    """Filters from a request's arguments (or the CLI); defaults: the last
    full month before ``today``."""
    def day(name: str, default: date) -> date:
        raw = (args.get(name) or "").strip()
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError as exc:
            raise InsightsError(f"{name}: expected a date YYYY-MM-DD, got {raw[:20]!r}") from exc

    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    start = day("from", last_month_end.replace(day=1))
    end = day("to", last_month_end if not args.get("from") else max(start, min(today, start + timedelta(days=30))))
    bucket = (args.get("bucket") or "week").strip().lower()
    values = {name: ((args.get(name) or "").strip()[:60] or None) for name in FILTERS}
    return Filters(start=start, end=end, bucket=bucket, **values)


def with_filter(filters: Filters, **changes) -> Filters:
    return replace(filters, **changes)


def yangon_today() -> date:
    return (clock.now() + YANGON_OFFSET).date()


# --- CLI: lanpya insights export ------------------------------------------------------------
def _cli_context() -> tuple[object, int]:
    """(database, minimum cell) from the click context's obj (tests), else the configuration."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and ctx.obj.get("db") is not None:
            obj = ctx.obj
            if obj.get("min_cell") is not None:
                return obj["db"], int(obj["min_cell"])
            from lanpya.config import Config

            return obj["db"], Config.from_env().insights_min_cell
        ctx = ctx.parent
    from lanpya.bootstrap import database, load_config

    config = load_config("cli")
    return database(config), config.insights_min_cell


@click.group("insights")
def insights_cli() -> None:
    """Anonymised aggregate figures (small counts suppressed)."""


@insights_cli.command("export")
@click.option("--from", "start", required=True, help="first day, YYYY-MM-DD (Asia/Yangon)")
@click.option("--to", "end", required=True, help="last day, YYYY-MM-DD (included)")
@click.option("--by", "by", default="period,topic", show_default=True,
              help="comma list of period, state, township, language, channel and one of topic, category, severity")
@click.option("--measure", type=click.Choice(list(MEASURES)), default=None,
              help="what to count when --by names no topic/category/severity")
@click.option("--bucket", type=click.Choice(BUCKETS), default="month", show_default=True)
@click.option("--state", default=None)
@click.option("--township", default=None)
@click.option("--language", default=None)
@click.option("--channel", default=None)
@click.option("--format", "fmt", type=click.Choice(["csv", "wide"]), default="csv", show_default=True,
              help="csv: one line per cell (long); wide: one line per row, as on the page")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write to this file instead of standard output")
def export(start: str, end: str, by: str, measure: str | None, bucket: str, state: str | None,
           township: str | None, language: str | None, channel: str | None, fmt: str,
           output: str | None) -> None:
    """Print a suppressed table as CSV, e.g. --by township,topic.

    Standard output carries only the CSV (the process's INFO log lines, which
    also go to standard output, are held back while it runs)."""
    if output is None:
        logging.disable(logging.INFO)
    try:
        picked, rows = parse_by(by)
        if picked and measure and picked != measure:
            raise InsightsError(f"--by names {picked} figures but --measure says {measure}")
        measure = picked or measure
        if not measure:
            raise InsightsError("name topic, category or severity in --by, or give --measure")
        filters = filters_from({"from": start, "to": end, "bucket": bucket, "state": state, "township": township,
                                "language": language, "channel": channel}, yangon_today())
        dbase, min_cell = _cli_context()
        with dbase.session() as s:
            published = table(s, measure, filters, rows, min_cell)
            from lanpya import audit

            audit.record(s, "insights_export", "insights", None, actor="cli",
                         detail={"table": measure, "by": rows, "format": fmt})
    except InsightsError as exc:
        click.echo(f"lanpya insights: {exc}", err=True)
        sys.exit(2)
    finally:
        logging.disable(logging.NOTSET)
    column_dim = next((n for n, m in COLUMN_DIMS.items() if m == measure), "figure")
    text = published.long_csv(column_dim) if fmt == "csv" else published.csv()
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        click.echo(f"wrote {output}", err=True)


__all__ = [
    "BUCKETS", "DIMENSIONS", "FILTERS", "MEASURES", "TOPICS", "Filters", "InsightsError", "Published",
    "dashboard", "filter_options", "insights_cli", "yangon_today", "filters_from", "parse_by", "publish", "suppress_count", "table",
]
