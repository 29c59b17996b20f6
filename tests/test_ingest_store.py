"""``lanpya.ingest.store``: the webhooks' way in. On PostgreSQL a known
contact's message is one autocommitted statement (contact touched, row
inserted unless repeated, workers notified); a new contact and SQLite go
through ``receive`` in a transaction. Both must leave the same rows."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import func, select

from lanpya import ingest, wakeup
from lanpya.crypto import lookup_hash
from lanpya.models import Contact, Inbound

PHONE = "+959791230099"


def _store(db, provider_id: str, text: str | None = "hello", **kw):
    return ingest.store(db, channel="sms", provider_id=provider_id, address=PHONE, text=text, **kw)


def test_new_then_known_contact_then_repeat(db):
    first = _store(db, "SM-store-1", "how do I go to thailand")
    second = _store(db, "SM-store-2", "documents?", kind="media", media={"items": [{"url": "u", "type": "t"}]})
    again = _store(db, "SM-store-2", "documents?")
    assert first.created and second.created and not again.created
    assert first.contact_id == second.contact_id == again.contact_id
    assert again.inbound_id == second.inbound_id
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 1
        contact = s.scalar(select(Contact))
        assert contact.address == PHONE and contact.address_hash == lookup_hash(PHONE)
        assert contact.country == "MM" and contact.last_seen_at is not None
        rows = s.scalars(select(Inbound).order_by(Inbound.id)).all()
        assert [r.provider_id for r in rows] == ["SM-store-1", "SM-store-2"]
        assert rows[0].body == "how do I go to thailand" and rows[0].kind == "text"
        assert rows[1].media == {"items": [{"url": "u", "type": "t"}]} and rows[1].kind == "media"
        for r in rows:
            assert (r.state, r.attempts, r.held_reply_sent) == (Inbound.QUEUED, 0, False)
            assert r.received_at == r.next_attempt_at
        assert rows[1].received_at >= rows[0].received_at
        assert contact.last_seen_at >= rows[1].received_at
    # the body is stored encrypted, never as plain text
    with db.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT body FROM inbound ORDER BY id").scalars().all()
    assert all(b"thailand" not in bytes(b) for b in raw)


def test_zawgyi_is_converted_and_remembered_on_the_contact(db):
    _store(db, "SM-store-u", "hello")  # creates the contact
    zawgyi = "ျမန္မာ စာ ေရးတတ္ပါသလား ခင္ဗ်ာ"  # Zawgyi-encoded Burmese
    got = _store(db, "SM-store-z", zawgyi)  # a known contact: the one-statement path on PostgreSQL
    with db.session() as s:
        row = s.get(Inbound, got.inbound_id)
        assert row.encoding == "zawgyi" and row.body != zawgyi
        assert s.get(Contact, got.contact_id).encoding == "zawgyi"


def test_concurrent_first_messages_of_one_new_contact_make_one_contact(db):
    if db.is_sqlite:
        pytest.skip("SQLite serialises writers: nothing to race")
    results, errors = [], []

    def one(i: int) -> None:
        try:
            results.append(_store(db, f"SM-store-race-{i}"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.contact_id for r in results}) == 1 and all(r.created for r in results)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Inbound)) == 8


def test_a_stored_message_notifies_and_a_repeat_does_not(db):
    if not db.is_postgres:
        pytest.skip("NOTIFY is PostgreSQL's")
    _store(db, "SM-store-n0")  # the contact exists: the next ones take the one statement
    with psycopg.connect(wakeup.libpq_url(db.url), autocommit=True) as listener:
        listener.execute(f"LISTEN {wakeup.INBOUND}")
        _store(db, "SM-store-n1")
        got = list(listener.notifies(timeout=2, stop_after=1))
        assert len(got) == 1 and got[0].channel == wakeup.INBOUND and got[0].payload == ""
        _store(db, "SM-store-n1")  # a repeat delivery: nothing stored, nobody woken
        assert list(listener.notifies(timeout=0.5)) == []
