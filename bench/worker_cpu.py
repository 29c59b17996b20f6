"""CPU and SQL statements per message of the conversation worker alone: a
deterministic measure to optimise with (bench/e2e.py is the wall-clock one).

    TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        flock /tmp/lanpya-bench.lock .venv/bin/python -m bench.worker_cpu [--messages 400] [--threads 32]

A fresh PostgreSQL database with ``--messages`` stored messages from 200
contacts; the fake Rasa (instant) and fake Twilio run in another process, so
this process's CPU time is the worker's: claim, screening, Rasa client,
answer, dispatch through the real twilio client. Prints CPU ms and statements
per message, and thread CPU ms per message of each phase.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FAKES = """
import logging, sys, time
sys.path.insert(0, {root!r})
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from tests.rasa_fake import FakeRasa
from tests.fakes import FakeTwilio, TWILIO_SID, TWILIO_TOKEN
rasa, twilio = FakeRasa().start(), FakeTwilio(TWILIO_SID, TWILIO_TOKEN).start()
print(rasa.url, twilio.url, flush=True)
while True:
    time.sleep(3600)
"""


def measure(admin_url: str, messages: int, threads: int) -> dict:
    import os

    from sqlalchemy import create_engine, event, text

    from bench import ThreadTimes
    from conversations import claim as claim_module
    from conversations import handle
    from conversations.rasa import RasaClient
    from conversations.worker import Worker, worker_database
    from lanpya.db import normalise_url, upgrade
    from lanpya.ingest import receive
    from lanpya.models import Inbound
    from tests.conftest import make_config
    from tests.fakes import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN

    name = f"lanpya_wcpu_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = normalise_url(admin_url).rsplit("/", 1)[0] + "/" + name
    fakes = subprocess.Popen(
        [sys.executable, "-c", FAKES.format(root=str(ROOT))], stdout=subprocess.PIPE, text=True
    )
    try:
        upgrade(url)
        rasa_url, twilio_url = fakes.stdout.readline().split()
        config = make_config(
            Path(tempfile.mkdtemp(prefix="lanpya-wcpu-")),
            url,
            twilio_account_sid=TWILIO_SID,
            twilio_auth_token=TWILIO_TOKEN,
            twilio_from_number=TWILIO_FROM,
            twilio_api_url=twilio_url,
            twilio_rate=10000.0,
            sender_limit_per_min=1000,
            new_sender_limit_per_min=100000,
        )
        db = worker_database(url)
        with db.session() as s:
            for i in range(messages):
                receive(
                    s,
                    channel="sms",
                    provider_id=f"SM{i}",
                    address=f"+9592500{i % 200:05d}",
                    text="how can I go to thailand legally",
                )
        statements = [0]

        @event.listens_for(db.engine, "before_cursor_execute")
        def _count(*_args, **_kw):
            statements[0] += 1

        times = ThreadTimes()
        times.patch(handle.Handler, "_screen", "screen")
        times.patch(handle.Handler, "_answer", "answer")
        times.patch(RasaClient, "send", "rasa client")
        times.patch(claim_module, "claim", "claim")
        worker = Worker(config, db, name="wcpu", rasa=RasaClient(rasa_url, timeout=5), threads=threads)
        times.patch(worker, "dispatch", "dispatch")
        assert worker.handler.answers.content is not None  # loaded before timing, as after a warm-up
        wall0, cpu0 = time.monotonic(), time.process_time()
        worker.drain(timeout=600)
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        with db.session() as s:
            done = s.query(Inbound).filter(Inbound.state == Inbound.DONE).count()
        db.dispose()
        return {
            "messages": messages,
            "done": done,
            "threads": threads,
            "wall_s": wall,
            "cpu_ms": cpu * 1000 / messages,
            "statements": statements[0] / messages,
            "phases_ms": {k: v * 1000 / messages for k, v in sorted(times.spent.items(), key=lambda kv: -kv[1])},
            "load": os.getloadavg(),
        }
    finally:
        fakes.kill()
        with admin.connect() as conn:
            conn.execute(
                text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def main() -> None:
    import os

    parser = argparse.ArgumentParser(prog="python -m bench.worker_cpu")
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()
    admin = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    if not admin:
        sys.exit("set TEST_POSTGRES_URL (PostgreSQL)")
    m = measure(admin, args.messages, args.threads)
    print(
        f"{m['done']}/{m['messages']} answered, {m['threads']} threads, {m['wall_s']:.1f} s: "
        f"worker CPU {m['cpu_ms']:.1f} ms and {m['statements']:.1f} SQL statements a message "
        f"(load avg {m['load'][0]:.1f})"
    )
    print("thread CPU ms a message: " + ", ".join(f"{k} {v:.2f}" for k, v in m["phases_ms"].items()))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
