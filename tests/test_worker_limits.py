"""Abuse limits: per-sender throttle (one notice, nothing lost) and the
new-number flood circuit breaker (staff alerted, new numbers not
auto-answered until it resets)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from conversations import limits
from conversations.rasa import RasaClient
from conversations.worker import Worker
from lanpya.ingest import receive
from lanpya.models import Contact, Inbound, Outbox, Staff
from tests.conftest import make_config
from tests.rasa_fake import FakeRasa


def say(db, sender: str, text: str, n: int) -> int:
    with db.session() as s:
        return receive(s, channel="sms", provider_id=f"SM-lim-{sender}-{n}", address=sender, text=text).inbound_id


def test_a_sender_over_the_limit_gets_one_notice_and_nothing_is_lost(tmp_path, db_url, clock):
    config = make_config(tmp_path, db_url, sender_limit_per_min=3)
    from lanpya.db import Database

    db = Database(db_url)
    sender = "+959250000401"
    with FakeRasa() as rasa:
        worker = Worker(config, db, name="w1", rasa=RasaClient(rasa.url, timeout=5), dispatch=False)
        ids = []
        for i in range(6):
            ids.append(say(db, sender, f"question number {i}", i))
            clock.advance(seconds=5)
        worker.drain()
        with db.session() as s:
            msgs = [s.get(Inbound, i) for i in ids]
            assert [m.state for m in msgs] == [Inbound.DONE] * 6  # stored and closed, none lost
            assert [m.error for m in msgs] == [None] * 3 + ["throttled"] * 3
            bodies = [m.body for m in msgs]
            assert bodies[5] == "question number 5"
            notices = s.scalars(select(Outbox).where(Outbox.dedupe_key.like("throttled:%"))).all()
            assert len(notices) == 1 and notices[0].inbound_id == ids[3]
            uuid = s.scalar(select(Contact.uuid))
        assert len(rasa.messages_from(uuid)) == 3
        # a minute later they are answered again
        clock.advance(minutes=2)
        again = say(db, sender, "one more question", 10)
        worker.drain()
        with db.session() as s:
            assert s.get(Inbound, again).error is None
    db.dispose()


def test_flood_of_new_numbers_trips_the_breaker_alerts_staff_and_resets(tmp_path, db_url, clock):
    config = make_config(tmp_path, db_url, new_sender_limit_per_min=3)
    from lanpya.db import Database

    db = Database(db_url)
    with db.session() as s:
        s.add(Staff(email="admin@example.org", role=Staff.ADMIN, phone="+959250009999"))
        s.add(Staff(email="agent@example.org", role=Staff.AGENT, phone="+959250009998"))
    # a contact we knew before the flood
    old = say(db, "+959250000500", "hello there", 0)
    clock.advance(minutes=30)
    with FakeRasa() as rasa:
        worker = Worker(config, db, name="w1", rasa=RasaClient(rasa.url, timeout=5), dispatch=False)
        worker.drain()
        flood = [say(db, f"+9592500006{i:02d}", "hello there", 0) for i in range(5)]
        known = say(db, "+959250000500", "still there?", 1)
        worker._last.clear()  # run the periodic flood check now
        worker.drain()
        with db.session() as s:
            assert [s.get(Inbound, i).error for i in flood] == ["flood breaker"] * 5
            assert all(s.get(Inbound, i).state == Inbound.DONE for i in flood)  # stored, not lost
            assert s.get(Inbound, known).error is None  # known numbers are still answered
            alerts = s.scalars(select(Outbox).where(Outbox.kind == Outbox.ALERT)).all()
            assert len(alerts) == 1  # the admin; not the agent
            assert "5 new numbers" in alerts[0].body and "+95" not in alerts[0].body
        # still flooding: the breaker stays open, no second alert
        worker._last.clear()
        worker.drain()
        with db.session() as s:
            assert len(s.scalars(select(Outbox).where(Outbox.kind == Outbox.ALERT)).all()) == 1
            assert limits.breaker_open(s, clock.now())
        # after the flood and the hold time, new numbers are answered again
        clock.advance(minutes=limits.HOLD.total_seconds() // 60 + 1)
        newcomer = say(db, "+959250000700", "hello there", 0)
        worker._last.clear()
        worker.drain()
        with db.session() as s:
            assert not limits.breaker_open(s, clock.now())
            assert s.get(Inbound, newcomer).error is None
            assert s.get(Inbound, old).error is None
    assert timedelta(minutes=1) == limits.WINDOW
    db.dispose()
