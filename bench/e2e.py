"""End-to-end benchmark of the conversation path, and Rasa's own Twilio
connector side by side (same Rasa process, same model, same load).

    .venv/bin/python -m bench --only e2e          # 20 msg/s for 60 s each side
    .venv/bin/python -m bench.e2e --quick         # 15 s each side, table only

Ours: signed Twilio webhooks → gunicorn (``lanpya web``: verify, persist,
204-free TwiML) → ``lanpya worker`` (claim in order → Rasa custom channel →
outbox → the real twilio client) → fake Twilio. End-to-end = from sending the
webhook to the fake provider receiving the first reply to that sender.

Theirs: the same form posted to Rasa's ``/webhooks/twilio/webhook`` (no
signature check, no dedup, nothing persisted); Rasa answers the webhook only
after it has processed the message and called Twilio itself.

Each sender sends one message every 10 s (200 senders at 20 msg/s), so a
reply belongs to the latest message of its sender.

Settings for the run (reported): PostgreSQL when ``TEST_POSTGRES_URL`` or
``BENCH_POSTGRES_URL`` is set (a fresh database), else SQLite; TWILIO_RATE=100
(a long code sends ~1/s; short codes and messaging services far more: the
rate is the operator's, not the engine's); WORKER_THREADS=32 (Rasa calls in
flight from the one worker process: Rasa overlaps its NLG and tracker I/O, so
its throughput grows with the calls in flight).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import select
import socket
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

from bench import Result, pct
from bench.e2e_stack import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    ROOT,
    actions_proc,
    cpu_seconds,
    free_port,
    postgres_cpu_seconds,
    rasa_proc,
    stack_env,
    train,
    wait_http,
    web_proc,
    worker_proc,
)

#: how long after the last webhook replies are still awaited, each side (the
#: full run must fit in 3 minutes of `make bench`'s 20); what comes later is
#: not lost (the inbound states count it) but is not "answered" here
DRAIN_S = 10.0

#: what people ask (none of it is a trafficking report: no case, no alert traffic)
QUESTIONS = [
    "hello",
    "how can I go to thailand legally",
    "what documents do I need to work in malaysia",
    "is it safe to pay a broker fee",
    "what are my rights at work",
    "where is the migrant resource centre",
    "thank you",
    "menu",
    "mingalarbar",
    "thailand ko thwar chin tal",
]


@dataclass
class Sent:
    sender: str
    text: str
    t_send: float
    t_ack: float = 0.0
    status: int = 0
    t_reply: float | None = None


@dataclass
class Side:
    name: str
    sent: list[Sent] = field(default_factory=list)
    elapsed: float = 0.0
    planned: float = 0.0  # the load's planned duration (rate x duration messages)

    def acks(self) -> list[float]:
        return [s.t_ack - s.t_send for s in self.sent if s.status]

    def e2e(self) -> list[float]:
        return [s.t_reply - s.t_send for s in self.sent if s.t_reply is not None]

    def lost(self) -> int:
        return sum(1 for s in self.sent if s.t_reply is None)

    def throughput(self) -> float:
        """Messages answered (within DRAIN_S of the load's end) per second of load.

        Both sides get the same load for the same planned time, so both are divided by
        it: a side that keeps up scores the offered rate, one that falls behind less.
        (Until 2026-11-25 20:20 it was answered / (last reply - first send): when both
        kept up, the side with the slower *last* reply lost by a hair.)"""
        done = sum(1 for s in self.sent if s.t_reply is not None)
        return done / self.planned if self.planned else 0.0


def make_fake_twilio():
    from tests.fakes.twilio_server import FakeTwilio

    class TimedTwilio(FakeTwilio):
        """Records when each message reached "the provider"."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.arrivals: list[tuple[str, float]] = []

        def _handle(self, request):
            response = super()._handle(request)
            if response.status_code == 201:
                with self._lock:
                    self.arrivals.append((request.form.get("To", ""), time.monotonic()))
            return response

    return TimedTwilio(ACCOUNT_SID, AUTH_TOKEN)


class FormPoster:
    """A thin keep-alive HTTP/1.1 client for one thread: POSTs a form, returns the status.

    The acknowledgement time is then the server's, not the client library's:
    ``requests`` added 2-4 ms a call on this 2-core machine (3.7 ms p50
    between the client's time and gunicorn's own request time, 23:05 UTC
    2026-11-25), the same constant on both sides, which pulled the ack ratio
    toward 1. A connection the server has closed while idle (gunicorn's
    keep-alive is 2 s) is noticed before the request is sent, as urllib3 does,
    so no POST is ever sent twice."""

    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.path = parts.path + ("?" + parts.query if parts.query else "")
        self.conn: http.client.HTTPConnection | None = None

    def _fresh(self) -> http.client.HTTPConnection:
        conn = self.conn
        if conn is not None and conn.sock is not None:
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if readable:  # idle and readable: the server closed it (EOF)
                conn.close()
                conn = None
        if conn is None or conn.sock is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = conn
        return conn

    def post(self, form: dict, headers: dict) -> int:
        conn = self._fresh()
        try:
            conn.request(
                "POST",
                self.path,
                urllib.parse.urlencode(form).encode(),
                {"Content-Type": "application/x-www-form-urlencoded", **headers},
            )
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.conn = None
            raise
        if response.will_close:
            conn.close()
            self.conn = None
        return response.status


def drive(
    url: str, signed_base: str | None, senders: list[str], rate: float, duration: float, tag: str
) -> Side:
    """POST ``rate`` messages a second for ``duration`` seconds; returns what was sent."""
    side = Side(tag, planned=duration)
    validator = RequestValidator(AUTH_TOKEN)
    local = threading.local()
    lock = threading.Lock()
    n_total = int(rate * duration)
    seq = itertools.count()

    def post(i: int, t_planned: float) -> None:
        poster = getattr(local, "poster", None)
        if poster is None:
            poster = local.poster = FormPoster(url)
        sender = senders[i % len(senders)]
        text = QUESTIONS[(i // len(senders)) % len(QUESTIONS)]
        form = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID,
            "From": sender,
            "To": OUR_NUMBER,
            "Body": text,
            "NumMedia": "0",
        }
        headers = {}
        if signed_base is not None:
            headers["X-Twilio-Signature"] = validator.compute_signature(signed_base + "/sms/twilio", form)
        record = Sent(sender, text, time.monotonic())
        try:
            record.status = poster.post(form, headers)
        except (OSError, http.client.HTTPException):
            record.status = 0
        record.t_ack = time.monotonic()
        with lock:
            side.sent.append(record)
        next(seq)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=48) as pool:
        for i in range(n_total):
            t = start + i / rate
            delay = t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, i, t)
    side.elapsed = time.monotonic() - start
    return side


