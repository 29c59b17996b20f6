"""In real headless Chromium: campaign staff sign in, create an audience (its
size shown live), create a campaign with Burmese and English text (encoding
and segments shown live), preview it (recipients, segments, cost), schedule
it; at the fire time the outbox fills with one row per contact in their
language, and the report page shows them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns import engine
from lanpya.models import Campaign, Outbox
from lanpya.staff import add_staff
from tests.campaign_support import add_contacts
from tests.support import LiveServer, wait_until

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
MY_TEXT = "အလုပ်အကိုင်အေဂျင်စီကို လိုင်စင်ရှိမရှိ အရင်စစ်ပါ။ ပိုက်ဆံ ကြိုမပေးပါနဲ့။"
EN_TEXT = "Before you pay an agency, check its licence. Reply 2 to check one."

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")


def _wait_text(page, selector: str, ok, timeout: float = 10) -> None:
    """Poll from Python (the console's CSP forbids evaluating strings in the page)."""
    wait_until(lambda: ok((page.text_content(selector) or "").strip()), timeout=timeout, interval=0.1,
               what=f"{selector} text")


def test_campaign_staff_create_preview_and_schedule_in_the_browser(config, db, clock, browser):
    from webhook import create_app

    clock.set(datetime(2026, 3, 2, 2, 0))  # 08:30 in Yangon
    my = add_contacts(db, 12, language="my", township="Myitkyina")
    en = add_contacts(db, 5, start=100, language="en", township="Myitkyina")
    add_contacts(db, 7, start=200, language="my", township="Lashio", state="Northern Shan")  # not in the audience
    with db.session() as s:
        add_staff(s, "camp@example.org", "campaigner", password=PASSWORD)
    config.segment_prices = {"sms:MM": 0.2, "sms:*": 0.1, "viber:*": 0.0}
    with LiveServer(create_app(config, db)) as server:
        base = server.url
        page = browser.new_page()
        page.goto(base + "/login")
        page.fill("#email", "camp@example.org")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.goto(base + "/console/campaigns")
        page.click("#new-audience")
        page.fill("#audience-name", "Myitkyina, Burmese and English")
        page.check("input[name=languages][value=my]")
        page.check("input[name=languages][value=en]")
        page.fill("#townships", "Myitkyina")
        _wait_text(page, "#audience-size", lambda t: t == "17")
        page.fill("#townships", "Myitkyina, Lashio")  # live: grows as the filter widens
        _wait_text(page, "#audience-size", lambda t: t == "24")
        page.fill("#townships", "Myitkyina")
        page.click("#save-audience")
        page.wait_for_selector("#campaign-form")
        page.fill("#campaign-name", "Check the agency first")
        page.fill("#run-at", "2026-03-02T03:00")
        page.fill("#text-my", MY_TEXT)
        page.fill("#text-en", EN_TEXT)
        _wait_text(page, "#segments-my", lambda t: t.startswith("UCS-2, 2 segment"))
        _wait_text(page, "#segments-en", lambda t: t.startswith("GSM-7, 1 segment"))
        page.click("#save-campaign")
        page.wait_for_selector("#preview")
        assert page.text_content("#recipients") == "17"
        assert page.text_content("#segments-total") == str(12 * 2 + 5)
        assert page.text_content("#cost") == f"{(12 * 2 + 5) * 0.2:.2f} USD"
        texts = page.text_content("#texts")
        assert "UCS-2" in texts and "GSM-7" in texts
        assert page.text_content("#campaign-status") == "draft"
        page.click("#act-schedule")
        _wait_text(page, "#campaign-status", lambda t: t == "scheduled")
        with db.session() as s:
            c = s.scalar(select(Campaign))
            cid, run_at = c.id, c.run_at
        assert run_at == datetime(2026, 3, 2, 3, 0)
        assert engine.fire_due(db, config, cid) == []  # not yet
        clock.set(datetime(2026, 3, 2, 3, 0, 1))
        engine.fire_due(db, config, cid)  # what the scheduler's job does at the fire time
        with db.session() as s:
            rows = {r.contact_id: r.body for r in s.scalars(select(Outbox))}
        assert rows == {**{i: MY_TEXT for i in my}, **{i: EN_TEXT for i in en}}
        page.reload()
        wait_until(lambda: "17" in page.text_content("#fires"), timeout=10)
        page.click("#act-pause")
        _wait_text(page, "#campaign-status", lambda t: t == "paused")
        with db.session() as s:
            assert {r.state for r in s.scalars(select(Outbox))} == {engine.PAUSED}
        page.close()
