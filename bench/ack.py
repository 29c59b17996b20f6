"""The webhook acknowledgement alone: what a provider waits for (issue 5).

    .venv/bin/python -m bench.ack                     # 20 msg/s for 20 s, PostgreSQL if TEST_POSTGRES_URL
    .venv/bin/python -m bench.ack --rate 40 --duration 30

Starts ``lanpya web`` (gunicorn, as deployed) on a fresh database with no
worker, Rasa or provider, sends every sender one message first (the contacts
exist, as in a running service; not measured), then posts signed Twilio
webhooks at the rate through the same thin keep-alive client as bench.e2e.
Prints, per message: the acknowledgement as the client sees it, gunicorn's
own request time (its access log), and the CPU of the web processes and of
PostgreSQL's backends. ``--badsig`` sends a wrong signature instead: the cost
of gunicorn, Flask and the check without any storage (answered 403).

Not part of ``make bench`` (bench.e2e measures the acknowledgement under the
whole pipeline's load); this is the one to profile the path with.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from twilio.request_validator import RequestValidator

from bench import pct
from bench.e2e import QUESTIONS, FormPoster, cpu_per_message, cpu_snapshot, database_url
from bench.e2e_stack import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OUR_NUMBER,
    free_port,
    stack_env,
    wait_http,
    web_proc,
)

SENDERS = 200


def measure(rate: float, duration: float, badsig: bool = False) -> dict:
    from lanpya.db import upgrade

    tmp = Path(tempfile.mkdtemp(prefix="lanpya-ack-"))
    db_url, drop_db = database_url(tmp)
    port = free_port()
    env = stack_env(tmp, port, DATABASE_URL=db_url)
    (tmp / "var").mkdir(parents=True)
    upgrade(db_url)
    web = web_proc(env, tmp).start()
    url = f"http://127.0.0.1:{port}/sms/twilio"
    validator = RequestValidator(AUTH_TOKEN)
    local = threading.local()
    acks: list[float] = []
    lock = threading.Lock()
    expected = 403 if badsig else 200

    def post(i: int, bad: bool) -> None:
        poster = getattr(local, "poster", None) or FormPoster(url)
        local.poster = poster
        form = {
            "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID,
            "From": f"+95927{i % SENDERS:07d}",
            "To": OUR_NUMBER,
            "Body": QUESTIONS[(i // SENDERS) % len(QUESTIONS)],
            "NumMedia": "0",
        }
        signature = "wrong" if bad else validator.compute_signature(url, form)
        t0 = time.monotonic()
        status = poster.post(form, {"X-Twilio-Signature": signature})
        took = time.monotonic() - t0
        if status != (403 if bad else 200):
            raise RuntimeError(f"webhook answered {status}")
        with lock:
            acks.append(took)

    try:
        wait_http(f"http://127.0.0.1:{port}/", web.popen)
        with ThreadPoolExecutor(8) as pool:  # every sender once: the contacts exist
            list(pool.map(lambda i: post(i, False), range(SENDERS)))
        acks.clear()
        log_from = web.log.stat().st_size
        cpu0 = cpu_snapshot([web], db_url)
        n = int(rate * duration)
        start = time.monotonic()
        with ThreadPoolExecutor(48) as pool:
            futures = []
            for i in range(n):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(post, SENDERS + i, badsig))
            for f in futures:
                f.result()
        cpu = cpu_per_message(cpu0, cpu_snapshot([web], db_url), n)
        time.sleep(0.5)  # the last access-log lines
        server = sorted(
            float(line.rsplit(" ", 1)[1].rstrip("s")) * 1000
            for line in web.log.read_text()[log_from:].splitlines()
            if "/sms/twilio" in line and f'" {expected} ' in line
        )
    finally:
        web.stop()
        drop_db()
    client = sorted(a * 1000 for a in acks)
    return {
        "database": db_url.split("://")[0].split("+")[0],
        "n": len(client),
        "client": (pct(client, 50), pct(client, 90), pct(client, 99), client[-1] if client else float("nan")),
        "server": (pct(server, 50), pct(server, 90), pct(server, 99)),
        "web_cpu_ms": cpu["web"],
        "postgres_cpu_ms": cpu.get("postgres", 0.0),
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--badsig", action="store_true", help="wrong signatures: the path without storage")
    args = parser.parse_args()
    r = measure(args.rate, args.duration, args.badsig)
    c, s = r["client"], r["server"]
    print(f"webhook ack, {r['n']} messages at {args.rate:g}/s on {r['database']} (load avg {r['load']:.1f})")
    print("| measure | p50 | p90 | p99 | max |")
    print("|---|---|---|---|---|")
    print(f"| ack at the client (ms) | {c[0]:.2f} | {c[1]:.2f} | {c[2]:.2f} | {c[3]:.2f} |")
    print(f"| gunicorn request time (ms) | {s[0]:.2f} | {s[1]:.2f} | {s[2]:.2f} | - |")
    print(f"CPU a message: web {r['web_cpu_ms']:.2f} ms, PostgreSQL {r['postgres_cpu_ms']:.2f} ms")


if __name__ == "__main__":
    main()
