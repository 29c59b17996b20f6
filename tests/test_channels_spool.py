"""The disk spool: durable, encrypted, replayed in order without duplicates,
and what happens when the disk fails too; plus fuzzing the webhooks with
signed garbage (no input may produce a 500)."""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lanpya import spool
from lanpya.db import Database
from lanpya.ingest import get_or_create_contact
from lanpya.models import Inbound, Outbox
from lanpya.outbox import enqueue
from tests.fakes import TWILIO_SID, TWILIO_TOKEN, VIBER_TOKEN, twilio_form, viber_body
from tests.test_channels_webhooks import post_twilio, post_viber, status_form

DOWN_URL = "postgresql://postgres@127.0.0.1:1/stopped"


def inbound_payload(i: int) -> dict:
    return {"channel": "sms", "provider_id": f"SMspool{i}", "address": f"+95979100{i:04d}",
            "text": f"spooled text {i}", "kind": "text", "media": None}


def count_inbound(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Inbound))


@pytest.fixture
def wh_config(config):
    return replace(config, twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN,
                   twilio_from_number="+15005550006", viber_auth_token=VIBER_TOKEN)


@pytest.fixture
def wapp(wh_config, db):
    from webhook import create_app

    return create_app(wh_config, db)


def test_a_crash_between_commit_and_delete_does_not_duplicate(db, config):
    path = spool.write(config.spool_dir, "inbound", inbound_payload(1))
    with db.session() as s:  # the replayer applied and committed, then died before unlinking
        spool.apply(s, "inbound", inbound_payload(1))
    assert path.exists()
    assert spool.replay(db, config) == 1
    assert count_inbound(db) == 1 and not spool.pending(config.spool_dir)


def test_replay_keeps_arrival_order_and_time(db, config, clock):
    t0 = clock.now()
    for i in range(5):
        spool.write(config.spool_dir, "inbound", inbound_payload(i))
        clock.advance(seconds=1)
    clock.advance(hours=1)
    assert spool.replay(db, config) == 5
    with db.session() as s:
        rows = s.scalars(select(Inbound).order_by(Inbound.id)).all()
        assert [r.provider_id for r in rows] == [f"SMspool{i}" for i in range(5)]
        assert [r.received_at for r in rows] == [t0 + timedelta(seconds=i) for i in range(5)]


def test_replay_pauses_while_the_database_is_down(config, db):
    for i in range(3):
        spool.write(config.spool_dir, "inbound", inbound_payload(i))
    down = Database(DOWN_URL, pool_pre_ping=False)
    assert spool.replay(down, config) == 0
    assert len(spool.pending(config.spool_dir)) == 3
    down.dispose()
    assert spool.replay(db, config) == 3


def test_a_damaged_file_is_set_aside_and_the_rest_replayed(db, config):
    spool.write(config.spool_dir, "inbound", inbound_payload(1))
    bad = config.spool_dir / ("0" * 20 + "-damaged" + spool.SUFFIX)
    bad.write_bytes(b"not a fernet token")
    spool.write(config.spool_dir, "inbound", inbound_payload(2))
    assert spool.replay(db, config) == 2
    assert count_inbound(db) == 2
    assert (config.spool_dir / ("." + bad.name + ".bad")).exists()


