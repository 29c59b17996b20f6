"""Two `lanpya worker` processes on one PostgreSQL database: ten messages of
one contact, posted concurrently as signed Twilio webhooks, are answered
strictly in order (to Rasa and to the provider), never two of that contact
at once, while other contacts proceed in parallel."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from lanpya.db import Database
from lanpya.models import Contact, Heartbeat, Inbound, Outbox
from tests.conftest import TEST_KEYS, _truncate_postgres, make_config
from tests.fakes import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, FakeTwilio, twilio_form, twilio_signature
from tests.rasa_fake import FakeRasa
from tests.support import ROOT, LiveServer, stop_process, wait_until

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
        PUBLIC_URL=config.public_url,
        RASA_URL=rasa_url,
        TWILIO_ACCOUNT_SID=config.twilio_account_sid,
        TWILIO_AUTH_TOKEN=config.twilio_auth_token,
        TWILIO_FROM_NUMBER=config.twilio_from_number,
        TWILIO_MESSAGING_SERVICE_SID="",
        TWILIO_API_URL=config.twilio_api_url,
        TWILIO_RATE="100",
        VIBER_AUTH_TOKEN="",
        HOTLINE_NUMBER="+95 1 000 000 (test)",
        RASA_AUTH_TOKEN="",
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
    sender = "+959250000100"
    others = [f"+95925000{n:04d}" for n in range(200, 230)]
    with FakeTwilio(TWILIO_SID, TWILIO_TOKEN) as twilio, FakeRasa(delay=0.05) as rasa:
        config = make_config(
            tmp_path, postgres_url, twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN,
            twilio_from_number=TWILIO_FROM, twilio_api_url=twilio.url, twilio_rate=100.0,
        )
        db = Database(postgres_url)
        from webhook import create_app

        web = LiveServer(create_app(config, db))
        config.public_url = web.url  # the app's config: signatures are checked against it
        with web, ThreadPoolExecutor(10) as pool:
            def post(args) -> int:
                address, i = args
                form = twilio_form(from_=address, body=f"question {i}")
                sig = twilio_signature(TWILIO_TOKEN, web.url + "/sms/twilio", form)
                return requests.post(web.url + "/sms/twilio", data=form, headers={"X-Twilio-Signature": sig},
                                     timeout=30).status_code

            # ten at once from one contact (and thirty other contacts at the same time)
            statuses = list(pool.map(post, [(sender, i) for i in range(10)] + [(o, 0) for o in others]))
            assert statuses == [200] * 40
            env = worker_env(config, rasa.url)
            procs = [start_worker(env, f"pw{i}", tmp_path / f"w{i}.log") for i in range(2)]
            try:
                wait_until(lambda: len(twilio.messages) >= 40, timeout=60, what="40 replies at the provider")

                def all_done():
                    with db.session() as s:
                        return s.scalar(select(func.count()).select_from(Inbound)
                                        .where(Inbound.state != Inbound.DONE)) == 0
                wait_until(all_done, timeout=30, what="every message done")
            finally:
                for p in procs:
                    stop_process(p)
        logs = "".join((tmp_path / f"w{i}.log").read_text() for i in range(2))
        with db.session() as s:
            contact = s.scalar(select(Contact).join(Inbound, Inbound.contact_id == Contact.id)
                               .group_by(Contact.id).having(func.count(Inbound.id) == 10))
            msgs = s.scalars(select(Inbound).where(Inbound.contact_id == contact.id).order_by(Inbound.id)).all()
            arrival = [m.body for m in msgs]
            processed = [m.processed_at for m in msgs]
            replies = s.scalars(select(Outbox).where(Outbox.contact_id == contact.id).order_by(Outbox.id)).all()
            owners = {m.lease_owner for m in s.scalars(select(Inbound))}
            beats = {b.name: b.detail for b in s.scalars(select(Heartbeat))}
        assert sorted(arrival) == [f"question {i}" for i in range(10)]
        # Rasa saw the contact's messages in arrival order, one at a time
        assert rasa.messages_from(contact.uuid) == arrival, logs[-2000:]
        assert rasa.overlaps == 0
        assert processed == sorted(processed)
        # replies were written in that order and reached the provider in that order
        assert [r.body for r in replies] == [f"re: {t}" for t in arrival]
        assert [m.body for m in twilio.sent_to(sender)] == [f"re: {t}" for t in arrival]
        assert len(rasa.received) == 40 and len(twilio.messages) == 40
        assert owners == {None}  # every lease released
        # both processes did work (each one's last heartbeat counts its outcomes)
        assert set(beats) == {"pw0", "pw1"}
        assert all("answered=" in d for d in beats.values()), beats
        db.dispose()
