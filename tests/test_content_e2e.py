"""With the real trained model: what people receive is content/answers in
their language, rendered by the web app's NLG endpoint (not the domain's
English fallback texts)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conversations.rasa import RasaClient
from conversations.worker import Worker
from lanpya.content import Content
from lanpya.ingest import receive
from lanpya.models import Inbound, Outbox

pytest_plugins = ["tests.stack"]

pytestmark = pytest.mark.rasa


def _say(db, sender: str, text: str, n: int) -> int:
    with db.session() as s:
        return receive(s, channel="sms", provider_id=f"SM-content-e2e-{sender[-4:]}-{n}", address=sender,
                       text=text).inbound_id


def _bodies(db, inbound_id: int) -> list[str]:
    with db.session() as s:
        return [r.body for r in s.scalars(select(Outbox).where(Outbox.inbound_id == inbound_id).order_by(Outbox.seq))]


@pytest.mark.parametrize("sender,text,language", [
    ("+959250009101", "ENGLISH", "en"),
    ("+959250009102", "မြန်မာ", "my"),
    ("+959250009103", "JINGHPAW", "kac"),
    ("+959250009104", "တႆး", "shn"),
])
def test_people_get_content_answers_in_their_language(rasa_stack, sender, text, language):
    content = Content.load(rasa_stack.config.content_dir, rasa_stack.config)
    worker = Worker(rasa_stack.config, rasa_stack.db, name="content-e2e",
                    rasa=RasaClient(rasa_stack.rasa_url, timeout=30), dispatch=False)
    chosen = _say(rasa_stack.db, sender, text, 1)  # a language keyword: answered by the worker
    menu = _say(rasa_stack.db, sender, "MENU", 2)  # goes through Rasa and the NLG endpoint
    worker.drain(timeout=90)
    assert _bodies(rasa_stack.db, chosen) == [content.answer("language_set", language)]
    with rasa_stack.db.session() as s:
        assert s.get(Inbound, menu).state == Inbound.DONE
    bodies = _bodies(rasa_stack.db, menu)
    assert content.answer("utter_menu", language) in bodies, bodies
