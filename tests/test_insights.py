"""Insights: counts on seeded data for each breakdown, suppression of small
cells (and their complements) in every output — the queries, the page, the
CSV downloads, the print view and the CLI — and what an insights-only user
can reach.

The seed (October 2026, Asia/Yangon):

| township (state)   | contacts | questions                                   | reports                     |
|--------------------|----------|---------------------------------------------|-----------------------------|
| Myitkyina (Kachin) | 12 sms   | legal 8, documents 6, agency 3, greet 4     | trafficking 6, forced mar. 2 |
| Lashio (Shan)      | 6 viber  | legal 5, fees 1                             | missing person 5            |
| Bhamo (Kachin)     | 2 sms    | legal 2                                     | -                           |

plus messages just either side of the month's edges in Yangon time.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lanpya import insights
from lanpya.insights import Filters, InsightsError, publish, suppress_count
from lanpya.models import AuditLog, Case, Contact, Inbound, Outbox, Staff

OTHERS = "(others, each under 5)"
OCT = Filters(start=date(2026, 10, 1), end=date(2026, 10, 31), bucket="month")
SECRET_TEXT = "my sister Ma Hkawn Nu was sold at the border"
SECRET_NARRATIVE = "taken from Myitkyina bus station by an agent called U Tin"


def _utc(yangon: datetime) -> datetime:
    return yangon - timedelta(hours=6, minutes=30)


def seed(db) -> dict[str, list[int]]:
    """The table in the module docstring; returns contact ids by township."""
    ids: dict[str, list[int]] = {}
    msg = iter(range(1, 10_000))
    with db.session() as s:
        def contacts(township, state, n, channel, language, roles, joined):
            out = []
            for i in range(n):
                c = Contact(channel=channel, address_hash=f"{township}-{i}", address=f"+9597{len(township)}{i:05d}",
                            language=language, state=state, township=township, roles=roles(i),
                            subscribed=True, joined_at=joined)
                s.add(c)
                out.append(c)
            s.flush()
            return out

        myi = contacts("Myitkyina", "Kachin", 12, "sms", "kac", lambda i: ["planning"] if i < 7 else ["family"],
                       _utc(datetime(2026, 10, 3, 9)))
        lsh = contacts("Lashio", "Shan", 6, "viber", "my", lambda i: ["returnee"], _utc(datetime(2026, 10, 5, 9)))
        bha = contacts("Bhamo", "Kachin", 2, "sms", "kac", lambda i: ["planning"], _utc(datetime(2026, 9, 20, 9)))

        def ask(contact, intent, when, n=1):
            for _ in range(n):
                s.add(Inbound(channel=contact.channel, provider_id=f"m{next(msg)}", contact_id=contact.id,
                              body=SECRET_TEXT, language=contact.language, intent=intent, state="done",
                              received_at=_utc(when)))

        mid = datetime(2026, 10, 15, 12)
        for i in range(8):
            ask(myi[i], "migrate_legally", mid)
        for i in range(6):
            ask(myi[i], "documents", mid)
        for i in range(3):
            ask(myi[i], "check_agency", mid)
        for i in range(4):
            ask(myi[i], "greet", mid)  # not a question
        for i in range(5):
            ask(lsh[i], "migrate_legally", mid)
        ask(lsh[0], "fees_debt", mid)
        ask(bha[0], "migrate_legally", mid)
        # 1 October 02:30 in Yangon is still 30 September in UTC: it counts in October
        ask(bha[1], "migrate_legally", datetime(2026, 10, 1, 2, 30))
        # just before and just after the month in Yangon: not counted
        ask(myi[0], "migrate_legally", datetime(2026, 9, 30, 23, 59))
        ask(myi[0], "migrate_legally", datetime(2026, 11, 1, 0, 0))

        def report(contact, category, severity, ack_min, close_h, deadline_min=15):
            created = _utc(datetime(2026, 10, 10, 8))
            s.add(Case(contact_id=contact.id, category=category, severity=severity, status="closed" if close_h else "new",
                       language=contact.language, channel=contact.channel, township=contact.township,
                       narrative=SECRET_NARRATIVE, created_at=created,
                       deadline_at=created + timedelta(minutes=deadline_min),
                       acknowledged_at=created + timedelta(minutes=ack_min) if ack_min is not None else None,
                       closed_at=created + timedelta(hours=close_h) if close_h else None))

        for i in range(6):
            report(myi[i], "trafficking", "urgent", 10, 48 if i < 3 else None)
        for i in range(2):
            report(myi[6 + i], "forced_marriage", "normal", 30, None, deadline_min=60)
        report(lsh[0], "missing_person", "emergency", 20, None, deadline_min=5)
        for i in range(1, 5):
            report(lsh[i], "missing_person", "urgent", 20 if i < 4 else None, None)

        sent = _utc(datetime(2026, 10, 20, 10))
        for i, c in enumerate(myi):
            s.add(Outbox(channel="sms", kind="campaign", priority=5, contact_id=c.id, body="campaign text",
                         state="delivered" if i < 10 else "failed", created_at=sent, sent_at=sent,
                         dedupe_key=f"fire:1:contact:{c.id}"))
        for c in lsh:
            s.add(Outbox(channel="viber", kind="campaign", priority=5, contact_id=c.id, body="campaign text",
                         state="sent", created_at=sent, sent_at=sent, dedupe_key=f"fire:1:contact:{c.id}"))
        myi[11].opted_out = True
        myi[11].opted_out_at = sent + timedelta(days=2)
        ids = {"Myitkyina": [c.id for c in myi], "Lashio": [c.id for c in lsh], "Bhamo": [c.id for c in bha]}
    return ids


# --- counts ---------------------------------------------------------------------------------
def test_questions_by_month_count_topics_in_yangon_time(db):
    seed(db)
    with db.session() as s:
        t = insights.table(s, "questions", OCT, ["period"], min_cell=1)
    assert t.rows == [("2026-10",)]
    assert t.value("2026-10", "Legal migration") == 8 + 5 + 1 + 1  # the 1 October 02:30 message counts
    assert t.value("2026-10", "Documents and passports") == 6
    assert t.value("2026-10", "Checking an agency") == 3
    assert t.value("2026-10", "Fees and debt") == 1
    assert t.value("2026-10", "Total") == 25  # greetings are not questions


def test_questions_by_township_and_language_and_channel(db):
    seed(db)
    with db.session() as s:
        by_town = insights.table(s, "questions", OCT, ["township"], min_cell=1)
        by_lang = insights.table(s, "questions", OCT, ["language"], min_cell=1)
        by_chan = insights.table(s, "questions", OCT, ["channel"], min_cell=1)
        by_state = insights.table(s, "questions", OCT, ["state"], min_cell=1)
        lashio = insights.table(s, "questions", insights.with_filter(OCT, township="Lashio"), ["period"], min_cell=1)
    assert by_town.rows == [("Myitkyina",), ("Lashio",), ("Bhamo",)]  # largest first
    assert by_town.value("Myitkyina", "Total") == 17
    assert by_town.value("Lashio", "Legal migration") == 5
    assert by_town.value("Bhamo", "Total") == 2
    assert by_lang.value("kac", "Total") == 19 and by_lang.value("my", "Total") == 6
    assert by_chan.value("sms", "Total") == 19 and by_chan.value("viber", "Total") == 6
    assert by_state.value("Kachin", "Total") == 19 and by_state.value("Shan", "Total") == 6
    assert lashio.value("2026-10", "Total") == 6 and lashio.value("2026-10", "Fees and debt") == 1


def test_weeks_start_on_monday_in_yangon(db):
    seed(db)
    f = Filters(start=date(2026, 9, 28), end=date(2026, 11, 8), bucket="week")
    with db.session() as s:
        t = insights.table(s, "questions", f, ["period"], min_cell=1)
    assert [r[0] for r in t.rows] == ["2026-09-28", "2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26",
                                      "2026-11-02"]
    # 30 Sep 23:59 and 1 Oct 02:30 fall in the week of Monday 28 September; 1 Nov (a Sunday) in 26 October's
    assert t.value("2026-09-28", "Total") == 2
    assert t.value("2026-10-12", "Total") == 24
    assert t.value("2026-10-26", "Total") == 1
    assert t.value("2026-10-05", "Total") == 0


def test_reports_by_category_severity_and_response_times(db):
    seed(db)
    with db.session() as s:
        cat = insights.table(s, "reports", OCT, ["township"], min_cell=1)
        sev = insights.table(s, "severity", OCT, ["state"], min_cell=1)
        resp = insights.table(s, "response", OCT, ["township"], min_cell=1)
    assert cat.value("Myitkyina", "Trafficking") == 6
    assert cat.value("Myitkyina", "Forced marriage") == 2
    assert cat.value("Lashio", "Missing person") == 5
    assert sev.value("Kachin", "Urgent") == 6 and sev.value("Kachin", "Normal") == 2
    assert sev.value("Shan", "Emergency") == 1 and sev.value("Shan", "Urgent") == 4
    assert resp.value("Myitkyina", "Cases") == 8
    assert resp.value("Myitkyina", "Acknowledged") == 8
    assert resp.value("Myitkyina", "Acknowledged by the deadline") == 8  # 10 ≤ 15 and 30 ≤ 60 minutes
    assert resp.value("Myitkyina", "Mean minutes to acknowledge") == pytest.approx((6 * 10 + 2 * 30) / 8, abs=0.05)
    assert resp.value("Myitkyina", "Closed") == 3
    assert resp.value("Myitkyina", "Mean hours to close") == pytest.approx(48.0, abs=0.05)
    assert resp.value("Lashio", "Acknowledged") == 4
    assert resp.value("Lashio", "Acknowledged by the deadline") == 0  # 20 min against 5 and 15
    assert resp.value("Lashio", "Closed") == 0


def test_campaign_reach_and_subscribers(db):
    seed(db)
    with db.session() as s:
        reach = insights.table(s, "reach", OCT, ["township"], min_cell=1)
        reach_ch = insights.table(s, "reach", OCT, ["channel"], min_cell=1)
        subs = insights.table(s, "subscribers", OCT, ["township"], min_cell=1)
        sept = insights.table(s, "subscribers", Filters(date(2026, 9, 1), date(2026, 9, 30)), ["township"], min_cell=1)
    assert reach.value("Myitkyina", "Campaign messages") == 12
    assert reach.value("Myitkyina", "Sent") == 10  # delivered counts as sent; failed does not
    assert reach.value("Myitkyina", "Delivered") == 10
    assert reach.value("Myitkyina", "Failed") == 2
    assert reach.value("Myitkyina", "Opted out within 7 days") == 1
    assert reach.value("Lashio", "Sent") == 6 and reach.value("Lashio", "Delivered") == 0
    assert reach_ch.value("viber", "Campaign messages") == 6
    assert subs.value("Myitkyina", "Joined") == 12
    assert subs.value("Myitkyina", "Planning to migrate") == 7
    assert subs.value("Myitkyina", "Family") == 5
    assert subs.value("Myitkyina", "Still subscribed") == 11
    assert subs.value("Myitkyina", "Opted out") == 1
    assert subs.value("Lashio", "Returnee") == 6
    assert ("Bhamo",) not in subs.rows  # they joined in September
    assert sept.value("Bhamo", "Joined") == 2


# --- suppression ------------------------------------------------------------------------------
def test_suppress_count_hides_one_to_k_minus_one():
    assert [suppress_count(n, 5) for n in (0, 1, 4, 5, 9)] == [0, "<5", "<5", 5, 9]
    assert suppress_count(2, 3) == "<3"


def test_small_cells_and_their_complements_are_hidden(db):
    seed(db)
    with db.session() as s:
        t = insights.table(s, "questions", OCT, ["township"], min_cell=5)
    v = t.value
    # Myitkyina: agency 3 is small; documents 6 (the next smallest) hides it from the total 17
    assert v("Myitkyina", "Legal migration") == 8
    assert v("Myitkyina", "Checking an agency") == "<5"
    assert v("Myitkyina", "Documents and passports") == "x"
    assert v("Myitkyina", "Total") == 17
    # Lashio: fees 1 is small; hiding legal 5 is not enough (6 = a small cell + a hidden cell that is
    # 0 or at least 5 → the small one is 1), and nothing else is left: the total is hidden too
    assert v("Lashio", "Fees and debt") == "<5"
    assert v("Lashio", "Legal migration") == "x"
    assert v("Lashio", "Total") == "x"
    # Bhamo (2 questions) is not named: townships under 5 are summed into one "others" row
    assert ("Bhamo",) not in t.rows
    assert v(OTHERS, "Legal migration") == "<5" and v(OTHERS, "Total") == "<5"
    # columns: no column whose total the month table shows (≥ 5) keeps a single hidden cell
    assert v("Lashio", "Documents and passports") == "x"  # a zero, hidden so Myitkyina's 6 is not pinned down
    month = {"Legal migration": 15, "Documents and passports": 6}
    for j, name in enumerate(t.columns):
        col = [t.cells[i][j] for i in range(len(t.rows))]
        if name in month:
            assert sum(1 for c in col if isinstance(c, str)) >= 2, (name, col)
    for i, row in enumerate(t.rows):
        line = t.cells[i]
        if isinstance(t.totals[i], int):
            assert sum(1 for c in line if isinstance(c, str)) != 1, (row, line)


def test_no_hidden_cell_can_be_worked_out_from_shown_totals(db):
    """Property: in every partition table on the seed, for each row with a shown
    total and each column, the hidden cells are never exactly one."""
    seed(db)
    with db.session() as s:
        for measure in ("questions", "reports", "severity"):
            for by in ("period", "state", "township", "language", "channel"):
                t = insights.table(s, measure, OCT, [by], min_cell=5)
                for i in range(len(t.rows)):
                    if isinstance(t.totals[i], int):
                        assert sum(isinstance(c, str) for c in t.cells[i]) != 1, (measure, by, t.rows[i])
                month = insights.table(s, measure, OCT, [], min_cell=5)
                if len(t.rows) > 1:
                    for j, name in enumerate(t.columns):
                        if isinstance(month.value((), name), int):  # the column's total is shown elsewhere
                            assert sum(isinstance(t.cells[i][j], str) for i in range(len(t.rows))) != 1, (measure, by)


def test_metric_tables_suppress_each_small_count_and_means_over_small_counts(db):
    seed(db)
    with db.session() as s:
        resp = insights.table(s, "response", OCT, ["township"], min_cell=5)
        reach = insights.table(s, "reach", OCT, ["township"], min_cell=5)
        subs = insights.table(s, "subscribers", OCT, ["township"], min_cell=5)
    assert resp.value("Myitkyina", "Closed") == "<5"
    assert resp.value("Myitkyina", "Mean hours to close") == "<5"  # a mean over 3 cases is not shown
    assert resp.value("Myitkyina", "Mean minutes to acknowledge") == pytest.approx(15.0)
    assert resp.value("Lashio", "Acknowledged") == "<5"
    assert resp.value("Lashio", "Mean minutes to acknowledge") == "<5"
    assert reach.value("Myitkyina", "Failed") == "<5"
    assert reach.value("Myitkyina", "Opted out within 7 days") == "<5"
    assert subs.value("Myitkyina", "Opted out") == "<5"
    assert subs.value("Myitkyina", "Planning to migrate") == 7


def test_min_cell_is_configurable():
    raw = insights._Raw("questions", ["period"], [("A", "A"), ("B", "B"), ("C", "C")],
                        {("2026-10",): {"A": 9, "B": 17, "C": 12, "total": 38}})
    assert publish(raw, OCT, 10).cells == [["<10", 17, "x"]]  # C, the smallest shown, hides A from the total
    assert publish(raw, OCT, 5).cells == [[9, 17, 12]]
    assert publish(raw, OCT, 10).totals == [38]


def test_bad_filters_are_refused():
    with pytest.raises(InsightsError):
        Filters(start=date(2026, 10, 2), end=date(2026, 10, 1))
    with pytest.raises(InsightsError):
        Filters(start=date(2026, 10, 1), end=date(2026, 10, 2), bucket="day")
    with pytest.raises(InsightsError):
        insights.parse_by("township,phone")
    with pytest.raises(InsightsError):
        insights.parse_by("topic,category")
    assert insights.parse_by("township,topic") == ("questions", ["township"])
    assert insights.parse_by("state,severity") == ("severity", ["state"])


def test_filter_options_list_only_values_with_enough_people(db):
    seed(db)
    with db.session() as s:
        options = insights.filter_options(s, min_cell=5)
    assert options["township"] == ["Lashio", "Myitkyina"]  # Bhamo has 2 contacts and no cases
    assert options["state"] == ["Kachin", "Shan"]


# --- the page, its CSVs, the print view ------------------------------------------------------
@pytest.fixture
def as_role(app, db):
    from werkzeug.security import generate_password_hash

    def sign_in(role: str):
        with db.session() as s:
            st = Staff(email=f"{role}-insights@example.org", role=role, password_hash=generate_password_hash("pw"))
            s.add(st)
            s.flush()
            staff_id = st.id
        from tests.test_access import signed_in

        return signed_in(app, db, staff_id)

    return sign_in


def _small_numbers_in_tables(html: str) -> list[str]:
    """Counts 1..4 shown in a table cell, a headline figure or a chart tooltip."""
    cells = re.findall(r"<td>\s*([0-9.]+)\s*</td>", html)
    cells += re.findall(r'<span class="figure">([0-9.]+)</span>', html)
    cells += re.findall(r": ([0-9.]+)</title>", html)
    means = re.findall(r"<td>\s*([0-9]+\.[0-9])\s*</td>", html)
    return [c for c in cells if c not in means and c in ("1", "2", "3", "4")]


QUERY = "from=2026-10-01&to=2026-10-31&bucket=month&by=township"


def test_page_shows_charts_tables_and_suppresses(db, as_role):
    seed(db)
    client = as_role(Staff.INSIGHTS)
    resp = client.get(f"/console/insights?{QUERY}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert html.count("<svg") >= 6
    assert "Myitkyina" in html and "Lashio" in html
    assert "&lt;5" in html
    assert ">17<" in html  # Myitkyina's questions
    assert SECRET_TEXT not in html and SECRET_NARRATIVE not in html
    assert "+9597" not in html
    # Bhamo's 2 questions appear only in the "others" row, as <5; no table cell or headline shows 1..4
    assert "Bhamo" not in html and "(others, each under 5)" in html
    assert not _small_numbers_in_tables(html)
    assert '<rect class="bar" data-series="Legal migration"' in html
    for name in ("questions", "reports", "severity", "response", "reach", "subscribers"):
        assert f"/console/insights/{name}.csv?" in html


def test_csv_download_is_suppressed_and_audited(db, as_role):
    seed(db)
    client = as_role(Staff.INSIGHTS)
    resp = client.get(f"/console/insights/questions.csv?{QUERY}")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    head = rows[0]
    by_town = {r[0]: dict(zip(head, r, strict=True)) for r in rows[1:]}
    assert by_town["Myitkyina"]["Total"] == "17"
    assert by_town["Myitkyina"]["Checking an agency"] == "<5"
    assert by_town["Myitkyina"]["Documents and passports"] == "x"
    assert by_town[OTHERS]["Total"] == "<5" and "Bhamo" not in by_town
    assert not any(cell in ("1", "2", "3", "4") for r in rows[1:] for cell in r[1:])
    with db.session() as s:
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "insights_export"))
    assert entry is not None and entry.detail["table"] == "questions"
    assert client.get(f"/console/insights/nothing.csv?{QUERY}").status_code == 404


def test_print_view_is_one_page_summary_and_suppressed(db, as_role):
    seed(db)
    client = as_role(Staff.SUPERVISOR)
    resp = client.get(f"/console/insights/print?{QUERY}")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "insights-print" in html and "&lt;5" in html and "Myitkyina" in html
    assert not _small_numbers_in_tables(html)
    assert SECRET_TEXT not in html


def test_page_refuses_bad_filters_with_a_clear_message(db, as_role):
    client = as_role(Staff.INSIGHTS)
    resp = client.get("/console/insights?from=2026-10-31&to=2026-10-01")
    assert resp.status_code == 400
    assert "before the start" in resp.get_data(as_text=True)
    assert client.get("/console/insights?from=yesterday").status_code == 400


def test_agent_may_not_see_insights(db, as_role):
    client = as_role(Staff.AGENT)
    assert client.get(f"/console/insights?{QUERY}").status_code == 403


def test_insights_only_user_reaches_no_case_contact_or_message_page(app, db, as_role):
    """Walks the URL map: every /console and /api route but the insights ones
    (and the links page) answers 403 or sends to sign-in for this user."""
    from tests.test_access import app_routes

    ids = seed(db)
    client = as_role(Staff.INSIGHTS)
    reached = []
    checked = 0
    for path, method, url, _view in app_routes(app):
        if not path.startswith(("/console", "/api/")):
            continue
        if path.startswith("/console/insights"):
            continue
        if path == "/console/":
            html = client.get(url).get_data(as_text=True)
            assert "/console/cases" not in html and "/console/insights" in html
            continue
        url = url.replace("/1", f"/{ids['Myitkyina'][0]}")
        status = client.open(url, method=method, json={}).status_code
        checked += 1
        if not (status == 403 or (status in (302, 401) and method == "GET")):
            reached.append((method, url, status))
    assert checked >= 10
    assert reached == []


# --- the CLI ----------------------------------------------------------------------------------
def test_cli_export_csv_by_township_topic(db, tmp_path):
    from lanpya.cli import cli

    seed(db)
    out = CliRunner().invoke(cli, ["insights", "export", "--from", "2026-10-01", "--to", "2026-10-31",
                                   "--by", "township,topic", "--format", "csv"], obj={"db": db, "min_cell": 5})
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    cell = {(r["township"], r["topic"]): r["count"] for r in rows}
    assert cell[("Myitkyina", "Legal migration")] == "8"
    assert cell[("Myitkyina", "Checking an agency")] == "<5"
    assert cell[("Myitkyina", "Documents and passports")] == "x"
    assert cell[("Myitkyina", "all")] == "17"
    assert cell[(OTHERS, "all")] == "<5"
    assert not any(r["count"] in ("1", "2", "3", "4") for r in rows)
    path = tmp_path / "out.csv"
    again = CliRunner().invoke(cli, ["insights", "export", "--from", "2026-10-01", "--to", "2026-10-31",
                                     "--by", "township,topic", "-o", str(path)], obj={"db": db, "min_cell": 5})
    assert again.exit_code == 0 and path.read_text() == out.output
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "insights_export")) == 2


def test_cli_export_metrics_and_errors(db):
    from lanpya.cli import cli

    seed(db)
    runner = CliRunner()
    out = runner.invoke(cli, ["insights", "export", "--from", "2026-10-01", "--to", "2026-10-31",
                              "--by", "period", "--measure", "response", "--format", "wide"], obj={"db": db})
    assert out.exit_code == 0, out.output
    rows = list(csv.reader(io.StringIO(out.output)))
    assert rows[0][:3] == ["period", "Cases", "Acknowledged"]
    assert rows[1][:3] == ["2026-10", "13", "12"]
    bad = runner.invoke(cli, ["insights", "export", "--from", "2026-10-31", "--to", "2026-10-01",
                              "--by", "township,topic"], obj={"db": db})
    assert bad.exit_code == 2 and "before the start" in bad.output
    bad = runner.invoke(cli, ["insights", "export", "--from", "2026-10-01", "--to", "2026-10-31",
                              "--by", "township"], obj={"db": db})
    assert bad.exit_code == 2 and "--measure" in bad.output


def test_seed_touches_no_case_or_message_text_in_outputs(db):
    """The queries never select a text column: the published tables carry only labels and numbers."""
    seed(db)
    with db.session() as s:
        tables = insights.dashboard(s, OCT, "township", 5)
        assert s.scalar(select(Case.narrative).limit(1)) == SECRET_NARRATIVE  # it is there to leak
    for t in tables:
        text = t.csv()
        assert SECRET_TEXT not in text and SECRET_NARRATIVE not in text and "+9597" not in text
    assert {t.measure for t in tables} == set(insights.MEASURES)
    _ = (Inbound, Outbox)


def test_rare_labels_are_never_shown_and_csv_cells_cannot_run_as_formulas(db):
    """A township someone typed (one person) stays out of every output; a label that a spreadsheet
    would run as a formula is written as text."""
    seed(db)
    typed = '=HYPERLINK("http://evil.example","Ma Hkawn Nu, Waingmaw")'
    with db.session() as s:
        for i in range(6):
            c = Contact(channel="sms", address_hash=f"typed-{i}", language="kac", state="Kachin",
                        township=typed if i == 0 else "-Sumprabum", subscribed=True)
            s.add(c)
            s.flush()
            s.add(Inbound(channel="sms", provider_id=f"typed-{i}", contact_id=c.id, intent="documents",
                          state="done", received_at=_utc(datetime(2026, 10, 20, 9))))
    with db.session() as s:
        t = insights.table(s, "questions", OCT, ["township"], min_cell=5)
        plain = insights.table(s, "questions", OCT, ["township"], min_cell=1)
    text = t.csv() + t.long_csv("topic")
    assert "HYPERLINK" not in text and "Ma Hkawn" not in text
    assert (typed,) not in t.rows
    assert ("-Sumprabum",) in t.rows and "\n'-Sumprabum," in t.csv()  # 5 people: shown, as text
    labels = [r[0] for r in csv.reader(io.StringIO(plain.csv()))]
    assert "'" + typed in labels and typed not in labels  # even with no minimum, never a live formula


# --- the complementary rule holds against a reader who knows it ---------------------------------
@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=12), min_size=2, max_size=4))
def test_no_small_cell_can_be_pinned_down_from_a_shown_total(values):
    """Brute force: every assignment a reader could believe ("<5" = 1..4, "x" = 0 or ≥ 5) that adds up
    to the shown total leaves each "<5" cell at least two possible values."""
    import itertools

    k = 5
    cols = [(f"c{i}", f"c{i}") for i in range(len(values))]
    raw = insights._Raw("questions", ["period"], cols,
                        {("2026-10",): {**{f"c{i}": v for i, v in enumerate(values)}, "total": sum(values)}})
    t = publish(raw, OCT, k)
    total = t.totals[0]
    if not isinstance(total, int):
        return  # the total is hidden: nothing to subtract from
    shown = t.cells[0]
    hidden_sum = total - sum(c for c in shown if isinstance(c, int))
    ranges = [range(1, k) if c == "<5" else [0, *range(k, total + 1)] for c in shown if isinstance(c, str)]
    kinds = [c for c in shown if isinstance(c, str)]
    possible: list[set[int]] = [set() for _ in kinds]
    for combo in itertools.product(*ranges):
        if sum(combo) == hidden_sum:
            for i, v in enumerate(combo):
                possible[i].add(v)
    for kind, values_seen in zip(kinds, possible, strict=True):
        if kind == "<5":
            assert len(values_seen) >= 2, (values, shown, total)
    assert sum(isinstance(c, str) for c in shown) != 1