def test_concurrent_replayers_apply_each_file_once(db, config):
    for i in range(60):
        spool.write(config.spool_dir, "inbound", inbound_payload(i))
    done = []
    threads = [threading.Thread(target=lambda: done.append(spool.replay(db, config))) for _ in range(3)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert sum(done) == 60 and count_inbound(db) == 60 and not spool.pending(config.spool_dir)


def test_status_callbacks_are_spooled_too(wapp, db, wh_config):
    with db.session() as s:
        c = get_or_create_contact(s, "sms", "+959791234567")
        row = enqueue(s, body="hi", channel="sms", contact=c)
        row.state, row.provider_id, row.provider_status = Outbox.SENT, "SM" + "a" * 32, "sent"
    client = wapp.test_client()
    wapp.extensions["lanpya_db"] = Database(DOWN_URL, pool_pre_ping=False)
    assert post_twilio(client, "/sms/twilio/status", status_form("failed", ErrorCode="21610")).status_code == 200
    assert len(spool.pending(wh_config.spool_dir)) == 1
    wapp.extensions["lanpya_db"].dispose()
    wapp.extensions["lanpya_db"] = db
    spool.replay(db, wh_config)
    with db.session() as s:
        row = s.scalars(select(Outbox)).one()
        assert row.state == Outbox.FAILED and row.error_code == "twilio:21610"
        assert get_or_create_contact(s, "sms", "+959791234567").opted_out


def test_database_and_disk_both_down_is_a_503_so_the_provider_retries(wapp, db, wh_config):
    client = wapp.test_client()
    wapp.extensions["lanpya_db"] = Database(DOWN_URL, pool_pre_ping=False)
    shutil.rmtree(wh_config.spool_dir)
    resp = post_twilio(client, "/sms/twilio", twilio_form())
    assert resp.status_code == 503
    wapp.extensions["lanpya_db"].dispose()


# --- fuzz: signed garbage never makes a 500 ---------------------------------------------
_text = st.text(max_size=40)
_forms = st.dictionaries(
    st.sampled_from(["MessageSid", "From", "To", "AccountSid", "Body", "NumMedia", "MediaUrl0", "MessageStatus",
                     "ErrorCode", "SmsStatus", "x"]),
    _text, max_size=9,
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_events = st.fixed_dictionaries(
    {"event": st.sampled_from(["message", "delivered", "seen", "failed", "subscribed", "unsubscribed",
                               "conversation_started", "webhook", "other"]) | _json},
    optional={"message_token": _json, "sender": _json | st.fixed_dictionaries({"id": _json}),
              "message": _json | st.fixed_dictionaries({"type": _json, "text": _json}),
              "user": _json, "user_id": _json},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=_forms, path=st.sampled_from(["/sms/twilio", "/sms/twilio/status"]))
def test_fuzz_signed_twilio_forms_never_500(wapp, form, path):
    resp = post_twilio(wapp.test_client(), path, form)
    assert resp.status_code in (200, 400), (form, resp.get_data(as_text=True))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=_events | _json)
def test_fuzz_signed_viber_json_never_500(wapp, event):
    resp = post_viber(wapp.test_client(), viber_body(event) if not isinstance(event, bytes) else event)
    assert resp.status_code in (200, 400), (event, resp.get_data(as_text=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_fuzz_signed_viber_bytes_never_500(wapp, raw):
    resp = post_viber(wapp.test_client(), raw)
    assert resp.status_code in (200, 400)


def test_a_database_locked_too_long_spools_within_the_deadline(wapp, db, wh_config, monkeypatch):
    """SQLite's write lock held by a long transaction (a big campaign insert):
    the webhook does not wait past PERSIST_TIMEOUT_S; it spools and answers,
    and the message is stored exactly once when the lock is released."""
    import time

    from sqlalchemy import text

    from tests.fakes import twilio_form

    if not db.is_sqlite:
        pytest.skip("the write lock under test is SQLite's")
    monkeypatch.setattr(spool, "PERSIST_TIMEOUT_S", 0.5)
    client = wapp.test_client()
    holder = db.engine.connect()
    holder.execute(text("UPDATE contact SET language = language"))  # BEGIN IMMEDIATE: holds the write lock
    try:
        t0 = time.monotonic()
        resp = post_twilio(client, "/sms/twilio", twilio_form("+959791239999", "while locked", sid="SMlocked"))
        took = time.monotonic() - t0
    finally:
        holder.rollback()
        holder.close()
    assert resp.status_code == 200 and took < 3, took
    assert len(spool.pending(wh_config.spool_dir)) == 1
    time.sleep(0.5)  # the slow transaction may now commit too
    spool.replay(db, wh_config)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Inbound).where(Inbound.provider_id == "SMlocked")) == 1
