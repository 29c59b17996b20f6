"""Channel figures: webhook latency under concurrent duplicate deliveries,
exactly-once storage, the database-outage drill, outbox dispatch throughput
and the sending rate honoured across two workers.

Real servers on 127.0.0.1: the web app (werkzeug, threaded), the fake Twilio
and Viber APIs (tests/fakes) driven by the real twilio client. SQLite file by
default; BENCH_DATABASE_URL=postgresql://... (an empty, migrated database)
for PostgreSQL.

    python -m bench --only channels [--quick]
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import requests
from sqlalchemy import func, select

from bench import Result
from lanpya import spool
from lanpya.channels import dispatch_due
from lanpya.db import Database, upgrade
from lanpya.models import Contact, Inbound, Outbox
from lanpya.outbox import enqueue

AREA = "channels"


def _config(tmp: Path, port: int, fake_twilio, fake_viber):
    from tests.conftest import make_config
    from tests.fakes import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, VIBER_TOKEN

    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    cfg = make_config(tmp, url)
    return replace(
        cfg, public_url=f"http://127.0.0.1:{port}",
        twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN, twilio_from_number=TWILIO_FROM,
        twilio_api_url=fake_twilio.url, twilio_rate=10_000.0,
        viber_auth_token=VIBER_TOKEN, viber_api_url=fake_viber.url, viber_rate=10_000.0,
    )


def _requests(base: str, public: str, n: int, prefix: str) -> list[tuple[str, bytes | str, dict]]:
    from tests.fakes import (
        TWILIO_TOKEN,
        VIBER_TOKEN,
        twilio_form,
        twilio_signature,
        viber_body,
        viber_message,
    )
    from tests.fakes import viber_signature as vsig

    out = []
    for i in range(n):
        if i % 2 == 0:
            form = twilio_form(f"+9597916{i % 100:05d}", f"{prefix} sms {i}", sid=f"SM{prefix}{i:029d}")
            sig = twilio_signature(TWILIO_TOKEN, public + "/sms/twilio", form)
            out.append((base + "/sms/twilio", urlencode(form),
                        {"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"}))
        else:
            raw = viber_body(viber_message(f"{prefix}-viber-{i % 100:03d}=", f"{prefix} viber {i}",
                                           token=hash((prefix, i)) % 10**17))
            out.append((base + "/viber", raw,
                        {"X-Viber-Content-Signature": vsig(VIBER_TOKEN, raw), "Content-Type": "application/json"}))
    return out


def _deliver(reqs, clients: int) -> tuple[list[int], list[float]]:
    statuses: list[int] = []
    latencies: list[float] = []
    lock = threading.Lock()

    def run(chunk):
        with requests.Session() as http:
            for url, data, headers in chunk:
                t0 = time.perf_counter()
                r = http.post(url, data=data, headers=headers, timeout=60)
                with lock:
                    statuses.append(r.status_code)
                    latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=run, args=(reqs[i::clients],)) for i in range(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    return statuses, sorted(latencies)


def _count(db: Database, model=Inbound) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def run(quick: bool = False) -> list[Result]:
    import logging

    from tests.fakes import TWILIO_SID, TWILIO_TOKEN, VIBER_TOKEN, FakeTwilio, FakeViber
    from tests.support import LiveServer, free_port
    from webhook import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access line per request
    n, copies = (200, 3) if quick else (1000, 5)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmpdir, FakeTwilio(TWILIO_SID, TWILIO_TOKEN) as tw, \
            FakeViber(VIBER_TOKEN) as vb:
        port = free_port()
        cfg = _config(Path(tmpdir), port, tw, vb)
        db = Database(cfg.database_url)
        app = create_app(cfg, db)
        engine = "PostgreSQL" if db.is_postgres else "SQLite"
        with LiveServer(app, port=port) as server:
            # 1. duplicates from 4 concurrent clients
            reqs = _requests(server.url, cfg.public_url, n, "dup") * copies
            random.Random(1).shuffle(reqs)
            t0 = time.perf_counter()
            statuses, lat = _deliver(reqs, clients=4)
            took = time.perf_counter() - t0
            spooled_slow = len(spool.pending(cfg.spool_dir))  # webhooks that met a slow lock
            spool.replay(db, cfg)
            stored = _count(db)
            results.append(Result(AREA, f"{n} messages x{copies} deliveries, 4 clients ({engine}): stored",
                                  f"exactly {n}", f"{stored}, all {len(statuses)} acknowledged ({spooled_slow} via spool)"
                                  if set(statuses) == {200} else f"{stored}; statuses {sorted(set(statuses))}",
                                  stored == n and set(statuses) == {200}))
            p95 = lat[int(len(lat) * 0.95)] * 1000
            results.append(Result(AREA, "webhook latency under that load (p50 / p95)", "p95 < 500 ms",
                                  f"{lat[len(lat) // 2] * 1000:.0f} / {p95:.0f} ms ({len(lat) / took:.0f} req/s)",
                                  p95 < 500))
            # 2. database outage
            outage = _requests(server.url, cfg.public_url, 200, "out")
            app.extensions["lanpya_db"] = Database("postgresql://postgres@127.0.0.1:1/stopped", pool_pre_ping=False)
            statuses, _ = _deliver(outage, clients=4)
            spooled = len(spool.pending(cfg.spool_dir))
            app.extensions["lanpya_db"].dispose()
            app.extensions["lanpya_db"] = db
            _deliver(outage[:50], clients=4)  # providers retry some
            deadline = time.monotonic() + 60
            while spool.pending(cfg.spool_dir) and time.monotonic() < deadline:
                time.sleep(0.1)
            spool.replay(db, cfg)
            after = _count(db) - stored
            results.append(Result(AREA, "DB outage during 200 webhooks: acknowledged / spooled / stored after",
                                  "200 / 200 / 200", f"{statuses.count(200)} / {spooled} / {after}",
                                  statuses.count(200) == 200 and spooled == 200 and after == 200))
        # 3. dispatch: one reply per stored message
        with db.session() as s:
            for msg in s.scalars(select(Inbound)):
                enqueue(s, body=f"reply {msg.id}", channel=msg.channel, contact=s.get(Contact, msg.contact_id),
                        inbound_id=msg.id, dedupe_key=f"bench:{msg.id}")
        total = _count(db, Outbox)
        t0 = time.perf_counter()
        while dispatch_due(db, cfg, "bench", limit=200):
            pass
        took = time.perf_counter() - t0
        sent = len(tw.messages) + len(vb.messages)
        results.append(Result(AREA, f"outbox dispatch through the real clients ({engine})", f"{total} sent once",
                              f"{sent} in {took:.1f} s ({sent / took:.0f} msg/s)", sent == total))
        # 4. rate across two workers, real clock
        rate = 20.0
        rcfg = replace(cfg, twilio_rate=rate)
        with db.session() as s:
            for i in range(80 if not quick else 40):
                c = s.scalar(select(Contact).where(Contact.channel == "sms").limit(1))
                enqueue(s, body=f"rate {i}", channel="sms", contact=c, kind=Outbox.CAMPAIGN)
        before = len(tw.messages)
        want = (80 if not quick else 40)
        t0 = time.monotonic()

        def work(name):
            while len(tw.messages) - before < want and time.monotonic() - t0 < 60:
                if not dispatch_due(db, rcfg, name):
                    time.sleep(0.01)

        threads = [threading.Thread(target=work, args=(f"r{i}",)) for i in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        took = time.monotonic() - t0
        # one second of burst, then `rate` per second
        measured = (want - rate) / took if took else 0
        results.append(Result(AREA, f"SMS rate {rate:.0f}/s across 2 workers (after a 1 s burst)",
                              f"{rate * 0.8:.0f}..{rate * 1.05:.0f}/s", f"{measured:.1f}/s",
                              rate * 0.8 <= measured <= rate * 1.05))
        db.dispose()
    return results


if __name__ == "__main__":
    import sys

    from bench.__main__ import table

    print(table(run(quick="--quick" in sys.argv)))
