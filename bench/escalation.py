"""Escalation benchmark: how fast a report reaches the on-call phone, and how
close to its deadline a chase step fires.

    .venv/bin/python -m bench --only escalation
    .venv/bin/python -m bench.escalation [--quick]

Real processes: ``lanpya web`` (gunicorn), ``lanpya worker`` and ``lanpya
scheduler`` (leader lease + APScheduler; the chase job runs every 15 s), the
fake Twilio server, and a stand-in for Rasa + its action server that does
what ``action_open_case`` does: ``POST /internal/cases`` with the internal
token, then answers the reporter.

1. Reports (distinct senders, 2 a second) are posted as signed Twilio
   webhooks. Measured per report: webhook accepted (HTTP 200) → the on-call
   agent's alert "new case #N" received by the fake provider. Target p99 ≤ 5 s.
2. Every deadline is 1 minute (DEADLINE_*_MIN=1) and nobody acknowledges:
   at the deadline the scheduler alerts rank 2. Measured per case: deadline →
   the step-1 alert received by the fake provider. Target: every one within
   30 s (the chase job runs every 15 s).

PostgreSQL when ``BENCH_POSTGRES_URL`` or ``TEST_POSTGRES_URL`` is set, else
SQLite.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bench import Result, pct
from bench.e2e import database_url
from bench.e2e_stack import (
    ACCOUNT_SID,
    APP_BIN,
    AUTH_TOKEN,
    OUR_NUMBER,
    Proc,
    free_port,
    stack_env,
    wait_http,
    web_proc,
    worker_proc,
)

AGENT1, AGENT2, SUPERVISOR = "+959250009001", "+959250009002", "+959250009003"
REPORT = "My sister was trafficked to China, please help"
CASE_RE = re.compile(r"new case #(\d+)")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class BotStandIn:
    """Rasa's side of the worker's channel; a report opens the case over the internal API."""

    def __init__(self, app_url: str, token: str):
        self.app_url, self.token = app_url, token
        self.port = free_port()
        self.session = requests.Session()
        self.errors = 0
        self._server = make_server("127.0.0.1", self.port, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BotStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith("/conversations/"):
            return Response("{}", mimetype="application/json")(environ, start_response)
        data = request.get_json(force=True)
        reply = {"messages": [{"text": "Thank you for telling us. A hotline worker will contact you."}],
                 "intent": "report_concern", "confidence": 0.95, "language": "en", "case_id": None}
        try:
            r = requests.post(self.app_url + "/internal/cases", timeout=10,
                              headers={"Authorization": f"Bearer {self.token}"},
                              json={"contact": data["sender"], "category": "trafficking", "severity": "urgent",
                                    "source": "bot", "intent": "report_concern"})
            r.raise_for_status()
            reply["case_id"] = r.json()["case_id"]
        except requests.RequestException:
            self.errors += 1
            return Response("app unreachable", status=500)(environ, start_response)
        return Response(json.dumps(reply), mimetype="application/json")(environ, start_response)


def make_fake_twilio():
    from tests.fakes.twilio_server import FakeTwilio

    class TimedTwilio(FakeTwilio):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            #: (to, body, monotonic, utc) of every message accepted
            self.arrivals: list[tuple[str, str, float, datetime]] = []

        def _handle(self, request):
            response = super()._handle(request)
            if response.status_code == 201:
                with self._lock:
                    self.arrivals.append((request.form.get("To", ""), request.form.get("Body", ""),
                                          time.monotonic(), utcnow()))
            return response

    return TimedTwilio(ACCOUNT_SID, AUTH_TOKEN)


def setup_roster(db_url: str, env: dict) -> None:
    from lanpya import crypto
    from lanpya.config import Config
    from lanpya.db import Database
    from lanpya.models import Shift, Staff
    from lanpya.staff import add_staff

    crypto.configure(Config.from_env(env, dotenv=False))
    db = Database(db_url)
    with db.session() as s:
        a1 = add_staff(s, "a1@bench", Staff.AGENT, phone=AGENT1)
        a2 = add_staff(s, "a2@bench", Staff.AGENT, phone=AGENT2)
        sup = add_staff(s, "sup@bench", Staff.SUPERVISOR, phone=SUPERVISOR)
        for day in range(7):
            s.add(Shift(staff_id=a1.id, weekday=day, start=dtime(0, 0), end=dtime(23, 59, 59), rank=1,
                        supervisor_id=sup.id))
            s.add(Shift(staff_id=a2.id, weekday=day, start=dtime(0, 0), end=dtime(23, 59, 59), rank=2,
                        supervisor_id=sup.id))
    db.dispose()


def case_senders(db_url: str, env: dict) -> dict[int, tuple[str, datetime]]:
    """case id → (reporter's number, deadline)."""
    from sqlalchemy import select

    from lanpya import crypto
    from lanpya.config import Config
    from lanpya.db import Database
    from lanpya.models import Case, Contact

    crypto.configure(Config.from_env(env, dotenv=False))
    db = Database(db_url)
    with db.session() as s:
        rows = s.execute(select(Case.id, Contact.address, Case.deadline_at).join(Contact, Contact.id == Case.contact_id))
        out = {cid: (addr, deadline) for cid, addr, deadline in rows}
    db.dispose()
    return out


def measure(reports: int = 100, rate: float = 2.0, log=print) -> dict:
    import logging

    from lanpya.db import upgrade

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fakes' request lines
    tmp = Path(tempfile.mkdtemp(prefix="lanpya-bench-esc-"))
    db_url, drop_db = database_url(tmp)
    web_port = free_port()
    base = f"http://127.0.0.1:{web_port}"
    token = "bench-" + uuid.uuid4().hex
    fake = make_fake_twilio().start()
    bot = BotStandIn(base, token).start()
    env = stack_env(
        tmp,
        web_port,
        DATABASE_URL=db_url,
        LANPYA_INTERNAL_TOKEN=token,
        INTERNAL_URL=base,
        RASA_URL=bot.url,
        TWILIO_API_URL=fake.url,
        TWILIO_RATE="100",
        NEW_SENDER_LIMIT_PER_MIN="10000",
        DEADLINE_URGENT_MIN="1",
        DEADLINE_EMERGENCY_MIN="1",
        DEADLINE_NORMAL_MIN="1",
    )
    (tmp / "var").mkdir(parents=True, exist_ok=True)
    upgrade(db_url)
    setup_roster(db_url, env)
    procs = [web_proc(env, tmp), worker_proc(env, tmp),
             Proc("scheduler", [str(APP_BIN / "lanpya"), "scheduler", "--name", "bench-sched"], env, tmp)]
    accepted: dict[str, float] = {}
    statuses: list[int] = []
    try:
        for p in procs:
            p.start()
        wait_http(base + "/login", procs[0].popen)
        log(f"database: {db_url.split('://')[0]}; logs in {tmp}; {reports} reports at {rate:g}/s")
        validator = RequestValidator(AUTH_TOKEN)
        http = requests.Session()
        lock = threading.Lock()

        def post(i: int) -> None:
            sender = f"+9597917{i:05d}"
            form = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": ACCOUNT_SID, "From": sender,
                    "To": OUR_NUMBER, "Body": REPORT, "NumMedia": "0", "SmsStatus": "received",
                    "ApiVersion": "2010-04-01"}
            sig = validator.compute_signature(base + "/sms/twilio", form)
            r = http.post(base + "/sms/twilio", data=urlencode(form), timeout=30, headers={
                "X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"})
            with lock:
                statuses.append(r.status_code)
                if r.status_code == 200:
                    accepted[sender] = time.monotonic()

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for i in range(reports):
                pool.submit(post, i)
                time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
        # wait for step 0 of every case, then for step 1 (the deadline is 1 minute)
        deadline = time.monotonic() + 60 + 120 + reports / rate
        while time.monotonic() < deadline:
            with fake._lock:
                firsts = {m.group(1) for to, body, *_ in fake.arrivals if to == AGENT1 and (m := CASE_RE.search(body))}
                seconds = {m.group(1) for to, body, *_ in fake.arrivals if to == AGENT2 and (m := CASE_RE.search(body))}
            if len(firsts) >= reports and len(seconds) >= reports:
                break
            time.sleep(1)
        cases = case_senders(db_url, env)
        with fake._lock:
            arrivals = list(fake.arrivals)
    finally:
        for p in reversed(procs):
            p.stop()
        bot.stop()
        fake.stop()
        drop_db()
    alert_latency: list[float] = []
    chase_delay: list[float] = []
    first_at: dict[int, float] = {}
    second_at: dict[int, datetime] = {}
    for to, body, mono, wall in arrivals:
        m = CASE_RE.search(body)
        if not m:
            continue
        cid = int(m.group(1))
        if to == AGENT1:
            first_at.setdefault(cid, mono)
        elif to == AGENT2:
            second_at.setdefault(cid, wall)
    for cid, (sender, deadline_at) in cases.items():
        if cid in first_at and sender in accepted:
            alert_latency.append(first_at[cid] - accepted[sender])
        if cid in second_at and deadline_at is not None:
            chase_delay.append((second_at[cid] - deadline_at).total_seconds())
    return {"reports": reports, "accepted": len(accepted), "statuses": statuses, "cases": len(cases),
            "alert_latency": alert_latency, "chase_delay": chase_delay, "bot_errors": bot.errors, "logs": str(tmp)}


