"""In and out across the seams: signed webhooks into a live web server, the
real conversation worker (against the fake Rasa) answering, the outbox sent
through the real twilio client and Viber REST to the fake providers, and the
providers' status callbacks coming back."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from lanpya.crypto import lookup_hash
from lanpya.db import Database
from lanpya.models import Contact, Inbound, Outbox
from tests.fakes import twilio_form, viber_message
from tests.rasa_fake import FakeRasa
from tests.support import LiveServer, free_port, wait_until

PHONE = "+959791230001"
VIBER_ID = "e2e-viber-user-0001=="


@pytest.fixture
def stack(provider_config, fake_twilio, fake_viber):
    from conversations.rasa import RasaClient
    from conversations.worker import Worker
    from webhook import create_app

    port = free_port()
    cfg = replace(provider_config, public_url=f"http://127.0.0.1:{port}")
    db = Database(cfg.database_url)
    with FakeRasa() as rasa, LiveServer(create_app(cfg, db), port=port) as web:
        worker = Worker(cfg, db, name="e2e", rasa=RasaClient(rasa.url, timeout=5), dispatch=True, threads=1)
        assert fake_viber.url and _register_viber(cfg, web.url)
        yield cfg, db, web, worker
        worker.shutdown()
    db.dispose()


def _register_viber(cfg, url):
    from lanpya.channels.viber_sender import ViberSender

    ok, _ = ViberSender(cfg).set_webhook(url + "/viber")
    return ok


def _sms(fake_twilio, web_url, cfg, form):
    import requests

    from tests.fakes import twilio_signature

    url = cfg.public_url + "/sms/twilio"
    return requests.post(web_url + "/sms/twilio", data=form, timeout=10,
                         headers={"X-Twilio-Signature": twilio_signature(fake_twilio.auth_token, url, form)})


def test_sms_question_answered_and_delivery_reported(stack, fake_twilio):
    cfg, db, web, worker = stack
    assert _sms(fake_twilio, web.url, cfg, twilio_form(PHONE, "how do I go to Thailand legally")).status_code == 200
    worker.drain(30)
    (sent,) = fake_twilio.sent_to(PHONE)
    assert sent.body == "re: how do I go to Thailand legally"  # the fake Rasa's answer
    # Twilio reports delivery through the signed callback URL the sender gave it
    assert fake_twilio.callback(sent.sid, "sent").status_code == 200
    assert fake_twilio.callback(sent.sid, "delivered").status_code == 200
    assert fake_twilio.callback(sent.sid, "sent").status_code == 200  # late and out of order
    with db.session() as s:
        row = s.scalars(select(Outbox)).one()
        assert (row.state, row.provider_status, row.provider_id) == (Outbox.DELIVERED, "delivered", sent.sid)
        assert s.scalars(select(Inbound)).one().state == Inbound.DONE


def test_viber_message_answered_and_seen(stack, fake_viber):
    cfg, db, web, worker = stack
    assert fake_viber.post_event(viber_message(VIBER_ID, "hello there")).status_code == 200
    worker.drain(30)
    (sent,) = fake_viber.sent_to(VIBER_ID)
    assert sent.text == "re: hello there"
    event = {"event": "seen", "timestamp": 1, "message_token": sent.token, "user_id": VIBER_ID}
    assert fake_viber.post_event(event).status_code == 200
    with db.session() as s:
        assert s.scalars(select(Outbox.state)).one() == Outbox.READ


def test_opt_out_by_twilio_error_code_stops_campaigns(stack, fake_twilio):
    cfg, db, web, worker = stack
    _sms(fake_twilio, web.url, cfg, twilio_form(PHONE, "what are my rights at work"))
    worker.drain(30)
    (sent,) = fake_twilio.sent_to(PHONE)
    fake_twilio.callback(sent.sid, "failed", error_code=21610)
    with db.session() as s:
        contact = s.scalar(select(Contact).where(Contact.address_hash == lookup_hash(PHONE)))
        assert contact.opted_out
        from lanpya.outbox import enqueue

        enqueue(s, body="campaign text", channel="sms", contact=contact, kind=Outbox.CAMPAIGN)
    worker.drain(30)
    assert len(fake_twilio.sent_to(PHONE)) == 1
    with db.session() as s:
        assert s.scalar(select(Outbox.state).where(Outbox.kind == Outbox.CAMPAIGN)) == Outbox.CANCELLED


def test_media_only_messages_get_the_text_only_answer(stack, fake_twilio, fake_viber):
    pytest.importorskip("lanpya.content")
    cfg, db, web, worker = stack
    form = twilio_form(PHONE, "", NumMedia="1", MediaUrl0="https://api.twilio.com/m/ME9", MediaContentType0="image/jpeg")
    assert _sms(fake_twilio, web.url, cfg, form).status_code == 200
    assert fake_viber.post_event(viber_message(VIBER_ID, None, type="sticker", sticker_id=46105)).status_code == 200
    worker.drain(30)
    assert len(fake_twilio.sent_to(PHONE)) == 1 and fake_twilio.sent_to(PHONE)[0].body
    assert len(fake_viber.sent_to(VIBER_ID)) == 1 and fake_viber.sent_to(VIBER_ID)[0].text
    with db.session() as s:
        assert {r.dedupe_key.split(":")[0] for r in s.scalars(select(Outbox))} == {"media"}


def test_keywords_work_through_the_channels_even_during_a_hand_off(stack, fake_twilio, fake_viber):
    """STOP (in Burmese), START, HELP over SMS while a hotline case holds the
    conversation; a language button over Viber."""
    pytest.importorskip("lanpya.keywords")
    from lanpya.models import Case

    cfg, db, web, worker = stack

    def say(text: str, expect_total: int) -> None:
        _sms(fake_twilio, web.url, cfg, twilio_form(PHONE, text))
        wait_until(lambda: (worker.drain(30) or True) and len(fake_twilio.sent_to(PHONE)) >= expect_total,
                   timeout=30, what=f"answer {expect_total}")

    say("hello", 1)
    with db.session() as s:
        contact = s.scalar(select(Contact).where(Contact.address_hash == lookup_hash(PHONE)))
        s.add(Case(contact_id=contact.id, status=Case.NEW, handoff=True, channel="sms"))

    say("ရပ်", 2)
    with db.session() as s:
        assert s.scalar(select(Contact.opted_out).where(Contact.address_hash == lookup_hash(PHONE))) is True
    say("START", 3)
    with db.session() as s:
        assert s.scalar(select(Contact.opted_out).where(Contact.address_hash == lookup_hash(PHONE))) is False
    say("HELP", 4)
    answers = [m.body for m in fake_twilio.sent_to(PHONE)]
    assert len(answers) == 4 and all(answers)
    assert cfg.hotline_number in answers[3]

    fake_viber.post_event(viber_message(VIBER_ID, "Jinghpaw"))
    wait_until(lambda: (worker.drain(30) or True) and fake_viber.sent_to(VIBER_ID), timeout=30, what="language_set")
    with db.session() as s:
        c = s.scalar(select(Contact).where(Contact.address_hash == lookup_hash(VIBER_ID)))
        assert (c.language, c.language_chosen) == ("kac", True)
    assert len(fake_viber.sent_to(VIBER_ID)) == 1
