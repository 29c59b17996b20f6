"""Hand-off: while a contact's case is in hand-off their messages go to the
case for the agent, not to Rasa; handed back, the bot answers again (in a
fresh Rasa session)."""

from __future__ import annotations

from sqlalchemy import select

from conversations.rasa import RasaClient
from conversations.worker import Worker
from lanpya.ingest import receive
from lanpya.models import Case, Contact, Inbound, Outbox
from tests.rasa_fake import FakeRasa

SENDER = "+959250000301"


def say(db, text: str, n: int) -> int:
    with db.session() as s:
        return receive(s, channel="sms", provider_id=f"SM-handoff-{n}", address=SENDER, text=text).inbound_id


def test_handoff_routes_to_the_case_and_back(config, db, clock):
    with FakeRasa() as rasa:
        worker = Worker(config, db, name="w1", rasa=RasaClient(rasa.url, timeout=5), dispatch=False)
        first = say(db, "hello there", 1)
        worker.drain()
        with db.session() as s:
            contact = s.scalar(select(Contact))
            case = Case(contact_id=contact.id, severity=Case.URGENT, category="trafficking", handoff=True,
                        source="agent")
            s.add(case)
            s.flush()
            case_id = case.id
        to_agent = [say(db, f"my sister is missing, message {i}", 10 + i) for i in range(3)]
        worker.drain()
        with db.session() as s:
            for i in to_agent:
                msg = s.get(Inbound, i)
                assert (msg.state, msg.case_id) == (Inbound.HANDOFF, case_id)
            assert s.scalars(select(Outbox).where(Outbox.inbound_id.in_(to_agent))).all() == []
        assert rasa.messages_from(contact.uuid) == ["hello there"]

        # the agent hands the contact back to the bot
        with db.session() as s:
            s.get(Case, case_id).handoff = False
        back = say(db, "thank you", 20)
        worker.drain()
        with db.session() as s:
            msg = s.get(Inbound, back)
            assert msg.state == Inbound.DONE
            assert [r.body for r in s.scalars(select(Outbox).where(Outbox.inbound_id == back))] == ["re: thank you"]
        assert rasa.messages_from(contact.uuid) == ["hello there", "thank you"]
        # the conversation starts afresh after the hand-off (no half-filled form)
        assert rasa.restarts == [contact.uuid]
        assert first


def test_a_closed_case_does_not_hold_messages(config, db, clock):
    with FakeRasa() as rasa:
        worker = Worker(config, db, name="w1", rasa=RasaClient(rasa.url, timeout=5), dispatch=False)
        say(db, "hello there", 1)
        worker.drain()
        with db.session() as s:
            contact = s.scalar(select(Contact))
            s.add(Case(contact_id=contact.id, handoff=True, status=Case.CLOSED))
        later = say(db, "another question", 2)
        worker.drain()
        with db.session() as s:
            assert s.get(Inbound, later).state == Inbound.DONE
