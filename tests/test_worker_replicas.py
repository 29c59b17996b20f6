"""Several Rasa replicas behind the worker (``RASA_URL`` comma-separated): each
contact is pinned to one replica by a stable hash of its random id, and when
that replica is stopped its contacts fail over to the next one — nothing
lost, nothing answered twice, order per contact kept."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from sqlalchemy import select

from conversations.rasa import RasaClient, RasaReplicas, replica_index
from conversations.worker import Worker
from lanpya.config import Config
from lanpya.ingest import receive
from lanpya.models import Contact, Inbound, Outbox
from tests.rasa_fake import FakeRasa

CONTACTS = 16


@pytest.fixture
def replicas():
    with FakeRasa() as a, FakeRasa() as b:
        yield a, b


def say(db, sender: str, text: str) -> int:
    with db.session() as s:
        return receive(
            s, channel="sms", provider_id=f"SM-{sender}-{text}"[:80], address=sender, text=text
        ).inbound_id


def senders() -> list[str]:
    return [f"+9592500{n:05d}" for n in range(CONTACTS)]


def uuids(db) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(Contact.uuid).order_by(Contact.id)))


def bodies(db) -> dict[int, list[str]]:
    with db.session() as s:
        out: dict[int, list[str]] = {}
        for r in s.scalars(select(Outbox).order_by(Outbox.inbound_id, Outbox.seq)):
            out.setdefault(r.inbound_id, []).append(r.body)
        return out


def replicated_worker(config, db, a: FakeRasa, b: FakeRasa) -> Worker:
    # built from the configuration, as `lanpya worker` builds it
    cfg = dataclasses.replace(config, rasa_url=f"{a.url}, {b.url}/", rasa_timeout_s=5)
    worker = Worker(cfg, db, name="w1", dispatch=False)
    assert isinstance(worker.rasa, RasaReplicas)
    assert [c.base_url for c in worker.rasa.clients] == [a.url, b.url]
    return worker


def test_rasa_url_may_list_several_replicas():
    assert Config.from_env({"RASA_URL": "http://r1:5005, http://r2:5005/"}, dotenv=False).rasa_urls == [
        "http://r1:5005",
        "http://r2:5005",
    ]
    assert Config.from_env({"RASA_URL": "http://r1:5005"}, dotenv=False).rasa_urls == ["http://r1:5005"]


def test_the_pinning_hash_is_stable_and_spreads_contacts():
    # the same on every worker process and every release (not Python's salted
    # hash()): these values are what SHA-256 gives; a change would move contacts
    assert [replica_index(f"contact-{n}", 3) for n in range(8)] == [2, 2, 0, 2, 1, 0, 1, 0]
    assert [replica_index(f"contact-{n}", 2) for n in range(8)] == [0, 1, 1, 0, 1, 1, 1, 1]
    spread = Counter(replica_index(f"{n:08x}-uuid", 2) for n in range(1000))
    assert 400 < spread[0] < 600 and spread[0] + spread[1] == 1000


def test_each_contact_is_pinned_to_one_replica_and_a_stopped_one_fails_over(config, db, replicas, clock):
    a, b = replicas
    worker = replicated_worker(config, db, a, b)
    first = [say(db, sender, "first question") for sender in senders()]
    worker.drain()
    ids = uuids(db)
    on = {u: [r for r in (a, b) if r.messages_from(u)] for u in ids}
    # every contact went to exactly the replica its id hashes to
    assert all(on[u] == [(a, b)[replica_index(u, 2)]] for u in ids)
    pinned_to_b = [u for u in ids if replica_index(u, 2) == 1]
    assert pinned_to_b and len(pinned_to_b) < CONTACTS  # both replicas serve (16 random ids)
    second = [say(db, sender, "second question") for sender in senders()]
    worker.drain()
    assert all(len(on[u][0].messages_from(u)) == 2 for u in ids)  # still pinned

    b.stop()
    third = [say(db, sender, "third question") for sender in senders()]
    fourth = [say(db, sender, "fourth question") for sender in senders()]
    worker.drain()
    # b's contacts were answered by a, at once (no retry, no holding reply), in order
    for u in pinned_to_b:
        assert a.messages_from(u) == ["third question", "fourth question"]
    answered = bodies(db)
    for n, inbound_ids in enumerate((first, second, third, fourth)):
        text = ("first", "second", "third", "fourth")[n] + " question"
        assert all(answered.get(i) == [f"re: {text}"] for i in inbound_ids)
    with db.session() as s:
        assert {m.state for m in s.scalars(select(Inbound))} == {Inbound.DONE}
        assert not s.scalars(select(Outbox).where(Outbox.dedupe_key.like("holding:%"))).all()
    # nothing answered twice: every message reached exactly one replica once
    assert len(a.received) + len(b.received) == 4 * CONTACTS
    assert a.overlaps == b.overlaps == 0

    # b back: after its circuit pause its contacts return to it
    b.start()
    clock.advance(seconds=16)
    fifth = [say(db, sender, "fifth question") for sender in senders()]
    worker.drain()
    for u in pinned_to_b:
        assert b.messages_from(u)[-1] == "fifth question"
        assert a.messages_from(u) == ["third question", "fourth question"]
    assert all(bodies(db).get(i) == ["re: fifth question"] for i in fifth)


def test_all_replicas_away_loses_nothing_and_the_first_back_answers(config, db, replicas, clock):
    a, b = replicas
    worker = replicated_worker(config, db, a, b)
    a.stop()
    b.stop()
    inbound_id = say(db, senders()[0], "is this agency licensed")
    worker.drain()
    with db.session() as s:
        msg = s.get(Inbound, inbound_id)
        assert (msg.state, msg.attempts) == (Inbound.QUEUED, 1)
        assert msg.error.startswith("rasa: no replica reachable")
    clock.advance(seconds=config.holding_reply_after_s + 1)
    worker.drain()
    with db.session() as s:
        holding = s.scalars(select(Outbox).where(Outbox.dedupe_key.like("holding:%"))).all()
        assert len(holding) == 1  # the holding rule is the same as with one Rasa
    a.start()
    clock.advance(seconds=16)
    worker.drain()
    assert bodies(db)[inbound_id][-1] == "re: is this agency licensed"
    assert len(a.received) == 1 and b.received == []


def test_a_timeout_is_not_retried_on_another_replica_within_the_attempt(replicas, clock):
    """A slow replica may have run the turn: the message waits for its retry
    (by then the slow replica's circuit is open and the next one takes it)."""
    a, b = replicas
    a.delay = b.delay = 1.0
    pool = RasaReplicas([RasaClient(a.url, timeout=0.3), RasaClient(b.url, timeout=0.3)])
    sender = "slow-contact"
    from conversations.rasa import RasaUnavailable, RasaUnreachable

    with pytest.raises(RasaUnavailable) as err:
        pool.send(sender, "hello", language="en", channel="sms")
    assert not isinstance(err.value, RasaUnreachable)
    first, second = pool.ring(sender)
    assert (first.available, second.available) == (False, True)
    a.delay = b.delay = 0
    reply = pool.send(sender, "hello", language="en", channel="sms")  # the next replica, now
    assert reply.messages == [{"text": "re: hello"}]
    assert second.base_url == (a.url if a.received else b.url)
