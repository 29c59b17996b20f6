"""Keywords before Rasa (STOP, START, HELP, language, DELETE — also mid-form
and during a hand-off), the risk lexicon opening a case (also while Rasa is
down, with the reporter acknowledged once), and one holding reply per outage."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conversations.rasa import RasaClient
from conversations.worker import Worker
from lanpya.content import Content
from lanpya.ingest import receive
from lanpya.models import Case, Contact, Inbound, Outbox
from lanpya.outbox import enqueue
from tests.rasa_fake import FakeRasa

SENDER = "+959250000801"


@pytest.fixture
def rasa():
    with FakeRasa() as fake:
        yield fake


@pytest.fixture
def content(config):
    return Content.load(config.content_dir, config)


def worker_for(config, db, rasa) -> Worker:
    return Worker(config, db, name="w1", rasa=RasaClient(rasa.url, timeout=5), dispatch=False)


_n = iter(range(10**6))


def say(db, text: str, sender: str = SENDER) -> int:
    with db.session() as s:
        return receive(s, channel="sms", provider_id=f"SM-kw-{next(_n)}", address=sender, text=text).inbound_id


def bodies(db, inbound_id: int) -> list[str]:
    with db.session() as s:
        return [r.body for r in s.scalars(select(Outbox).where(Outbox.inbound_id == inbound_id).order_by(Outbox.seq))]


def contact(db, sender: str = SENDER) -> Contact:
    with db.session() as s:
        return next(c for c in s.scalars(select(Contact)) if c.address == sender)


def test_stop_mid_form_opts_out_without_rasa_and_start_brings_them_back(config, db, rasa, content, clock):
    worker = worker_for(config, db, rasa)
    say(db, "my sister is missing")  # the bot would be asking form questions now
    worker.drain()
    c = contact(db)
    with db.session() as s:
        campaign = enqueue(s, body="campaign news", channel="sms", contact=s.get(Contact, c.id), kind=Outbox.CAMPAIGN)
        campaign_id = campaign.id
    stop = say(db, "Stop!")
    worker.drain()
    assert bodies(db, stop) == [content.answer("stop_confirm", "en")]
    assert "Stop!" not in rasa.messages_from(c.uuid)
    with db.session() as s:
        assert s.get(Contact, c.id).opted_out is True
        assert s.get(Inbound, stop).keyword == "stop"
        assert s.get(Outbox, campaign_id).state == Outbox.CANCELLED
    # opted out: stored, not answered
    quiet = say(db, "what documents do I need")
    worker.drain()
    assert bodies(db, quiet) == []
    with db.session() as s:
        assert (s.get(Inbound, quiet).state, s.get(Inbound, quiet).error) == (Inbound.DONE, "opted out")
    start = say(db, "START")
    worker.drain()
    assert bodies(db, start) == [content.answer("start_confirm", "en")]
    again = say(db, "what documents do I need")
    worker.drain()
    assert bodies(db, again) == ["re: what documents do I need"]


def test_help_and_stop_work_during_a_handoff(config, db, rasa, content, clock):
    worker = worker_for(config, db, rasa)
    say(db, "hello")
    worker.drain()
    c = contact(db)
    with db.session() as s:
        s.add(Case(contact_id=c.id, handoff=True, source="agent"))
    to_case = say(db, "they took her passport")
    helped = say(db, "HELP")
    worker.drain()
    assert bodies(db, helped) == [content.answer("help", "en")]
    with db.session() as s:
        assert s.get(Inbound, to_case).state == Inbound.HANDOFF
    stop = say(db, "STOP")
    worker.drain()
    assert bodies(db, stop) == [content.answer("stop_confirm", "en")]
    assert rasa.messages_from(c.uuid) == ["hello"]


def test_language_keyword_sets_and_keeps_the_language(config, db, rasa, content, clock):
    worker = worker_for(config, db, rasa)
    chosen = say(db, "JINGHPAW")
    worker.drain()
    assert bodies(db, chosen) == [content.answer("language_set", "kac")]
    c = contact(db)
    assert (c.language, c.language_chosen) == ("kac", True)
    say(db, "how can I go to thailand legally")  # English words no longer switch it
    worker.drain()
    assert rasa.received[-1][2]["language"] == "kac"
    assert contact(db).language == "kac"


def test_delete_and_join_go_to_the_bot_as_intents(config, db, rasa, content, clock):
    worker = worker_for(config, db, rasa)
    say(db, "DELETE MY DATA")
    say(db, "JOIN")
    worker.drain()
    assert rasa.messages_from(contact(db).uuid) == ["/delete_data", "/subscribe"]


def test_language_is_detected_and_remembered(config, db, rasa, clock):
    worker = worker_for(config, db, rasa)
    say(db, "ထိုင်းကို တရားဝင် ဘယ်လိုသွားရမလဲ")
    say(db, "ok")
    worker.drain()
    assert [m[2]["language"] for m in rasa.received] == ["my", "my"]
    c = contact(db)
    assert (c.language, c.language_chosen) == ("my", False)


def test_risk_words_open_a_case_and_tell_rasa(config, db, rasa, clock):
    worker = worker_for(config, db, rasa)
    report = say(db, "my sister was sold to a man in china")
    worker.drain()
    with db.session() as s:
        case = s.scalar(select(Case))
        assert case is not None and case.source == "lexicon"
        assert s.get(Inbound, report).case_id == case.id
    risk = rasa.received[-1][2]["risk"]
    assert risk["case_id"] == case.id and risk["category"] == case.category
    # answered by the bot (which runs the report form); no case_ack while Rasa is up
    assert bodies(db, report) == ["re: my sister was sold to a man in china"]


def test_rasa_down_report_still_opens_a_case_acknowledged_once(config, db, rasa, content, clock):
    worker = worker_for(config, db, rasa)
    rasa.stop()
    first = say(db, "hello")
    worker.drain()
    # the report arrives behind a message that waits for Rasa: it is screened at once
    report = say(db, "my daughter was trafficked to china please help")
    again = say(db, "they took her to china, she was sold")
    worker.drain()
    with db.session() as s:
        cases = s.scalars(select(Case)).all()
        assert len(cases) == 1
        acks = s.scalars(select(Outbox).where(Outbox.dedupe_key == f"case_ack:{cases[0].id}")).all()
        assert len(acks) == 1 and acks[0].body == content.answer("case_ack", "en")
        assert s.get(Inbound, report).screened_at is not None
        assert [s.get(Inbound, i).state for i in (first, report, again)] == [Inbound.QUEUED] * 3
    # one holding reply once the contact has waited long enough, however long Rasa stays away
    for _ in range(8):
        clock.advance(seconds=15)
        worker.drain()
    with db.session() as s:
        holding = s.scalars(select(Outbox).where(Outbox.dedupe_key.like("holding:%"))).all()
        assert len(holding) == 1
        assert holding[0].body == content.answer("holding", "en")
        assert config.hotline_number in holding[0].body
    rasa.start()
    clock.advance(seconds=16)
    worker.drain()
    c = contact(db)
    assert rasa.messages_from(c.uuid) == ["hello", "my daughter was trafficked to china please help",
                                          "they took her to china, she was sold"]
    assert bodies(db, again)[-1] == "re: they took her to china, she was sold"
    with db.session() as s:
        assert len(s.scalars(select(Outbox).where(Outbox.dedupe_key.like("holding:%"))).all()) == 1
        assert len(s.scalars(select(Case)).all()) == 1


def test_a_second_outage_gets_a_new_holding_reply(config, db, rasa, content, clock):
    worker = worker_for(config, db, rasa)
    for _round in range(2):
        rasa.stop()
        say(db, "what documents do I need")
        for _ in range(6):
            worker.drain()
            clock.advance(seconds=15)
        rasa.start()
        clock.advance(seconds=16)
        worker.drain()
    with db.session() as s:
        assert len(s.scalars(select(Outbox).where(Outbox.dedupe_key.like("holding:%"))).all()) == 2


def test_pictures_and_stickers_get_the_text_only_answer_once(config, db, rasa, content, clock):
    worker = worker_for(config, db, rasa)
    with db.session() as s:
        sms = receive(s, channel="sms", provider_id="SM-mms-1", address=SENDER, text="", kind="media",
                      media={"items": [{"url": "https://example.org/a.jpg", "type": "image/jpeg"}]}).inbound_id
        viber = receive(s, channel="viber", provider_id="vb-sticker-1", address="viber-user-abcdefgh",
                        text="", kind="sticker", media={"type": "sticker", "sticker_id": 40133}).inbound_id
    worker.drain()
    assert bodies(db, sms) == [content.answer("text_only", config.default_language)]
    assert bodies(db, viber) == [content.answer("unsupported_media", config.default_language, channel="viber")]
    assert rasa.received == []


def test_an_empty_bot_answer_gets_the_default_answer_not_silence(config, db, rasa, content, clock):
    rasa.scripted["hello"] = {"messages": []}
    inbound = say(db, "hello")
    worker_for(config, db, rasa).drain()
    assert bodies(db, inbound) == [content.answer("utter_default", "en")]
