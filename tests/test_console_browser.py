"""In real headless Chromium: an agent signs in, a report arrives through the
signed Twilio webhook and appears in the queue without a reload, the on-call
agent's phone gets the discreet alert, the agent acknowledges (the chase
stops), replies (the fake provider receives the text for the reporter) and
closes the case; a campaign-staff user cannot open the case page.

The path is the real one: webhook → inbound row → worker → "Rasa" (a small
HTTP stand-in that, like the action server, calls POST /internal/cases) →
case → alert in the outbox → dispatcher → fake Twilio."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import time, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from conversations.rasa import RasaClient
from conversations.worker import Worker
from lanpya import clock as clockmod
from lanpya import escalation
from lanpya.models import Alert, Case, Shift, Staff
from lanpya.staff import add_staff
from tests.conftest import TEST_KEYS
from tests.fakes import TWILIO_FROM, TWILIO_TOKEN, twilio_form, twilio_signature
from tests.support import LiveServer, free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
REPORTER = "+959791239999"
AGENT_PHONE, NEXT_PHONE = "+959250000201", "+959250000202"
REPORT_TEXT = 'My sister was trafficked to China <b>help</b>'

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")


class ShiftedClock(clockmod.Clock):
    """Real time plus an offset the test can jump forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self):
        return super().now() + self.offset


class BotStandIn:
    """Speaks the worker's side of Rasa; for a report it opens the case the way
    the action server does (POST /internal/cases with the internal token)."""

    def __init__(self, app_url: str):
        self.app_url = app_url
        self.port = free_port()
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith("/conversations/"):
            return Response("{}", mimetype="application/json")(environ, start_response)
        data = request.get_json(force=True)
        reply = {"messages": [{"text": "Thank you. Someone from the hotline will contact you."}],
                 "intent": "report_concern", "confidence": 0.95, "language": "en", "case_id": None}
        if "trafficked" in data["message"]:
            r = requests.post(self.app_url + "/internal/cases", timeout=10,
                              headers={"Authorization": f"Bearer {TEST_KEYS['internal']}"},
                              json={"contact": data["sender"], "category": "trafficking", "severity": "urgent",
                                    "source": "bot", "intent": "report_concern"})
            r.raise_for_status()
            reply["case_id"] = r.json()["case_id"]
        return Response(json.dumps(reply), mimetype="application/json")(environ, start_response)


@pytest.fixture
def shifted():
    c = ShiftedClock()
    previous = clockmod.use(c)
    yield c
    clockmod.use(previous)


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_agent_works_a_case_in_the_browser(provider_config, fake_twilio, db, shifted, browser):
    from webhook import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = replace(provider_config, public_url=base, internal_url=base)
    with db.session() as s:
        agent = add_staff(s, "agent@example.org", Staff.AGENT, password=PASSWORD, phone=AGENT_PHONE)
        nxt = add_staff(s, "next@example.org", Staff.AGENT, password=PASSWORD, phone=NEXT_PHONE)
        add_staff(s, "camp@example.org", Staff.CAMPAIGNER, password=PASSWORD)
        for day in range(7):
            s.add(Shift(staff_id=agent.id, weekday=day, start=time(0, 0),
                        end=time(23, 59, 59), rank=1))
            s.add(Shift(staff_id=nxt.id, weekday=day, start=time(0, 0),
                        end=time(23, 59, 59), rank=2))
    app = create_app(config, db)
    errors: list[str] = []
    with LiveServer(app, port=port), BotStandIn(base) as bot:
        worker = Worker(config, db, name="w-browser", rasa=RasaClient(bot.url, timeout=10))
        runner = threading.Thread(target=worker.run, daemon=True)
        runner.start()
        try:
            ctx = browser.new_context()
            page = ctx.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            sign_in(page, base, "agent@example.org")
            page.goto(base + "/console/cases")
            assert page.locator("tr[data-case]").count() == 0

            # the report arrives through the signed Twilio webhook
            form = twilio_form(from_=REPORTER, body=REPORT_TEXT, to=TWILIO_FROM)
            sig = twilio_signature(TWILIO_TOKEN, base + "/sms/twilio", form)
            r = requests.post(base + "/sms/twilio", data=urlencode(form), timeout=10, headers={
                "X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"})
            assert r.status_code == 200

            # it appears in the open queue without a reload
            row = page.locator("tr[data-case]").first
            row.wait_for(timeout=20000)
            case_id = int(row.get_attribute("data-case"))
            assert "urgent" in row.inner_text()
            # the on-call agent's phone got the discreet alert
            alert = wait_until(lambda: fake_twilio.sent_to(AGENT_PHONE), timeout=15, what="alert at the provider")
            assert alert[0].body == f"Lanpya: new case #{case_id}, urgent. {base}/console/cases/{case_id}"

            page.click(f"a[href='/console/cases/{case_id}']")
            page.wait_for_selector("#ack")
            # the reporter's words are shown as text, not markup
            assert page.locator("#conversation").inner_text().count(REPORT_TEXT) == 1
            assert page.locator("#conversation b").count() == 0
            page.click("#ack")
            page.wait_for_selector("text=Acknowledged: the chase has stopped.")
            with db.session() as s:
                case = s.get(Case, case_id)
                assert case.status == Case.ACKNOWLEDGED and case.acknowledged_by == agent.id
            # the chase stops: long past the deadline, nobody else is alerted
            shifted.offset = timedelta(hours=2)
            assert escalation.chase_due(db, config) == 0
            with db.session() as s:
                assert [(a.step, a.staff_id) for a in s.scalars(select(Alert))] == [(0, agent.id)]
            assert fake_twilio.sent_to(NEXT_PHONE) == []
            shifted.offset = timedelta(0)

            # reply: the fake provider receives it for the reporter
            page.fill("#reply-body", "We are calling you in 5 minutes. Are you safe?")
            page.click("#send-reply")
            page.wait_for_selector("text=Reply queued")
            got = wait_until(lambda: [m for m in fake_twilio.sent_to(REPORTER) if "calling you" in m.body],
                             timeout=15, what="agent reply at the provider")
            assert got[0].body == "We are calling you in 5 minutes. Are you safe?"

            # close with an outcome and referral
            page.select_option("#outcome", "referred")
            page.fill("#referral-other", "Local women's group")
            page.click("#close-case")
            page.wait_for_selector("text=Case closed.")
            assert page.locator("#case-status").inner_text() == "closed"
            with db.session() as s:
                case = s.get(Case, case_id)
                assert (case.status, case.outcome, case.referral) == (Case.CLOSED, "referred", "Local women's group")
            assert page.locator("#send-reply").count() == 0  # no messages after closing
            # the queue no longer lists it (live)
            page.goto(base + "/console/cases")
            page.wait_for_timeout(500)
            assert page.locator(f"tr[data-case='{case_id}']").count() == 0

            # a campaign-staff user cannot open the case page
            other = browser.new_context().new_page()
            sign_in(other, base, "camp@example.org")
            resp = other.goto(f"{base}/console/cases/{case_id}")
            assert resp.status == 403
            assert "Not allowed" in other.content() and REPORT_TEXT not in other.content()
        finally:
            worker.stop()
            runner.join(15)
    assert not [e for e in errors if "Content Security Policy" in e or "Uncaught" in e], errors
