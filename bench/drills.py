"""Scale and failure drills on the production topology (issue 9).

    flock /tmp/lanpya-bench.lock .venv/bin/python -m bench.drills all [--quick]
    flock /tmp/lanpya-bench.lock .venv/bin/python -m bench.drills scale|kill-worker|kill-leader|kill-rasa|
                                                             stop-postgres|stop-redis|provider-errors [--quick]
    .venv/bin/python -m bench --only drills                  # what ``make bench`` runs (= ``all``)

The stack, all real processes on 127.0.0.1, on PostgreSQL + Redis: 2 web
processes (two ``lanpya web`` gunicorns, 2 workers x 4 threads each, as in
docker-compose; the load alternates
between them, both signed for one PUBLIC_URL as behind a proxy), 2 workers,
2 schedulers (one leader), 2 Rasa servers (trained small model; SQL tracker
store in a fresh PostgreSQL database, Redis lock store) listed in the
workers' ``RASA_URL``, 1 action server; the fake Twilio (tests/fakes) in
this process. Fresh databases each run, dropped afterwards.

The load, for the whole run: signed Twilio webhooks at 20 messages/s from
1,000 contacts (round robin: one message per contact every 50 s), 20 of them
reports from 20 other contacts ("my sister was sold to China" ...), and a
50,000-contact SMS campaign fired by the scheduler leader at the start. The
campaign shares the number's send rate with the replies (TWILIO_RATE=80:
replies and alerts go first, the campaign takes the rest, ~50/s).

``all`` (and ``make bench``): one stack start-up; 150 s of clean load (the
scale figures) then, under the same load, each failure in turn with its own
window: kill -9 a worker; kill -9 the scheduler leader; kill -9 a Rasa
replica; the provider failing every send (500 and 429 in turn) for 60 s;
PostgreSQL stopped for exactly 30 s; Redis shut down for 10 s. The load runs
>= 300 s in all. Then the harness stops posting and waits for every message
to be answered. Each webhook (and each duplicate send) is counted in the
window it was posted (sent) in. ``scale`` alone runs 300 s of clean load;
each failure alone starts its own stack and runs 20 s clean, the failure,
20 s after.

Checks (bench/drill_check.py): every webhook stored and answered (lost = 0),
duplicates reported (bounded by the sends in flight at a crash), per-contact
order of Rasa answers, delayed (> 10 s) counted; every report has a case and
an on-call alert at the provider; the campaign fired once, nobody got it
twice, the number's rate held; the standby scheduler took over within 30 s
and a campaign due during the takeover fired exactly once.

A killed worker's claims stay leased: inbound 90 s (conversations.claim),
outbox 5 min (lanpya.channels.dispatch). When the load stops the harness
expires the dead worker's leases (as the clock would) and reports how many
rows were held, rather than wait 5 minutes.

PostgreSQL and Redis are restarted in ``finally`` blocks whatever happens, and
are only stopped while /tmp/lanpya-bench.lock is held (by the ``flock`` the run
is wrapped in, or taken here: ``make bench`` is not wrapped).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import itertools
import json
import os
import random
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

from bench import Result, pct
from bench.drill_check import Arrival, InRow, OutRow, Webhook, campaign_check, check
from bench.e2e import QUESTIONS
from bench.e2e_stack import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    Proc,
    actions_proc,
    base_env,
    free_port,
    kill9,
    lanpya_proc,
    rasa_replica_proc,
    train,
    wait_http,
)

AREA = "drills"
PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_DB = 7  # Rasa's lock store; away from db 0 that tests flush
REPORTS = [
    "my sister was sold to China",
    "My sister was trafficked to China, please help",
    "my daughter was sold to a man in China, help us",
]
DRILL_FIRE_BODY = "drill: a campaign due while the scheduler leader was dead"
DRILL_FIRE_CONTACTS = 20
DELAY_S = 10.0
FAILURES = ["kill-worker", "kill-leader", "kill-rasa", "provider-errors", "stop-postgres", "stop-redis"]
#: about how long each failure's window lasts (to spread the reports over the whole load)
ESTIMATE_S = {"kill-worker": 8, "kill-leader": 30, "kill-rasa": 11, "stop-postgres": 33}


def now_utc() -> datetime:
    return datetime.utcnow()


@dataclass
class Plan:
    rate: float = 20.0
    contacts: int = 1000
    reports: int = 20
    campaign: int = 50_000
    twilio_rate: float = 80.0
    clean_s: float = 150.0
    min_load_s: float = 300.0
    failures: list[str] = field(default_factory=lambda: list(FAILURES))
    provider_fault_s: float = 60.0
    pg_outage_s: float = 30.0
    redis_outage_s: float = 10.0
    after_s: float = 0.0
    drain_s: float = 120.0


def plan_for(what: str, quick: bool) -> Plan:
    if what == "all":
        if quick:
            return Plan(
                contacts=300,
                reports=6,
                campaign=10_000,
                clean_s=25,
                min_load_s=0,
                provider_fault_s=20,
                redis_outage_s=6,
                after_s=5,
                drain_s=90,
            )
        return Plan()
    if what == "scale":
        return Plan(
            failures=[],
            clean_s=60 if quick else 300,
            min_load_s=0,
            **({"contacts": 300, "reports": 6, "campaign": 10_000} if quick else {}),
        )
    # one failure alone, lighter load
    return Plan(
        rate=10,
        contacts=200,
        reports=4,
        campaign=5_000,
        twilio_rate=40,
        failures=[what],
        clean_s=20,
        min_load_s=0,
        after_s=20,
        provider_fault_s=20 if quick else 60,
        drain_s=120,
    )


# --- the fake provider -----------------------------------------------------------------------------
def make_fake():
    from tests.fakes.twilio_server import FakeTwilio

    class DrillTwilio(FakeTwilio):
        """Records (sid, to, body, when) of every message it accepted."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.arrivals: list[Arrival] = []

        def _handle(self, request):
            response = super()._handle(request)
            if response.status_code == 201:
                sid = json.loads(response.get_data())["sid"]
                with self._lock:
                    self.arrivals.append(
                        Arrival(
                            sid, request.form.get("To", ""), request.form.get("Body", ""), time.monotonic()
                        )
                    )
            return response

    return DrillTwilio(ACCOUNT_SID, AUTH_TOKEN)


