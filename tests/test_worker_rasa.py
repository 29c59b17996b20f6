"""The worker with the real trained model (Rasa + action server + the web
app's NLG): answers in the contact's language, and a Rasa outage mid-run
loses nothing, sends one holding reply, and answers after Rasa is back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conversations.rasa import RasaClient
from conversations.worker import Worker
from lanpya.ingest import receive
from lanpya.models import Contact, Inbound, Outbox

pytest_plugins = ["tests.stack"]

pytestmark = pytest.mark.rasa


def say(db, sender: str, text: str, n: int) -> int:
    with db.session() as s:
        return receive(s, channel="sms", provider_id=f"SM-real-{sender}-{n}", address=sender, text=text).inbound_id


def replies(db, inbound_id: int) -> list[Outbox]:
    with db.session() as s:
        return list(s.scalars(select(Outbox).where(Outbox.inbound_id == inbound_id).order_by(Outbox.seq)))


def make_worker(stack) -> Worker:
    return Worker(stack.config, stack.db, name="real", rasa=RasaClient(stack.rasa_url, timeout=30), dispatch=False)


def test_real_model_answers_greeting_and_question(rasa_stack):
    worker = make_worker(rasa_stack)
    hello = say(rasa_stack.db, "+959250001001", "hello", 1)
    question = say(rasa_stack.db, "+959250001001", "how can I go to work in thailand legally", 2)
    worker.drain(timeout=60)
    with rasa_stack.db.session() as s:
        first, second = s.get(Inbound, hello), s.get(Inbound, question)
        assert (first.state, first.intent) == (Inbound.DONE, "greet")
        assert second.state == Inbound.DONE
        assert second.intent == "migrate_legally", second.intent
        assert second.confidence and second.confidence > 0.3
        assert first.language == "en"
    assert replies(rasa_stack.db, hello) and replies(rasa_stack.db, question)
    assert all(r.body and "utter_" not in r.body for r in replies(rasa_stack.db, question))


def test_rasa_stopped_mid_run_loses_nothing_one_holding_reply_answers_after(rasa_stack, clock):
    db = rasa_stack.db
    sender = "+959250001002"
    worker = make_worker(rasa_stack)
    before = say(db, sender, "hello", 1)
    worker.drain(timeout=60)
    assert replies(db, before)
    rasa_stack.stop_rasa()
    try:
        during = [say(db, sender, "how can I go to work in thailand legally", 2),
                  say(db, sender, "what documents do I need", 3)]
        worker.drain()
        clock.advance(seconds=rasa_stack.config.holding_reply_after_s + 1)
        for _ in range(4):  # retries while Rasa is away
            worker.drain()
            clock.advance(seconds=16)
        with db.session() as s:
            assert [s.get(Inbound, i).state for i in during] == [Inbound.QUEUED] * 2
            holding = s.scalars(
                select(Outbox).where(Outbox.dedupe_key.like("holding:%"))
                .join(Contact, Contact.id == Outbox.contact_id).where(Contact.id == s.get(Inbound, before).contact_id)
            ).all()
            assert len(holding) == 1
            assert rasa_stack.config.hotline_number in holding[0].body
    finally:
        rasa_stack.start_rasa()
    clock.advance(seconds=16)
    worker.drain(timeout=120)
    with db.session() as s:
        assert [s.get(Inbound, i).state for i in during] == [Inbound.DONE] * 2
        assert s.get(Inbound, during[0]).intent == "migrate_legally"
        n_holding = len(s.scalars(select(Outbox).where(Outbox.dedupe_key.like("holding:%"))).all())
    answered = [r for i in during for r in replies(db, i) if not (r.dedupe_key or "").startswith("holding:")]
    assert len(answered) >= 2
    assert n_holding == 1