def match_replies(side: Side, arrivals: list[tuple[str, float]]) -> None:
    """Each sent message gets the first reply to its sender after it was sent
    (and before that sender's next message)."""
    by_sender: dict[str, list[float]] = {}
    for to, t in arrivals:
        by_sender.setdefault(to, []).append(t)
    sends: dict[str, list[Sent]] = {}
    for s in side.sent:
        sends.setdefault(s.sender, []).append(s)
    for sender, items in sends.items():
        items.sort(key=lambda s: s.t_send)
        times = sorted(by_sender.get(sender, []))
        for k, s in enumerate(items):
            upper = items[k + 1].t_send if k + 1 < len(items) else float("inf")
            s.t_reply = next((t for t in times if s.t_send <= t < upper), None)


def wait_replies(side: Side, fake, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with fake._lock:
            arrivals = list(fake.arrivals)
        match_replies(side, arrivals)
        if side.lost() == 0:
            return
        time.sleep(0.5)


def database_url(tmp: Path) -> tuple[str, callable]:
    admin = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    if not admin:
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    from sqlalchemy import create_engine, text

    from lanpya.db import normalise_url

    name = f"lanpya_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(normalise_url(admin), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(
                text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        engine.dispose()

    return admin.rsplit("/", 1)[0] + "/" + name, drop


def count_states(db_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, func, select

    from lanpya.db import normalise_url
    from lanpya.models import Inbound

    engine = create_engine(normalise_url(db_url))
    with engine.connect() as conn:
        rows = conn.execute(select(Inbound.state, func.count()).group_by(Inbound.state)).all()
    engine.dispose()
    return {state: n for state, n in rows}


def cpu_snapshot(procs, db_url: str) -> dict[str, float]:
    """CPU seconds so far of each process (with its children), PostgreSQL's
    backends for the bench database, and this process (driver + fake Twilio)."""
    out = {p.name: cpu_seconds(p.popen.pid) for p in procs if p.popen is not None and p.popen.poll() is None}
    if db_url.startswith("postgresql"):
        out["postgres"] = postgres_cpu_seconds(db_url.rsplit("/", 1)[1])
    out["bench"] = time.process_time()
    return out


def cpu_per_message(before: dict[str, float], after: dict[str, float], messages: int) -> dict[str, float]:
    """CPU milliseconds per message, per process, between two snapshots."""
    n = max(messages, 1)
    return {k: (after[k] - before[k]) * 1000 / n for k in after if k in before}


def measure(rate: float = 20.0, duration: float = 60.0, log=print) -> dict:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake's request lines

    tmp = Path(tempfile.mkdtemp(prefix="lanpya-bench-"))
    db_url, drop_db = database_url(tmp)
    web_port, rasa_port, action_port = free_port(), free_port(), free_port()
    fake = make_fake_twilio().start()
    env = stack_env(
        tmp,
        web_port,
        DATABASE_URL=db_url,
        RASA_PORT=str(rasa_port),
        ACTION_PORT=str(action_port),
        RASA_URL=f"http://127.0.0.1:{rasa_port}",
        ACTION_SERVER_URL=f"http://127.0.0.1:{action_port}/webhook",
        INTERNAL_URL=f"http://127.0.0.1:{web_port}",
        RASA_TRACKER_URL=f"sqlite:///{tmp / 'tracker.db'}",
        TWILIO_API_URL=fake.url,
        TWILIO_RATE="100",
        WORKER_THREADS="32",
        SENDER_LIMIT_PER_MIN="20",
        NEW_SENDER_LIMIT_PER_MIN="1000",
        RASA_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        RASA_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        RASA_TWILIO_NUMBER=OUR_NUMBER,
        BENCH_TWILIO_API_URL=fake.url,
    )
    (tmp / "var").mkdir(parents=True, exist_ok=True)
    from lanpya.db import upgrade

    upgrade(db_url)  # before the worker starts (``lanpya web`` would do it too)
    log(f"model: {train(env).name}; database: {db_url.split('://')[0]}; logs in {tmp}")
    procs = [
        rasa_proc(env, tmp, fake_twilio=True),
        actions_proc(env, tmp),
        web_proc(env, tmp),
        worker_proc(env, tmp),
    ]
    try:
        for p in procs:
            p.start()
        wait_http(f"http://127.0.0.1:{web_port}/", procs[2].popen)
        wait_http(f"http://127.0.0.1:{action_port}/health", procs[1].popen)
        wait_http(f"http://127.0.0.1:{rasa_port}/status", procs[0].popen, timeout=300)
        ours_url = f"http://127.0.0.1:{web_port}/sms/twilio"
        theirs_url = f"http://127.0.0.1:{rasa_port}/webhooks/twilio/webhook"
        signed = f"http://127.0.0.1:{web_port}"
        # warm up both paths (model, NLG, connections), not measured
        warm = drive(ours_url, signed, [f"+95925{i:07d}" for i in range(900, 905)], 5, 1, "warm")
        drive(theirs_url, None, [f"+95926{i:07d}" for i in range(900, 905)], 5, 1, "warm")
        wait_replies(warm, fake, 30)
        # the floor: Rasa alone, one message at a time, through the custom channel
        alone = []
        for i in range(20):
            t0 = time.monotonic()
            requests.post(
                f"http://127.0.0.1:{rasa_port}/webhooks/lanpya/webhook",
                timeout=60,
                json={
                    "sender": f"alone{i}",
                    "message": QUESTIONS[i % len(QUESTIONS)],
                    "metadata": {"language": "en", "channel": "sms", "risk": None},
                },
            )
            alone.append(time.monotonic() - t0)
        senders = max(1, int(rate * 10))
        log(f"ours: {rate:g} msg/s for {duration:g} s ...")
        cpu0 = cpu_snapshot(procs, db_url)
        ours = drive(ours_url, signed, [f"+95925{i:07d}" for i in range(senders)], rate, duration, "ours")
        wait_replies(ours, fake, DRAIN_S)
        cpu_ours = cpu_per_message(cpu0, cpu_snapshot(procs, db_url), len(ours.sent))
        states = count_states(db_url)
        # theirs gets Rasa to itself: our worker stops first (the web app stays: it is
        # Rasa's NLG server for both)
        procs[3].stop()
        log(f"theirs: {rate:g} msg/s for {duration:g} s ...")
        cpu0 = cpu_snapshot(procs, db_url)
        theirs = drive(theirs_url, None, [f"+95926{i:07d}" for i in range(senders)], rate, duration, "theirs")
        wait_replies(theirs, fake, DRAIN_S)
        cpu_theirs = cpu_per_message(cpu0, cpu_snapshot(procs, db_url), len(theirs.sent))
    finally:
        for p in procs:
            if p.popen is not None and p.popen.poll() is not None:
                log(f"{p.name} had exited with {p.popen.returncode} (see {p.log})")
        for p in reversed(procs):
            p.stop()
        fake.stop()
        drop_db()
    load = os.getloadavg()
    return {
        "ours": ours,
        "theirs": theirs,
        "states": states,
        "logs": str(tmp),
        "alone": alone,
        "load": load,
        "cpu": {"ours": cpu_ours, "theirs": cpu_theirs},
    }


def late(seconds: float) -> str:
    return (
        f"> {DRAIN_S:g} s after the load (unanswered)"
        if seconds == float("inf")
        else f"{seconds * 1000:.0f} ms"
    )


def cpu_line(cpu: dict[str, float]) -> str:
    parts = [f"{k} {v:.0f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.5]
    return f"{sum(cpu.values()):.0f} ms (" + ", ".join(parts) + ")"


def summarise(m: dict) -> list[Result]:
    ours: Side = m["ours"]
    theirs: Side = m["theirs"]
    o_ack, t_ack = ours.acks(), theirs.acks()
    o_e2e, t_e2e = ours.e2e(), theirs.e2e()
    # percentiles over every message: one not answered within DRAIN_S counts as slower than all
    o_all = o_e2e + [float("inf")] * ours.lost()
    not_done = sum(n for s, n in m["states"].items() if s not in ("done", "handoff"))
    failed = m["states"].get("failed", 0)
    stored = sum(m["states"].values()) - 5  # less the 5 warm-up messages
    rejected = sum(1 for s in ours.sent if s.status != 200)
    ack_ratio = pct(o_ack, 99) / pct(t_ack, 99) if t_ack else float("nan")
    tp_ratio = ours.throughput() / theirs.throughput() if theirs.throughput() else float("inf")
    ms = 1000.0
    alone = m["alone"]
    return [
        Result(
            "e2e",
            "Rasa alone, one message at a time: p50 / max",
            "-",
            f"{pct(alone, 50) * 1000:.0f} / {max(alone) * 1000:.0f} ms (load avg {m['load'][0]:.1f})",
            None,
        ),
        Result(
            "e2e",
            f"ours: sent / stored / answered within {DRAIN_S:g} s after ({len(ours.sent) / ours.elapsed:.1f}/s)",
            "zero lost",
            f"{len(ours.sent)} / {stored} / {len(o_e2e)} (still queued {not_done}, failed {failed}, "
            f"refused {rejected})",
            stored >= len(ours.sent) and failed == 0 and rejected == 0,
        ),
        Result("e2e", "ours: end-to-end p50", "<= 300 ms", late(pct(o_all, 50)), pct(o_all, 50) <= 0.3),
        Result("e2e", "ours: end-to-end p99", "<= 1500 ms", late(pct(o_all, 99)), pct(o_all, 99) <= 1.5),
        Result(
            "e2e",
            "ours: webhook ack p99",
            "<= 50 ms",
            f"{pct(o_ack, 99) * ms:.1f} ms",
            pct(o_ack, 99) <= 0.05,
        ),
        Result(
            "e2e",
            "theirs (Rasa twilio connector): ack p50 / p99",
            "-",
            f"{pct(t_ack, 50) * ms:.0f} / {pct(t_ack, 99) * ms:.0f} ms",
            None,
        ),
        Result(
            "e2e",
            "theirs: end-to-end p50 / p99, answered",
            "-",
            f"{pct(t_e2e, 50) * ms:.0f} / {pct(t_e2e, 99) * ms:.0f} ms, {len(t_e2e)}/{len(theirs.sent)}",
            None,
        ),
        Result("e2e", "ack p99 ratio ours/theirs", "<= 0.20", f"{ack_ratio:.3f}", ack_ratio <= 0.2),
        Result("e2e", "CPU per message, ours", "-", cpu_line(m["cpu"]["ours"]), None),
        Result("e2e", "CPU per message, theirs", "-", cpu_line(m["cpu"]["theirs"]), None),
        Result(
            "e2e",
            "throughput ratio ours/theirs",
            ">= 1.0",
            f"{tp_ratio:.2f} ({ours.throughput():.1f} vs {theirs.throughput():.1f} msg/s)",
            tp_ratio >= 1.0,
        ),
    ]


def run(quick: bool = False) -> list[Result]:
    return summarise(measure(20.0, 15.0 if quick else 60.0))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=None)
    args = parser.parse_args()
    duration = args.duration or (15.0 if args.quick else 60.0)
    m = measure(args.rate, duration)
    from bench.__main__ import table

    print(table(summarise(m)))
    print("inbound states:", m["states"], "logs:", m["logs"])


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
