"""A killed worker's claimed messages and sending rows go back to the queue
once its heartbeat is 30 s old — not after the 90 s / 5 min leases — and
never because of a database outage that silenced every heartbeat."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from lanpya import leases
from lanpya.ingest import receive
from lanpya.models import Contact, Heartbeat, Inbound, Outbox
from lanpya.outbox import enqueue


def _beat(s, name: str, at) -> None:
    s.merge(Heartbeat(name=name, kind="worker", pid=1, beat_at=at))


def _held(db, clock, owner: str) -> tuple[int, int]:
    """One inbound message and one outbox row held by ``owner``."""
    with db.session() as s:
        inbound_id = receive(s, channel="sms", provider_id=f"SM-lease-{owner}", address="+959250000950",
                             text="hello").inbound_id
        contact = s.scalars(select(Contact)).first()
        row = enqueue(s, body="campaign news", channel="sms", contact=contact, kind=Outbox.CAMPAIGN)
        s.flush()
        msg = s.get(Inbound, inbound_id)
        msg.state, msg.lease_owner, msg.lease_until = Inbound.PROCESSING, owner, clock.now() + timedelta(seconds=90)
        row.state, row.lease_owner, row.lease_until = Outbox.SENDING, owner, clock.now() + timedelta(minutes=5)
        return inbound_id, row.id


def _states(db, inbound_id: int, outbox_id: int) -> tuple[str, str]:
    with db.session() as s:
        return s.get(Inbound, inbound_id).state, s.get(Outbox, outbox_id).state


def test_a_dead_workers_rows_are_requeued_and_a_live_ones_are_not(db, clock):
    start = clock.now()
    inbound_id, outbox_id = _held(db, clock, "dead-worker")
    live_in, live_out = _held(db, clock, "live-worker")
    with db.session() as s:
        _beat(s, "dead-worker", start)
        _beat(s, "live-worker", start)
    clock.advance(seconds=31)
    with db.session() as s:
        _beat(s, "live-worker", clock.now())
    # this worker has been beating for 31 s: it may judge
    assert leases.reclaim_from_dead(db, "me", beating_since=start) == (1, 1)
    assert _states(db, inbound_id, outbox_id) == (Inbound.QUEUED, Outbox.QUEUED)
    assert _states(db, live_in, live_out) == (Inbound.PROCESSING, Outbox.SENDING)
    # idempotent
    assert leases.reclaim_from_dead(db, "me", beating_since=start) == (0, 0)


def test_after_a_database_outage_nobody_is_judged_until_the_judge_has_beaten_for_30_s(db, clock):
    start = clock.now()
    inbound_id, outbox_id = _held(db, clock, "other-worker")
    with db.session() as s:
        _beat(s, "other-worker", start)
    clock.advance(seconds=40)  # the database was down: nobody could beat
    back = clock.now()
    assert leases.reclaim_from_dead(db, "me", beating_since=None) == (0, 0)
    assert leases.reclaim_from_dead(db, "me", beating_since=back) == (0, 0)
    with db.session() as s:
        _beat(s, "other-worker", clock.now() + timedelta(seconds=3))  # it is alive
    clock.advance(seconds=31)
    with db.session() as s:
        _beat(s, "other-worker", clock.now())
    assert leases.reclaim_from_dead(db, "me", beating_since=back) == (0, 0)
    assert _states(db, inbound_id, outbox_id) == (Inbound.PROCESSING, Outbox.SENDING)


def test_a_worker_never_reclaims_its_own_rows(db, clock):
    start = clock.now()
    inbound_id, outbox_id = _held(db, clock, "me")
    with db.session() as s:
        _beat(s, "me", start)
    clock.advance(seconds=60)
    assert leases.reclaim_from_dead(db, "me", beating_since=start) == (0, 0)
    assert _states(db, inbound_id, outbox_id) == (Inbound.PROCESSING, Outbox.SENDING)


def test_a_worker_answers_the_message_a_killed_worker_held(config, db, clock):
    from conversations.rasa import RasaClient
    from conversations.worker import Worker
    from tests.rasa_fake import FakeRasa

    with FakeRasa() as rasa:
        worker = Worker(config, db, name="w2", rasa=RasaClient(rasa.url, timeout=5), dispatch=False)
        worker.heartbeat()
        inbound_id, _ = _held(db, clock, "w1-killed")
        with db.session() as s:
            _beat(s, "w1-killed", clock.now())
        worker.drain()
        assert _states(db, inbound_id, _)[0] == Inbound.PROCESSING  # held: its lease runs 90 s
        clock.advance(seconds=31)
        worker.heartbeat()
        worker.reclaim_dead()
        worker.drain()
        with db.session() as s:
            assert s.get(Inbound, inbound_id).state == Inbound.DONE
            assert [r.body for r in s.scalars(select(Outbox).where(Outbox.inbound_id == inbound_id))] == ["re: hello"]
