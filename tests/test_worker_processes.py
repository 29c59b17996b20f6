"""Two `lanpya worker` processes on one PostgreSQL database: ten messages of
one contact, stored concurrently, are answered strictly in order, never two
of that contact at once, while other contacts proceed in parallel."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lanpya.db import Database
from lanpya.ingest import receive
from lanpya.models import Contact, Heartbeat, Inbound, Outbox
from tests.conftest import TEST_KEYS, _truncate_postgres, make_config
from tests.rasa_fake import FakeRasa
from tests.support import ROOT, stop_process, wait_until

pytestmark = pytest.mark.postgres


def worker_env(config, rasa_url: str, **extra: str) -> dict:
    """The environment of a `lanpya worker` subprocess: every key explicit, so
    the developer's .env cannot leak in (python-dotenv never overrides)."""
    env = dict(os.environ)
    env.update(
        LANPYA_ENV="test",
        DATABASE_URL=config.database_url,
        LANPYA_SECRET_KEY=TEST_KEYS["secret"],
        LANPYA_DATA_KEY=TEST_KEYS["data"],
        LANPYA_LOOKUP_KEY=TEST_KEYS["lookup"],
        LANPYA_INTERNAL_TOKEN=TEST_KEYS["internal"],
        LANPYA_VAR_DIR=str(config.var_dir),
        LANPYA_SPOOL_DIR=str(config.spool_dir),
        RASA_URL=rasa_url,
        TWILIO_ACCOUNT_SID="",
        TWILIO_AUTH_TOKEN="",
        TWILIO_FROM_NUMBER="",
        TWILIO_MESSAGING_SERVICE_SID="",
        VIBER_AUTH_TOKEN="",
        HOTLINE_NUMBER="+95 1 000 000 (test)",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def start_worker(env: dict, name: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "lanpya"), "worker", "--name", name],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def test_two_worker_processes_answer_one_contacts_ten_messages_in_order(tmp_path, postgres_url):
    _truncate_postgres(postgres_url)
    config = make_config(tmp_path, postgres_url)
    db = Database(postgres_url)
    sender = "+959250000100"
    others = [f"+95925000{n:04d}" for n in range(200, 230)]

    def store(args):
        address, i = args
        with db.session() as s:
            return receive(s, channel="sms", provider_id=f"SM-order-{address}-{i}", address=address,
                           text=f"question {i}").inbound_id

    # Rasa answers slowly, so a second worker has every chance to race for the contact
    with FakeRasa(delay=0.05) as rasa, ThreadPoolExecutor(10) as pool:
        # the contact exists first, so concurrent stores do not race to create it
        store((sender, 0))
        ids = [0] + list(pool.map(store, [(sender, i) for i in range(1, 10)]))
        list(pool.map(store, [(o, 0) for o in others]))
        env = worker_env(config, rasa.url)
        procs = [start_worker(env, f"pw{i}", tmp_path / f"w{i}.log") for i in range(2)]
        try:
            def all_done():
                with db.session() as s:
                    return s.scalar(
                        select(func.count()).select_from(Inbound).where(Inbound.state != Inbound.DONE)
                    ) == 0
            wait_until(all_done, timeout=60, what="every message answered")
        finally:
            for p in procs:
                stop_process(p)
        logs = "".join((tmp_path / f"w{i}.log").read_text() for i in range(2))
        with db.session() as s:
            contact = s.scalar(select(Contact).where(Contact.id == s.get(Inbound, ids[1]).contact_id))
            order = [m.id for m in s.scalars(select(Inbound).where(Inbound.contact_id == contact.id).order_by(Inbound.id))]
            texts_in_arrival_order = [s.get(Inbound, i).body for i in order]
            owners = {m.lease_owner for m in s.scalars(select(Inbound))}
            replies = s.scalars(select(Outbox).where(Outbox.contact_id == contact.id).order_by(Outbox.id)).all()
            processed = [m.processed_at for m in s.scalars(select(Inbound).where(Inbound.contact_id == contact.id).order_by(Inbound.id))]
        # Rasa saw the contact's messages in arrival order, one at a time
        assert rasa.messages_from(contact.uuid) == texts_in_arrival_order, logs[-2000:]
        assert rasa.overlaps == 0
        assert processed == sorted(processed)
        # one reply each, written in the same order
        assert [r.body for r in replies] == [f"re: {t}" for t in texts_in_arrival_order]
        assert len(rasa.received) == 10 + len(others)
        assert owners == {None}  # leases released
        # both processes did work (each one's last heartbeat counts its outcomes)
        with db.session() as s:
            beats = {b.name: b.detail for b in s.scalars(select(Heartbeat))}
        assert set(beats) == {"pw0", "pw1"}
        assert all("answered=" in d for d in beats.values()), beats
    db.dispose()
