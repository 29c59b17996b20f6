"""The running worker (``Worker.run``) is woken, not polled: on PostgreSQL a
stored message wakes it through ``NOTIFY lanpya_inbound`` (sent when the
web's transaction commits, never for a rolled-back one), and a finished
conversation wakes its dispatcher, so the reply reaches the provider at once
even with every poll interval set to 30 s."""

from __future__ import annotations

import threading
import time

import pytest

import conversations.worker as worker_module
from conversations.rasa import RasaClient
from conversations.worker import Worker
from lanpya import wakeup
from lanpya.db import Database
from lanpya.ingest import receive
from tests.rasa_fake import FakeRasa
from tests.support import wait_until

PHONE = "+959791230077"


@pytest.fixture
def running(provider_config, monkeypatch):
    """A worker in ``run()`` (its own thread) whose polls are 30 s apart."""
    db = Database(provider_config.database_url)
    if not db.is_postgres:
        db.dispose()
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite polls")
    monkeypatch.setattr(worker_module, "POLL_S", 30.0)
    monkeypatch.setattr(worker_module, "POLL_LISTENING_S", 30.0)
    with FakeRasa() as rasa:
        worker = Worker(provider_config, db, name="wake", rasa=RasaClient(rasa.url, timeout=5), threads=2)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        wait_until(lambda: worker.listener is not None and worker.listener.listening, 10, what="listening")
        time.sleep(0.5)  # its first passes are done: it now waits on the 30 s poll
        yield worker, db, rasa
        worker.stop()
        thread.join(35)
        assert not thread.is_alive()
    db.dispose()


def say(db, text: str, n: int) -> int:
    with db.session() as s:
        return receive(s, channel="sms", provider_id=f"SM-wake-{n}", address=PHONE, text=text).inbound_id


def test_a_stored_message_wakes_the_worker_and_its_reply_leaves_at_once(running, fake_twilio):
    worker, db, rasa = running
    woken = worker.listener.woken
    started = time.monotonic()
    say(db, "how can I go to thailand legally", 1)
    sent = wait_until(lambda: fake_twilio.sent_to(PHONE), 10, what="the reply at the provider")
    assert time.monotonic() - started < 5  # not the 30 s polls
    assert sent[0].body == "re: how can I go to thailand legally"
    assert worker.listener.woken > woken
    # and again: each message wakes it
    say(db, "what documents do I need", 2)
    wait_until(lambda: len(fake_twilio.sent_to(PHONE)) == 2, 10, what="the second reply")
    assert time.monotonic() - started < 10


def test_a_rolled_back_message_wakes_no_one(running):
    worker, db, rasa = running
    woken = worker.listener.woken
    with pytest.raises(RuntimeError), db.session() as s:
        receive(s, channel="sms", provider_id="SM-wake-rolled-back", address=PHONE, text="never stored")
        raise RuntimeError("the web's transaction failed")
    time.sleep(1.5)
    assert worker.listener.woken == woken
    assert rasa.received == []


def test_the_listener_reconnects_after_its_connection_is_killed(running, fake_twilio):
    worker, db, rasa = running
    from sqlalchemy import text

    with db.session() as s:  # what a PostgreSQL restart does to it
        killed = s.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'")
        ).all()
    assert killed
    wait_until(lambda: not worker.listener.listening, 5, what="the listener to notice")
    # meanwhile the worker polls at the short interval (patched to 30 s here, so the
    # reconnection's own wake-up is what finds the message)
    wait_until(lambda: worker.listener.listening, 10, what="listening again")
    say(db, "hello again", 3)
    wait_until(lambda: fake_twilio.sent_to(PHONE), 10, what="the reply after reconnecting")


def test_libpq_url_drops_the_driver_and_keeps_the_password():
    assert (
        wakeup.libpq_url("postgresql+psycopg://lanpya:s%40cret@db:5432/lanpya")
        == "postgresql://lanpya:s%40cret@db:5432/lanpya"
    )