def summarise(m: dict) -> list[Result]:
    lat, chase = m["alert_latency"], m["chase_delay"]
    n = m["reports"]
    p99 = pct(lat, 99) if lat else float("inf")
    worst = max(chase) if chase else float("inf")
    return [
        Result("escalation", f"reports accepted / cases / on-call alerts at provider (of {n})", "all",
               f"{m['accepted']} / {m['cases']} / {len(lat)}",
               m["accepted"] == n and m["cases"] == n and len(lat) == n),
        Result("escalation", "report accepted → on-call alert at provider, p50 / p99", "p99 <= 5 s",
               f"{pct(lat, 50):.2f} / {p99:.2f} s" if lat else "none", p99 <= 5.0),
        Result("escalation", f"chase step 1 at provider after deadline, p50 / max ({len(chase)} cases)",
               "max <= 30 s", f"{pct(chase, 50):.1f} / {worst:.1f} s" if chase else "none",
               len(chase) == n and worst <= 30.0 and min(chase) >= 0),
    ]


def run(quick: bool = False) -> list[Result]:
    return summarise(measure(reports=20 if quick else 100))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reports", type=int, default=None)
    args = parser.parse_args()
    m = measure(reports=args.reports or (20 if args.quick else 100))
    for r in summarise(m):
        print(f"{r.figure}: {r.measured} (target {r.target}) {r.verdict}")
