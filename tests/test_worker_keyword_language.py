"""A keyword typed in Latin letters (STOP, HELP, START — what carriers and
posters teach) does not turn a Burmese, Jinghpaw or Shan speaker's
conversation into English: the answer comes in the language they were
using, and their remembered language stays."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conversations.rasa import RasaClient
from conversations.worker import Worker
from lanpya.content import Content
from lanpya.ingest import receive
from lanpya.models import Contact, Outbox
from tests.rasa_fake import FakeRasa

_n = iter(range(10**6))


@pytest.fixture
def rasa():
    with FakeRasa() as fake:
        yield fake


def _say(db, sender: str, text: str) -> int:
    with db.session() as s:
        return receive(s, channel="sms", provider_id=f"SM-kwl-{next(_n)}", address=sender, text=text).inbound_id


def _bodies(db, inbound_id: int) -> list[str]:
    with db.session() as s:
        return [r.body for r in s.scalars(select(Outbox).where(Outbox.inbound_id == inbound_id).order_by(Outbox.seq))]


def _language(db, sender: str) -> str:
    with db.session() as s:
        return next(c for c in s.scalars(select(Contact)) if c.address == sender).language


@pytest.mark.parametrize(
    ("sender", "first", "language"),
    [
        ("+959250000901", "ထိုင်းကို တရားဝင် ဘယ်လိုသွားရမလဲ", "my"),
        ("+959250000902", "Kaw Thai mungdan de hkrun na matu hpa baw galaw ra na kun?", "kac"),
    ],
)
@pytest.mark.parametrize("keyword", ["STOP", "HELP"])
def test_latin_keyword_answers_in_the_contacts_language(config, db, rasa, sender, first, language, keyword):
    content = Content.load(config.content_dir, config)
    worker = Worker(config, db, name="w1", rasa=RasaClient(rasa.url, timeout=5), dispatch=False)
    _say(db, sender, first)
    worker.drain()
    assert _language(db, sender) == language
    kw = _say(db, sender, keyword)
    worker.drain()
    key = "stop_confirm" if keyword == "STOP" else "help"
    assert _bodies(db, kw) == [content.answer(key, language)]
    assert _language(db, sender) == language


def test_a_short_english_thanks_keeps_a_burmese_conversation_burmese(config, db, rasa):
    worker = Worker(config, db, name="w1", rasa=RasaClient(rasa.url, timeout=5), dispatch=False)
    sender = "+959250000903"
    _say(db, sender, "ထိုင်းကို တရားဝင် ဘယ်လိုသွားရမလဲ")
    worker.drain()
    _say(db, sender, "thanks")
    worker.drain()
    assert _language(db, sender) == "my"
    with db.session() as s:
        c = next(c for c in s.scalars(select(Contact)) if c.address == sender)
        uuid = c.uuid
    # Rasa was told the contact's language, not "en"
    metadata = [m for sender_, text, m in rasa.received if sender_ == uuid and text == "thanks"]
    assert [m.get("language") for m in metadata] == ["my"]