# --- databases -------------------------------------------------------------------------------------
def pg_admin() -> str:
    return os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL") or PG_ADMIN_DEFAULT


def create_db(prefix: str) -> tuple[str, callable]:
    from sqlalchemy import create_engine, text

    from lanpya.db import normalise_url

    admin = pg_admin()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(normalise_url(admin), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()

    def drop() -> None:
        # a new engine: the server may have been restarted since (stop-postgres)
        engine = create_engine(normalise_url(admin), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(
                    text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        finally:
            engine.dispose()

    return admin.rsplit("/", 1)[0] + "/" + name, drop


# --- PostgreSQL and Redis control (always restored) ------------------------------------------------
BENCH_LOCK = "/tmp/lanpya-bench.lock"


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _lock_holders(path: str) -> set[int]:
    try:
        inode = os.stat(path).st_ino
        lines = open("/proc/locks").read().splitlines()
    except OSError:
        return set()
    holders = set()
    for line in lines:
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
            holders.add(int(parts[4]))
    return holders


@contextlib.contextmanager
def bench_lock():
    """Hold /tmp/lanpya-bench.lock while PostgreSQL or Redis is down (other engineers' runs use them):
    already held when we run under ``flock`` (a parent holds it); else taken here, waiting if need be."""
    if _lock_holders(BENCH_LOCK) & _ancestors():
        yield
        return
    with open(BENCH_LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pg_cluster() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def pg_ctl(action: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", pg_cluster(), "main", action],
        capture_output=True,
        text=True,
        timeout=120,
    )


def pg_up() -> bool:
    return (
        subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True).returncode == 0
    )


def ensure_pg() -> None:
    if not pg_up():
        pg_ctl("start")
        for _ in range(60):
            if pg_up():
                return
            time.sleep(0.5)


def redis_up() -> bool:
    r = subprocess.run(["redis-cli", "ping"], capture_output=True, text=True)
    return r.returncode == 0 and "PONG" in r.stdout


def redis_start() -> None:
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ],
        capture_output=True,
        timeout=30,
    )
    for _ in range(60):
        if redis_up():
            return
        time.sleep(0.25)


def ensure_redis() -> None:
    if not redis_up():
        redis_start()


# --- the stack -------------------------------------------------------------------------------------
class Stack:
    """Every process of the production topology, started once and shared by the drills."""

    def __init__(self, plan: Plan, log=print):
        self.plan = plan
        self.log = log
        self.tmp = Path(tempfile.mkdtemp(prefix="lanpya-drill-"))
        self.drops: list[callable] = []
        self.procs: dict[str, Proc] = {}
        self.fake = None
        self.generation = itertools.count(2)

    # ---
    def start(self) -> None:
        import logging

        from bench.campaigns import KEYS, add_contacts
        from bench.escalation import setup_roster
        from lanpya import crypto
        from lanpya.config import Config
        from lanpya.db import Database, upgrade

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        plan = self.plan
        self.db_url, drop = create_db("lanpya_drill")
        self.drops.append(drop)
        self.rasa_db_url, drop = create_db("lanpya_drill_rasa")
        self.drops.append(drop)
        self.fake = make_fake().start()
        self.web_ports = [free_port(), free_port()]
        self.rasa_ports = [free_port(), free_port()]
        self.action_port = free_port()
        self.public = f"http://127.0.0.1:{self.web_ports[0]}"
        (self.tmp / "var" / "spool").mkdir(parents=True, exist_ok=True)
        self.env = base_env(
            DATABASE_URL=self.db_url,
            RASA_TRACKER_URL=self.rasa_db_url,
            REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
            LANPYA_SECRET_KEY="drill-" + uuid.uuid4().hex * 2,
            LANPYA_DATA_KEY=KEYS["data"],
            LANPYA_LOOKUP_KEY=KEYS["lookup"],
            LANPYA_INTERNAL_TOKEN=KEYS["internal"],
            LANPYA_VAR_DIR=str(self.tmp / "var"),
            LANPYA_SPOOL_DIR=str(self.tmp / "var" / "spool"),
            WEB_PORT=str(self.web_ports[0]),
            RASA_PORT=str(self.rasa_ports[0]),
            ACTION_PORT=str(self.action_port),
            PUBLIC_URL=self.public,
            INTERNAL_URL=self.public,
            RASA_URL=",".join(f"http://127.0.0.1:{p}" for p in self.rasa_ports),
            ACTION_SERVER_URL=f"http://127.0.0.1:{self.action_port}/webhook",
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_FROM_NUMBER=OUR_NUMBER,
            TWILIO_API_URL=self.fake.url,
            TWILIO_RATE=f"{plan.twilio_rate:g}",
            WORKER_THREADS="16",
            HOTLINE_NUMBER="+95 1 000 000 (drill)",
            SENDER_LIMIT_PER_MIN="20",
            NEW_SENDER_LIMIT_PER_MIN="100000",
            CAMPAIGN_APPROVAL_THRESHOLD=str(10**9),
        )
        self.config = Config.from_env(self.env, dotenv=False)
        crypto.configure(self.config)
        upgrade(self.db_url)
        setup_roster(self.db_url, self.env)
        self.db = Database(self.db_url)
        t = time.monotonic()
        add_contacts(self.db, plan.campaign, distinct_addresses=True)
        self._add_drill_contacts()
        self.log(f"{plan.campaign:,} campaign contacts in {time.monotonic() - t:.0f} s; logs in {self.tmp}")
        self.log(f"model: {train(self.env).name}")
        self.start_rasa(0)
        self.procs["actions"] = actions_proc(self.env, self.tmp).start()
        for i in range(2):
            # ``lanpya web`` as docker-compose runs it: gunicorn, 2 processes x 4 threads
            self.procs[f"web-{i + 1}"] = lanpya_proc(
                "web", self.env_for(web=i), self.tmp, f"web-{i + 1}"
            ).start()
        # the second Rasa after the first made the tracker tables (two create_all at once collide)
        self._wait_tracker_tables()
        self.start_rasa(1)
        for name in ("worker-a", "worker-b"):
            self.procs[name] = lanpya_proc("worker", self.env, self.tmp, name, "--name", name).start()
        sched_env = dict(self.env, LOG_LEVEL="INFO")
        for name in ("sched-a", "sched-b"):
            self.procs[name] = lanpya_proc("scheduler", sched_env, self.tmp, name, "--name", name).start()
        for i, port in enumerate(self.web_ports):
            wait_http(f"http://127.0.0.1:{port}/login", self.procs[f"web-{i + 1}"].popen)
        wait_http(f"http://127.0.0.1:{self.action_port}/health", self.procs["actions"].popen)
        for i, port in enumerate(self.rasa_ports):
            wait_http(f"http://127.0.0.1:{port}/status", self.procs[f"rasa-{i + 1}"].popen, timeout=400)
        self.log("stack up")

    def env_for(self, web: int | None = None, rasa: int | None = None) -> dict[str, str]:
        env = dict(self.env)
        if web is not None:
            env["WEB_PORT"] = str(self.web_ports[web])
        if rasa is not None:
            env["RASA_PORT"] = str(self.rasa_ports[rasa])
            # each replica's NLG on its own web process
            env["INTERNAL_URL"] = f"http://127.0.0.1:{self.web_ports[rasa % 2]}"
        return env

    def start_rasa(self, i: int) -> Proc:
        p = rasa_replica_proc(self.env_for(rasa=i), self.tmp, f"rasa-{i + 1}").start()
        self.procs[f"rasa-{i + 1}"] = p
        return p

    def _wait_tracker_tables(self, timeout: float = 240) -> None:
        from sqlalchemy import create_engine, inspect

        from lanpya.db import normalise_url

        engine = create_engine(normalise_url(self.rasa_db_url))
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.procs["rasa-1"].popen.poll() is not None:
                    raise RuntimeError("rasa-1 exited:\n" + self.procs["rasa-1"].tail())
                if "events" in inspect(engine).get_table_names():
                    return
                time.sleep(1)
        finally:
            engine.dispose()
        raise TimeoutError("Rasa did not create its tracker tables")

    def _add_drill_contacts(self) -> None:
        """20 contacts of township "DrillFire", for the campaign due during the scheduler takeover."""
        from sqlalchemy import insert

        from bench.campaigns import CONTACT_T
        from lanpya import crypto

        ring = crypto.keyring()
        rows = [
            {
                "uuid": uuid.uuid4().hex,
                "channel": "sms",
                "address_hash": ring.lookup_hash(fire_number(i)),
                "address": ring.encrypt(fire_number(i)),
                "country": "MM",
                "timezone": "Asia/Yangon",
                "language": "en",
                "language_chosen": False,
                "encoding": "gsm",
                "township": "DrillFire",
                "roles": "[]",
                "subscribed": True,
                "opted_out": False,
                "unreachable": False,
                "created_at": datetime(2026, 1, 1),
            }
            for i in range(DRILL_FIRE_CONTACTS)
        ]
        with self.db.engine.begin() as conn:
            conn.execute(insert(CONTACT_T), rows)

    def schedule_campaign(self, township: str, bodies: dict[str, str], run_at: datetime) -> int:
        from campaigns import engine

        with self.db.session() as s:
            aud = engine.create_audience(s, f"drill-{township}", {"townships": [township]})
            c = engine.create_campaign(
                s,
                self.config,
                name=f"drill {township}",
                audience_id=aud.id,
                run_at=run_at,
                quiet_start="00:00",
                quiet_end="00:00",
                messages=[{"language": lg, "body": b} for lg, b in bodies.items()],
            )
            engine.schedule(s, self.config, c)
            return c.id

    def leader(self) -> tuple[str | None, datetime | None]:
        from sqlalchemy import select

        from lanpya.models import Lease

        with self.db.session() as s:
            row = s.execute(select(Lease.holder, Lease.expires_at).where(Lease.name == "scheduler")).first()
        return (row[0], row[1]) if row else (None, None)

    def fires(self, campaign_id: int) -> list[tuple[str, int]]:
        from sqlalchemy import select

        from lanpya.models import CampaignFire

        with self.db.session() as s:
            return [
                (f.state, f.recipients)
                for f in s.scalars(select(CampaignFire).where(CampaignFire.campaign_id == campaign_id))
            ]

    def stop(self) -> None:
        for name, p in reversed(list(self.procs.items())):
            if p.popen is not None and p.popen.poll() is not None and p.popen.returncode not in (0, -9, -15):
                self.log(f"{name} had exited with {p.popen.returncode} (see {p.log})")
        for p in reversed(list(self.procs.values())):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - stop the others whatever happens
                traceback.print_exc()
        if self.fake is not None:
            self.fake.stop()
        if getattr(self, "db", None) is not None:
            self.db.dispose()
        ensure_pg()
        for drop in self.drops:
            try:
                drop()
            except Exception:  # noqa: BLE001
                traceback.print_exc()


def fire_number(i: int) -> str:
    return f"+95928{i:07d}"


def question_number(i: int) -> str:
    return f"+95926{i:07d}"


def report_number(i: int) -> str:
    return f"+95927{i:07d}"


# --- the load --------------------------------------------------------------------------------------
class Load:
    """Signed Twilio webhooks at ``rate``/s, alternating between the web processes, until stopped."""

    def __init__(self, stack: Stack, plan: Plan, expected_s: float):
        self.stack = stack
        self.plan = plan
        self.webhooks: list[Webhook] = []
        self.reposts = 0
        self.stopping = threading.Event()
        self.validator = RequestValidator(AUTH_TOKEN)
        self._local = threading.local()
        self._lock = threading.Lock()
        n = int(plan.rate * expected_s)
        step = max(1, n // (plan.reports + 1))
        #: message index → report number
        self.report_at = {step * (k + 1): k for k in range(plan.reports)}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Load:
        self.t0 = time.monotonic()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()

    def _post(self, i: int) -> None:
        session = getattr(self._local, "s", None)
        if session is None:
            session = self._local.s = requests.Session()
        if i in self.report_at:
            k = self.report_at[i]
            sender, body, kind = report_number(k), REPORTS[k % len(REPORTS)], "report"
        else:
            sender = question_number(i % self.plan.contacts)
            body, kind = QUESTIONS[(i // self.plan.contacts) % len(QUESTIONS)], "question"
        form = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID,
            "From": sender,
            "To": OUR_NUMBER,
            "Body": body,
            "NumMedia": "0",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        sig = self.validator.compute_signature(self.stack.public + "/sms/twilio", form)
        port = self.stack.web_ports[i % 2]
        w = Webhook(form["MessageSid"], sender, time.monotonic(), kind=kind)
        # a kept-alive connection the server closed fails before the request is sent: post again,
        # with the same MessageSid (stored once whatever happens); a timeout is not retried
        for _attempt in range(3):
            try:
                r = session.post(
                    f"http://127.0.0.1:{port}/sms/twilio",
                    data=urlencode(form),
                    timeout=30,
                    headers={"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"},
                )
                w.status = r.status_code
                break
            except requests.ConnectionError:
                w.status = 0
                with self._lock:
                    self.reposts += 1
            except requests.RequestException:
                w.status = 0
                break
        w.t_ack = time.monotonic()
        with self._lock:
            self.webhooks.append(w)

    def _run(self) -> None:
        with ThreadPoolExecutor(max_workers=48) as pool:
            for i in itertools.count():
                if self.stopping.is_set():
                    break
                delay = self.t0 + i / self.plan.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self._post, i)


# --- the failures ----------------------------------------------------------------------------------
class Drills:
    """Each failure: break, wait, restore; returns what it saw (for the report)."""

    def __init__(self, stack: Stack, plan: Plan, log=print):
        self.stack, self.plan, self.log = stack, plan, log
        self.killed_workers: list[str] = []
        self.fire_campaign: int | None = None

    def run(self, name: str) -> dict:
        return getattr(self, name.replace("-", "_"))()

    def kill_worker(self) -> dict:
        from sqlalchemy import func, select

        from lanpya.models import Inbound, Outbox

        name = next(n for n in ("worker-a", "worker-b") if self.stack.procs[n].popen.poll() is None)
        kill9(self.stack.procs[name])
        self.killed_workers.append(name)
        with self.stack.db.session() as s:
            inbound = (
                s.scalar(
                    select(func.count(Inbound.id)).where(
                        Inbound.state == Inbound.PROCESSING, Inbound.lease_owner == name
                    )
                )
                or 0
            )
            out = (
                s.scalar(
                    select(func.count(Outbox.id)).where(
                        Outbox.state == Outbox.SENDING, Outbox.lease_owner == name
                    )
                )
                or 0
            )
        time.sleep(3)
        new = f"{name}-{next(self.stack.generation)}"
        self.stack.procs[new] = lanpya_proc(
            "worker", self.stack.env, self.stack.tmp, new, "--name", new
        ).start()
        time.sleep(5)
        return {"killed": name, "inbound in flight": inbound, "outbox in flight": out, "replaced by": new}

    def kill_leader(self) -> dict:
        before, _ = self.stack.leader()
        if before is None:
            return {"error": "no leader"}
        # a campaign due 8 s after the kill, during the takeover; its job stored by the leader first
        run_at = now_utc() + timedelta(seconds=14)
        self.fire_campaign = self.stack.schedule_campaign("DrillFire", {"en": DRILL_FIRE_BODY}, run_at)
        time.sleep(6)
        kill9(self.stack.procs[before])
        t_kill = time.monotonic()
        took = None
        while time.monotonic() - t_kill < 60:
            holder, expires = self.stack.leader()
            if holder and holder != before and expires and expires > now_utc():
                took = time.monotonic() - t_kill
                break
            time.sleep(0.5)
        new = f"{before}-{next(self.stack.generation)}"
        env = dict(self.stack.env, LOG_LEVEL="INFO")
        self.stack.procs[new] = lanpya_proc("scheduler", env, self.stack.tmp, new, "--name", new).start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not self.stack.fires(self.fire_campaign):
            time.sleep(0.5)
        return {
            "killed": before,
            "new leader": self.stack.leader()[0],
            "takeover_s": took,
            "fires": self.stack.fires(self.fire_campaign),
        }

    def kill_rasa(self) -> dict:
        p = self.stack.procs["rasa-2"]
        kill9(p)
        time.sleep(10)
        self.stack.start_rasa(1)  # comes back in the background (model load), its contacts return then
        return {"killed": "rasa-2", "restarted": True}

    def provider_errors(self) -> dict:
        s = self.plan.provider_fault_s
        before = len(self.stack.fake.requests)
        self.stack.fake.fail_for(s)
        time.sleep(s)
        with self.stack.fake._lock:
            failed = sum(1 for _m, _p, code in self.stack.fake.requests[before:] if code in (500, 429))
        return {"fault_s": s, "sends refused (500/429)": failed}

    def stop_postgres(self) -> dict:
        from sqlalchemy import func, select

        from lanpya.models import Outbox

        s = self.plan.pg_outage_s
        with self.stack.db.session() as session:
            sending = session.scalar(select(func.count(Outbox.id)).where(Outbox.state == Outbox.SENDING)) or 0
        with bench_lock():
            try:
                r = pg_ctl("stop")
                if r.returncode != 0:
                    return {"error": r.stderr[-300:]}
                t = time.monotonic()
                time.sleep(s)
                down = time.monotonic() - t
            finally:
                r = pg_ctl("start")
                ensure_pg()
                self.stack.db.engine.dispose()  # our own connections died with the server
        return {"outage_s": round(down, 1), "restart": r.returncode, "sends in flight at the stop": sending}

    def stop_redis(self) -> dict:
        s = self.plan.redis_outage_s
        with bench_lock():
            try:
                subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True, timeout=30)
                time.sleep(s)
            finally:
                redis_start()
        return {"outage_s": s, "back": redis_up()}


# --- one run ---------------------------------------------------------------------------------------
def collect(stack: Stack) -> tuple[list[InRow], list[OutRow]]:
    from sqlalchemy import select

    from lanpya.models import Inbound, Outbox

    with stack.db.session() as s:
        inbound = [
            InRow(i, sid, st)
            for i, sid, st in s.execute(select(Inbound.id, Inbound.provider_id, Inbound.state))
        ]
        outbox = [
            OutRow(*row)
            for row in s.execute(
                select(
                    Outbox.id,
                    Outbox.kind,
                    Outbox.inbound_id,
                    Outbox.seq,
                    Outbox.dedupe_key,
                    Outbox.provider_id,
                    Outbox.state,
                ).where((Outbox.provider_id.is_not(None)) | (Outbox.kind != "campaign"))
            )
        ]
    return inbound, outbox


def expire_dead_leases(stack: Stack, names: list[str]) -> tuple[int, int]:
    """Expire the leases a killed worker held (they would run out by themselves: 90 s / 5 min)."""
    from sqlalchemy import update

    from lanpya.models import Inbound, Outbox

    if not names:
        return 0, 0
    past = now_utc() - timedelta(seconds=1)
    with stack.db.session() as s:
        i = (
            s.execute(
                update(Inbound)
                .where(Inbound.state == Inbound.PROCESSING, Inbound.lease_owner.in_(names))
                .values(lease_until=past)
            ).rowcount
            or 0
        )
        o = (
            s.execute(
                update(Outbox)
                .where(Outbox.state == Outbox.SENDING, Outbox.lease_owner.in_(names))
                .values(lease_until=past)
            ).rowcount
            or 0
        )
    return i, o


def pending(stack: Stack) -> tuple[int, int]:
    from sqlalchemy import func, select

    from lanpya.models import Inbound, Outbox

    with stack.db.session() as s:
        i = s.scalar(
            select(func.count(Inbound.id)).where(Inbound.state.in_((Inbound.QUEUED, Inbound.PROCESSING)))
        )
        o = s.scalar(
            select(func.count(Outbox.id)).where(
                Outbox.kind != "campaign", Outbox.state.in_((Outbox.QUEUED, Outbox.SENDING))
            )
        )
    return i or 0, o or 0


def report_cases(stack: Stack) -> dict[str, list[int]]:
    from sqlalchemy import select

    from lanpya.models import Case, Contact

    with stack.db.session() as s:
        rows = s.execute(select(Contact.address, Case.id).join(Case, Case.contact_id == Contact.id)).all()
    out: dict[str, list[int]] = {}
    for addr, cid in rows:
        out.setdefault(addr, []).append(cid)
    return out


def run_drills(what: str, quick: bool, log=print, overrides: dict | None = None) -> dict:
    plan = plan_for(what, quick)
    for key, value in (overrides or {}).items():
        setattr(plan, key, value)
    stack = Stack(plan, log)
    drills = Drills(stack, plan, log)
    info: dict = {"what": what, "quick": quick, "plan": plan, "drills": {}, "load_before": os.getloadavg()}
    segments: list[tuple[str, float, float]] = []
    load = None
    started = time.monotonic()
    try:
        ensure_pg()
        ensure_redis()
        t = time.monotonic()
        stack.start()
        info["startup_s"] = time.monotonic() - t
        from bench.campaigns import BODIES

        windows = {
            "provider-errors": plan.provider_fault_s,
            "stop-redis": plan.redis_outage_s + 1,
            **ESTIMATE_S,
        }
        expected = max(plan.min_load_s, plan.clean_s + sum(windows[f] for f in plan.failures) + plan.after_s)
        load = Load(stack, plan, expected).start()
        info["campaign_id"] = (
            stack.schedule_campaign("Myitkyina", BODIES, now_utc()) if plan.campaign else None
        )
        t0 = load.t0
        time.sleep(max(0.0, t0 + plan.clean_s - time.monotonic()))
        segments.append(("clean", float("-inf"), time.monotonic()))
        for name in plan.failures:
            start = time.monotonic()
            log(f"[{start - t0:5.0f} s] {name} ...")
            try:
                info["drills"][name] = drills.run(name)
            except Exception as exc:  # noqa: BLE001 - report it, restore, go on
                traceback.print_exc()
                info["drills"][name] = {"error": repr(exc)[:200]}
            end = time.monotonic()
            segments.append((name, start, end))
            log(f"[{end - t0:5.0f} s] {name}: {info['drills'][name]}")
        remaining = t0 + max(plan.min_load_s, time.monotonic() - t0 + plan.after_s) - time.monotonic()
        time.sleep(max(0.0, remaining))
        t_stop = time.monotonic()
        load.stop()
        info["load_s"] = t_stop - t0
        info["load_at_end"] = os.getloadavg()
        # the last window runs to the end of the drain
        if len(segments) > 1:
            name, start, _ = segments[-1]
            segments[-1] = (name, start, float("inf"))
        else:
            segments[-1] = ("clean", float("-inf"), float("inf"))
        held = expire_dead_leases(stack, drills.killed_workers)
        info["dead leases expired (inbound, outbox)"] = held
        # wait for every webhook to be answered; give up when nothing moves for 45 s
        deadline = time.monotonic() + plan.drain_s
        last, still = None, time.monotonic()
        while time.monotonic() < deadline:
            p = pending(stack)
            if p == (0, 0):
                break
            if p != last:
                last, still = p, time.monotonic()
            elif time.monotonic() - still > 45:
                break
            time.sleep(1)
        info["drain_s"] = time.monotonic() - t_stop
        # stop the workers cleanly: sends in flight finish and record their outcome
        for name, p in stack.procs.items():
            if name.startswith("worker"):
                p.stop(timeout=30)
        info["pending_at_end"] = pending(stack)
        inbound, outbox = collect(stack)
        with stack.fake._lock:
            arrivals = list(stack.fake.arrivals)
        info["cases"] = report_cases(stack)
        info["campaign_fires"] = stack.fires(info["campaign_id"]) if info["campaign_id"] else []
        if drills.fire_campaign is not None:
            info["drill_fire_fires"] = stack.fires(drills.fire_campaign)
        info["webhooks"] = list(load.webhooks)
        info["reposts"] = load.reposts
        info["arrivals"] = arrivals
        info["inbound"], info["outbox"] = inbound, outbox
        info["segments"] = segments
        info["t0"], info["clean_end"] = t0, segments[0][2] if len(segments) > 1 else t_stop
        info["logs"] = str(stack.tmp)
    finally:
        if load is not None and not load.stopping.is_set():
            load.stop()
        try:
            ensure_pg()
            ensure_redis()
        finally:
            stack.stop()
    info["elapsed_s"] = time.monotonic() - started
    return info


# --- the verdicts ----------------------------------------------------------------------------------
def summarise(info: dict) -> list[Result]:
    from bench.campaigns import BODIES
    from bench.escalation import AGENT1, CASE_RE

    plan: Plan = info["plan"]
    webhooks: list[Webhook] = info["webhooks"]
    arrivals: list[Arrival] = info["arrivals"]
    bodies = set(BODIES.values()) | {DRILL_FIRE_BODY}
    counts = check(
        webhooks,
        info["inbound"],
        info["outbox"],
        arrivals,
        segments=info["segments"],
        campaign_bodies=bodies,
        delay_s=DELAY_S,
    )
    info["counts"] = counts
    la = info.get("load_at_end", (float("nan"),) * 3)
    load_note = f"load avg {la[0]:.1f}"
    results: list[Result] = []
    t0, clean_end = info["t0"], info["clean_end"]
    clean = counts.get("clean")
    # --- the scale figures, over the clean window
    clean_w = [w for w in webhooks if w.t_send < clean_end]
    if clean is not None and clean_w:
        e2e, ack = clean.e2e, clean.ack
        span = clean_end - t0
        answered_in = len(e2e)
        results += [
            Result(
                AREA,
                f"topology: 2 web, 2 workers, 2 schedulers, 2 Rasa (PG tracker, Redis lock), "
                f"1 actions; startup {info.get('startup_s', 0):.0f} s",
                "-",
                f"{'quick, ' if info['quick'] else ''}{len(webhooks)} webhooks over {info['load_s']:.0f} s, "
                f"drain {info['drain_s']:.0f} s, whole drill {info['elapsed_s'] / 60:.1f} min ({load_note}); "
                f"{info.get('reposts', 0)} posts repeated after a dropped connection",
                None,
            ),
            Result(
                AREA,
                f"scale: inbound posted / answered, {plan.rate:g}/s from {plan.contacts} contacts, "
                f"clean {span:.0f} s",
                "all",
                f"{clean.sent} / {answered_in} ({clean.sent / span:.1f}/s posted)",
                answered_in == clean.sent,
            ),
            Result(
                AREA,
                "scale: throughput, inbound answered per second within the clean window",
                "-",
                f"{answered_within(info, clean_end):.1f}/s",
                None,
            ),
            Result(
                AREA,
                "scale: end-to-end p50 / p99 (webhook → first reply at provider)",
                "-",
                f"{pct(e2e, 50) * 1000:.0f} / {pct(e2e, 99) * 1000:.0f} ms",
                None,
            ),
            Result(
                AREA,
                "scale: webhook ack p99 (2 web processes)",
                "<= 50 ms",
                f"{pct(ack, 99) * 1000:.1f} ms",
                pct(ack, 99) <= 0.05,
            ),
        ]
    # campaign: the number's rate over the clean window, after the fire
    camp = [a for a in arrivals if a.body in BODIES.values()]
    if camp:
        c_start = min(a.t for a in camp)
        c_end = clean_end if clean_end > c_start + 10 else max(a.t for a in camp)
        window = max(c_end - c_start, 1e-9)
        n_camp = sum(1 for a in camp if c_start <= a.t < c_end)
        n_all = sum(1 for a in arrivals if c_start <= a.t < c_end)
        total_rate = n_all / window
        sent, recipients, twice = campaign_check(arrivals, set(BODIES.values()))
        fires = info.get("campaign_fires", [])
        results += [
            Result(
                AREA,
                f"campaign ({plan.campaign:,} contacts): rate achieved, {window:.0f} s "
                f"(TWILIO_RATE {plan.twilio_rate:g}, replies first)",
                "SMS total within 10% of the rate",
                f"campaign {n_camp / window:.1f}/s; all SMS {total_rate:.1f}/s",
                abs(total_rate - plan.twilio_rate) <= 0.1 * plan.twilio_rate,
            ),
            Result(
                AREA,
                "campaign: fires / sent / recipients / got it twice",
                "1 fire, nobody twice" + (" (crashes: see duplicates)" if plan.failures else ""),
                f"{len(fires)} / {sent} / {recipients} / {twice}",
                len(fires) == 1 and (twice == 0 or bool(plan.failures)),
            ),
        ]
    elif plan.campaign:
        results.append(Result(AREA, "campaign sent", "> 0", "nothing reached the provider", False))
    # reports → cases → on-call alerts
    reports = [w for w in webhooks if w.kind == "report"]
    cases = info["cases"]
    alerted = {int(m.group(1)) for a in arrivals if a.to == AGENT1 and (m := CASE_RE.search(a.body))}
    with_case = [w for w in reports if cases.get(w.sender)]
    with_alert = [w for w in with_case if any(c in alerted for c in cases[w.sender])]
    results.append(
        Result(
            AREA,
            "reports: sent / with a case / on-call alert at provider",
            "all",
            f"{len(reports)} / {len(with_case)} / {len(with_alert)}",
            len(reports) == len(with_case) == len(with_alert) and len(reports) > 0,
        )
    )
    # every window
    for name, c in counts.items():
        if name == "all":
            continue
        extra = ""
        d = info["drills"].get(name, {})
        ok = c.lost == 0 and c.unanswered == 0 and c.order_violations == 0
        if name == "kill-worker":
            extra = f"; in flight at the kill: {d.get('inbound in flight')} inbound, {d.get('outbox in flight')} sends"
        elif name == "kill-leader":
            took = d.get("takeover_s")
            fires = info.get("drill_fire_fires", [])
            got = Counter(a.to for a in arrivals if a.body == DRILL_FIRE_BODY)
            extra = (
                (f"; takeover {took:.1f} s" if took is not None else "; NO takeover")
                + f"; campaign due meanwhile: {len(fires)} fire, {len(got)}/{DRILL_FIRE_CONTACTS} got it, "
                f"{sum(1 for n in got.values() if n > 1)} twice"
            )
            # its 20 rows queue behind the big campaign's backlog (same priority): fired once with
            # 20 rows and nobody twice is the check; how many were sent by the end is reported
            ok = (
                ok
                and took is not None
                and took <= 30
                and len(fires) == 1
                and fires[0][1] == DRILL_FIRE_CONTACTS
                and max(got.values(), default=0) <= 1
            )
        elif name == "stop-postgres":
            extra = (
                f"; outage {d.get('outage_s')} s; acked during it {c.acked}/{c.sent}; "
                f"{d.get('sends in flight at the stop')} sends in flight at the stop"
            )
            ok = ok and c.acked == c.sent
        elif name == "provider-errors":
            extra = f"; {d.get('sends refused (500/429)')} sends refused over {d.get('fault_s')} s"
        elif name == "clean":
            ok = ok and c.duplicated == 0
        # a crash's repeated sends reach the provider when its leases run out (at the end):
        # duplicates are judged once, against everything in flight at the crashes, below
        if c.reasons:
            extra += f"; lost: {dict(c.reasons)}"
        if "error" in d:
            extra += f"; error {d['error'][:60]}"
            ok = False
        results.append(
            Result(
                AREA,
                f"{name}: lost / unanswered / duplicated / out of order / delayed >{DELAY_S:g} s",
                "0 lost",
                f"{c.lost} / {c.unanswered} / {c.duplicated} / {c.order_violations} / "
                f"{c.delayed} of {c.sent}, e2e max {max(c.e2e, default=0):.0f} s{extra}",
                ok,
            )
        )
    # duplicates, all windows together, against the sends in flight at the crashes
    in_flight = sum(
        info["drills"].get(n, {}).get(k, 0)
        for n, k in (("kill-worker", "outbox in flight"), ("stop-postgres", "sends in flight at the stop"))
    )
    conv_dup = counts["all"].duplicated
    camp_rep = campaign_check(arrivals, bodies)[2]
    camp_extra = sum(n - 1 for n in Counter(a.to for a in arrivals if a.body in bodies).values() if n > 1)
    clean_dup = counts["clean"].duplicated if "clean" in counts else 0
    if plan.failures:
        results.append(
            Result(
                AREA,
                "duplicates: replies + campaign messages sent twice (recipients)",
                "<= sends in flight at the crashes",
                f"{conv_dup} + {camp_extra} ({camp_rep} recipients); in flight at the kill/outage {in_flight}; "
                f"in the clean window {clean_dup}",
                conv_dup + camp_extra <= in_flight and clean_dup == 0,
            )
        )
    held = info.get("dead leases expired (inbound, outbox)")
    if held and any(held):
        results.append(
            Result(
                AREA,
                "killed worker's claims still leased when the load stopped (inbound, sends)",
                "-",
                f"{held[0]}, {held[1]} (expired by the harness; would wait 90 s / 5 min)",
                None,
            )
        )
    return results


def answered_within(info: dict, end: float) -> float:
    """Inbound messages whose first reply reached the provider between the load's start and ``end``, per second."""
    t0 = info["t0"]
    first: dict[int, float] = {}
    arrived = {a.sid: a.t for a in info["arrivals"]}
    for r in info["outbox"]:
        if r.inbound_id is not None and r.kind != "campaign" and r.provider_id in arrived:
            t = arrived[r.provider_id]
            first[r.inbound_id] = min(t, first.get(r.inbound_id, t))
    return sum(1 for t in first.values() if t0 <= t < end) / max(end - t0, 1e-9)


def run(quick: bool = False) -> list[Result]:
    return summarise(run_drills("all", quick))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drills")
    parser.add_argument("what", nargs="?", default="all", choices=["all", "scale", *FAILURES])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--rate", type=float, help="inbound messages a second (default 20; 10 for one failure)"
    )
    parser.add_argument("--campaign", type=int, help="campaign contacts (default 50,000; 0: no campaign)")
    parser.add_argument("--twilio-rate", type=float, help="TWILIO_RATE (default 80)")
    args = parser.parse_args()
    overrides = {
        k: v
        for k, v in (("rate", args.rate), ("campaign", args.campaign), ("twilio_rate", args.twilio_rate))
        if v is not None
    }
    info = run_drills(args.what, args.quick, overrides=overrides)
    from bench.__main__ import table

    results = summarise(info)
    print(table(results))
    for name, c in info["counts"].items():
        print(f"{name}: {c.line()}")
        if c.lost_sids:
            print(f"  lost: {dict(c.reasons)}; sids (first 5): {c.lost_sids[:5]}")
    print("drills:", {k: v for k, v in info["drills"].items()})
    print(
        f"pending at end: {info['pending_at_end']}; logs: {info['logs']}; load avg before "
        f"{info['load_before'][0]:.1f}, at end {info['load_at_end'][0]:.1f}"
    )
    raise SystemExit(0 if all(r.passed is not False for r in results) else 1)


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    random.seed(9)
    main()
