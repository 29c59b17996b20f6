"""In real headless Chromium: an insights-only user signs in, the insights page
draws its charts for the seeded month (October 2026), choosing a township in
the filter redraws them with that township's figures, the CSV downloads with
small counts suppressed, and a screenshot is saved under test-output/ for
review."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from lanpya.staff import add_staff
from tests.support import ROOT, LiveServer
from tests.test_insights import seed

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
OUT = ROOT / "test-output"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")


@pytest.fixture
def db_url(sqlite_url):
    """SQLite only: the queries are tested on both engines in test_insights.py."""
    return sqlite_url


def _headline(page, label: str) -> str:
    for item in page.query_selector_all("ul.headline li"):
        if (item.query_selector(".label").text_content() or "").strip() == label:
            return (item.query_selector(".figure").text_content() or "").strip()
    raise AssertionError(f"no headline {label!r}")


def _bar_titles(page, chart: str) -> list[str]:
    return sorted((t.text_content() or "") for t in page.query_selector_all(f"svg#{chart} rect.bar > title"))


def test_insights_page_charts_filter_csv_and_screenshot(config, db, browser):
    from webhook import create_app

    seed(db)
    with db.session() as s:
        add_staff(s, "partner@example.org", "insights", password=PASSWORD)
    OUT.mkdir(exist_ok=True)
    with LiveServer(create_app(config, db)) as server:
        base = server.url
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.goto(base + "/login")
        page.fill("#email", "partner@example.org")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(base + "/console/insights?from=2026-10-01&to=2026-10-31&bucket=week&by=period")
        assert page.title().startswith("Insights")

        # every table has its chart, drawn with bars for the seeded month
        charts = page.query_selector_all("svg.chart")
        assert len(charts) == 6
        for chart in ("chart-questions", "chart-reports", "chart-severity", "chart-response", "chart-reach"):
            assert page.query_selector_all(f"svg#{chart} rect.bar"), chart
        assert _headline(page, "Questions asked") == "25"
        assert _headline(page, "Reports") == "13"
        before = _bar_titles(page, "chart-questions")
        # legal migration (14 that week) is hidden too: 1 October's single question falls in 28 September's
        # week, and the month's legal-migration total would give it away
        assert "2026-10-12 · Documents and passports: 6" in before
        assert not any("Legal migration" in t for t in before)
        page.screenshot(path=str(OUT / "insights-all.png"), full_page=True)

        # the township filter redraws the charts with Lashio's figures only
        page.select_option("#filter-township", "Lashio")
        with page.expect_navigation():
            page.click("form.insights-filters button[type=submit]")
        assert "township=Lashio" in page.url
        # Lashio asked 6 questions: legal 5 and fees 1. 6 = a "<5" + an "x" (0 or ≥ 5) would give the
        # small one away, so the total is hidden as well
        assert _headline(page, "Questions asked") == "x"
        assert _headline(page, "Reports") == "5"
        after = _bar_titles(page, "chart-questions")
        assert after != before
        assert not any("Documents" in t for t in after)
        assert _bar_titles(page, "chart-reports") == ["2026-10-05 · Missing person: 5"]
        assert page.query_selector("#filter-township").input_value() == "Lashio"

        # the CSV of the filtered questions table downloads, suppressed
        with page.expect_download() as info:
            page.click("#section-questions a.csv")
        download = info.value
        path = OUT / download.suggested_filename
        download.save_as(str(path))
        rows = list(csv.reader(io.StringIO(path.read_text())))
        assert rows[0][0] == "period" and rows[0][-1] == "Total"
        week = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}["2026-10-12"]
        assert week["Total"] == "x"
        assert week["Fees and debt"] == "<5"
        assert week["Legal migration"] == "x"

        page.screenshot(path=str(OUT / "insights-lashio.png"), full_page=True)
        page.goto(base + "/console/insights/print?from=2026-10-01&to=2026-10-31&bucket=week&by=township")
        page.emulate_media(media="print")
        page.screenshot(path=str(OUT / "insights-print.png"), full_page=True)
        page.pdf(path=str(OUT / "insights-summary.pdf"), format="A4", landscape=True, print_background=True)
        pdf = (OUT / "insights-summary.pdf").read_bytes()
        assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1  # one page for a policy dialogue
