"""Drills against a live server on a real port: duplicates from concurrent
clients, and a database outage while webhooks arrive."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import func, select

from lanpya import spool
from lanpya.channels import dispatch_due
from lanpya.db import Database
from lanpya.models import Contact, Inbound, Outbox
from lanpya.outbox import enqueue
from tests.fakes import TWILIO_TOKEN, VIBER_TOKEN, twilio_form, twilio_signature, viber_body, viber_message
from tests.fakes import viber_signature as vsig
from tests.support import LiveServer, wait_until

pytestmark = pytest.mark.drill


def _twilio_request(server_url: str, public_url: str, form: dict) -> tuple[str, dict, dict]:
    sig = twilio_signature(TWILIO_TOKEN, public_url + "/sms/twilio", form)
    return (server_url + "/sms/twilio", {"data": urlencode(form)},
            {"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"})


def _viber_request(server_url: str, event: dict) -> tuple[str, dict, dict]:
    raw = viber_body(event)
    return (server_url + "/viber", {"data": raw},
            {"X-Viber-Content-Signature": vsig(VIBER_TOKEN, raw), "Content-Type": "application/json"})


LATENCIES: list[float] = []


def _report(what: str, started: float) -> None:
    lat = sorted(LATENCIES)
    if lat:
        print(f"\n{what}: {len(lat)} requests in {time.perf_counter() - started:.1f}s; webhook latency "
              f"p50 {lat[len(lat) // 2] * 1000:.0f} ms, p95 {lat[int(len(lat) * 0.95)] * 1000:.0f} ms, "
              f"max {lat[-1] * 1000:.0f} ms")
    LATENCIES.clear()


def _deliver(requests_list, clients: int = 4) -> list[int]:
    """Post every request from ``clients`` concurrent HTTP clients; returns the statuses."""
    statuses: list[int] = []
    lock = threading.Lock()
    chunks = [requests_list[i::clients] for i in range(clients)]

    def run(chunk):
        with requests.Session() as http:
            for url, body, headers in chunk:
                t0 = time.perf_counter()
                r = http.post(url, headers=headers, timeout=60, **body)
                with lock:
                    statuses.append(r.status_code)
                    LATENCIES.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    [t.start() for t in threads]
    [t.join(600) for t in threads]
    return statuses


def _live_config(provider_config, port: int):
    return replace(provider_config, public_url=f"http://127.0.0.1:{port}")


def test_1000_messages_delivered_5_times_by_4_clients_are_stored_and_answered_once(
    provider_config, fake_twilio, fake_viber
):
    from tests.support import free_port
    from webhook import create_app

    port = free_port()
    cfg = _live_config(provider_config, port)
    db = Database(cfg.database_url)
    app = create_app(cfg, db)
    with LiveServer(app, port=port) as server:
        work = []
        for i in range(1000):
            if i % 2 == 0:  # half SMS, half Viber; 100 people each
                form = twilio_form(f"+9597912{i % 100:05d}", f"message number {i}", sid=f"SM{i:032d}")
                work += [_twilio_request(server.url, cfg.public_url, form)] * 5
            else:
                event = viber_message(f"viber-person-{i % 100:03d}=", f"viber message {i}", token=10**15 + i)
                work += [_viber_request(server.url, event)] * 5
        random.Random(7).shuffle(work)
        started = time.perf_counter()
        statuses = _deliver(work, clients=4)
        _report("1000x5 deliveries, 4 clients", started)
    assert len(statuses) == 5000 and set(statuses) == {200}
    spool.replay(db, cfg)  # what the worker loop does (a webhook that met a slow lock spooled)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Inbound)) == 1000
        assert s.scalar(select(func.count(func.distinct(Inbound.provider_id))).select_from(Inbound)) == 1000
        # the simplest processing: one echo reply per stored message
        for msg in s.scalars(select(Inbound)):
            contact = s.get(Contact, msg.contact_id)
            enqueue(s, body=f"got #{msg.id}", channel=msg.channel, contact=contact, inbound_id=msg.id,
                    dedupe_key=f"echo:{msg.id}")
    started = time.perf_counter()
    while dispatch_due(db, cfg, "drill", limit=200):
        pass
    print(f"dispatched 1000 replies to the fake providers in {time.perf_counter() - started:.1f}s")
    with db.session() as s:
        states = dict(s.execute(select(Outbox.state, func.count()).group_by(Outbox.state)).all())
    assert states == {Outbox.SENT: 1000}
    answered = [m.body for m in fake_twilio.messages] + [m.text for m in fake_viber.messages]
    assert len(answered) == 1000 and len(set(answered)) == 1000
    assert len(fake_twilio.messages) == 500 and len(fake_viber.messages) == 500
    db.dispose()


def test_database_outage_200_webhooks_acknowledged_then_stored_once(provider_config):
    from tests.support import free_port
    from webhook import create_app

    port = free_port()
    cfg = _live_config(provider_config, port)
    db = Database(cfg.database_url)
    app = create_app(cfg, db)
    down = Database("postgresql://postgres@127.0.0.1:1/stopped", pool_pre_ping=False)
    work = []
    for i in range(200):
        if i % 2:
            form = twilio_form(f"+9597913{i:05d}", f"outage sms {i}", sid=f"SMout{i:029d}")
            work.append(("sms", form))
        else:
            work.append(("viber", viber_message(f"outage-viber-{i:03d}=", f"outage viber {i}", token=2 * 10**15 + i)))
    with LiveServer(app, port=port) as server:
        reqs = [_twilio_request(server.url, cfg.public_url, p) if k == "sms" else _viber_request(server.url, p)
                for k, p in work]
        app.extensions["lanpya_db"] = down  # the database stops
        started = time.perf_counter()
        statuses = _deliver(reqs, clients=4)
        _report("200 webhooks during the outage (spooled)", started)
        assert statuses.count(200) == 200
        assert len(spool.pending(cfg.spool_dir)) == 200
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Inbound)) == 0
        # nothing readable on disk: the spool is encrypted
        sample = spool.pending(cfg.spool_dir)[0].read_bytes()
        assert b"outage" not in sample and b"+9597913" not in sample

        app.extensions["lanpya_db"] = db  # the database is back
        # a provider retries some of them (no duplicates), and the next webhook kicks the replay
        retried = _deliver(reqs[:50], clients=4)
        assert set(retried) == {200}
        wait_until(lambda: not spool.pending(cfg.spool_dir), timeout=60, what="spool drained")
        spool.replay(db, cfg)  # what the worker loop does: nothing left, nothing doubled
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Inbound)) == 200
        assert s.scalar(select(func.count(func.distinct(Inbound.provider_id))).select_from(Inbound)) == 200
        bodies = {m.body for m in s.scalars(select(Inbound))}
    assert bodies == {p["Body"] if k == "sms" else p["message"]["text"] for k, p in work}
    down.dispose()
    db.dispose()
