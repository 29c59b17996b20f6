"""The channel webhooks, courier style: a table of cases for both channels —
valid, forged, missing signature, missing fields, media, duplicate, status
out of order, opt-out by error code, bad JSON, oversized, wrong content type,
unknown event — each with the status, the answer and the rows expected."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from lanpya.config import ConfigError
from lanpya.crypto import lookup_hash
from lanpya.ingest import get_or_create_contact
from lanpya.models import Contact, Inbound, Outbox
from lanpya.outbox import enqueue
from tests.fakes import (
    TWILIO_SID,
    TWILIO_TOKEN,
    VIBER_TOKEN,
    twilio_form,
    twilio_signature,
    viber_body,
    viber_message,
    viber_signature,
)

PHONE = "+959791234567"
VIBER_ID = "pttm25kSGUo1919sBORWyA=="
BIG = "x" * (70 * 1024)
ZAWGYI = "ကၽြန္ေတာ္ ထိုင္းႏိုင္ငံကို အလုပ္သြားလုပ္ခ်င္ပါတယ္"
UNICODE_MY = "ထိုင်းနိုင်ငံကို တရားဝင် ဘယ်လိုသွားရမလဲ"
SHAN = "ၵူၼ်းၶၢႆႉ ၵူၼ်း ၼႂ်း မိူင်းထႆး"
ZAWGYI_AS_UNICODE = "ကျွန်တော် ထိုင်းနိုင်ငံကို အလုပ်သွားလုပ်ချင်ပါတယ်"


@pytest.fixture
def wh_config(config):
    return replace(
        config,
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_from_number="+15005550006",
        viber_auth_token=VIBER_TOKEN,
    )


@pytest.fixture
def wclient(wh_config, db):
    from webhook import create_app

    return create_app(wh_config, db).test_client()


# --- posting --------------------------------------------------------------------------
def post_twilio(client, path: str, form: dict, sign: str = "valid", content_type: str | None = None):
    headers = {}
    url = "http://testserver" + path  # = PUBLIC_URL + path: what Twilio signs
    if sign == "valid":
        headers["X-Twilio-Signature"] = twilio_signature(TWILIO_TOKEN, url, form)
    elif sign == "forged":
        headers["X-Twilio-Signature"] = twilio_signature("not-the-token", url, form)
    elif sign == "other-url":
        headers["X-Twilio-Signature"] = twilio_signature(TWILIO_TOKEN, "http://testserver/elsewhere", form)
    if content_type is None:
        return client.post(path, data=urlencode(form), headers=headers,
                           content_type="application/x-www-form-urlencoded")
    return client.post(path, data=json.dumps(form), headers=headers, content_type=content_type)


def post_viber(client, event, sign: str = "valid", content_type: str = "application/json"):
    raw = event if isinstance(event, bytes) else viber_body(event)
    headers = {}
    if sign == "valid":
        headers["X-Viber-Content-Signature"] = viber_signature(VIBER_TOKEN, raw)
    elif sign == "forged":
        headers["X-Viber-Content-Signature"] = viber_signature("not-the-token", raw)
    return client.post("/viber", data=raw, headers=headers, content_type=content_type)


# --- the table -----------------------------------------------------------------------------
@dataclass
class Row:
    label: str
    channel: str  # twilio | twilio_status | viber
    payload: object
    status: int
    contains: str = ""
    inbound: int = 0
    sign: str = "valid"
    content_type: str | None = None
    repeat: int = 1
    setup: Callable | None = None
    check: Callable | None = None
    extra: dict = field(default_factory=dict)


def _sent_sms(s, sid="SM" + "a" * 32, status="sent"):
    c = get_or_create_contact(s, "sms", PHONE)
    row = enqueue(s, body="hi", channel="sms", contact=c)
    row.state, row.provider_id, row.provider_status = Outbox.SENT, sid, status
    return row


def _sent_viber(s, token="5491219213945456789", status="sent"):
    c = get_or_create_contact(s, "viber", VIBER_ID)
    row = enqueue(s, body="hi", channel="viber", contact=c)
    row.state, row.provider_id, row.provider_status = Outbox.SENT, token, status
    return row


def _only_inbound(s) -> Inbound:
    return s.scalars(select(Inbound)).one()


def _contact(s, channel, address) -> Contact:
    return s.scalar(select(Contact).where(Contact.channel == channel, Contact.address_hash == lookup_hash(address)))


def _outbox(s) -> Outbox:
    return s.scalars(select(Outbox)).one()


def status_form(status, sid="SM" + "a" * 32, **extra):
    form = {"MessageSid": sid, "SmsSid": sid, "AccountSid": TWILIO_SID, "MessageStatus": status,
            "To": PHONE, "From": "+15005550006", "ApiVersion": "2010-04-01"}
    form.update(extra)
    return form


def _missing(*names):
    form = twilio_form()
    for n in names:
        form.pop(n)
    return form


CASES = [
    # --- Twilio inbound -----------------------------------------------------------------
    Row("twilio valid", "twilio", twilio_form(PHONE, "Is this agency licensed?", sid="SM1"), 200, "<Response/>", 1,
        check=lambda s: (_only_inbound(s).body == "Is this agency licensed?"
                         and _only_inbound(s).provider_id == "SM1"
                         and _contact(s, "sms", PHONE).country == "MM")),
    Row("twilio Burmese digits in From", "twilio", twilio_form("+၉၅၉၇၉၁၂၃၄၅၆၇", "hi there"), 200, "<Response/>", 1,
        check=lambda s: _contact(s, "sms", PHONE) is not None),
    Row("twilio Thai number", "twilio", twilio_form("+66 81 234 5678", "hello"), 200, "", 1,
        check=lambda s: _contact(s, "sms", "+66812345678").timezone == "Asia/Bangkok"),
    Row("twilio local Myanmar form", "twilio", twilio_form("09791234567", "hello"), 200, "", 1,
        check=lambda s: _contact(s, "sms", PHONE) is not None),
    Row("twilio Chinese number", "twilio", twilio_form("+86 138 0013 8000", "hello"), 200, "", 1,
        check=lambda s: _contact(s, "sms", "+8613800138000").timezone == "Asia/Shanghai"),
    Row("twilio Malaysian number", "twilio", twilio_form("+60 12-345 6789", "hello"), 200, "", 1,
        check=lambda s: _contact(s, "sms", "+60123456789").country == "MY"),
    Row("twilio Unicode Burmese untouched", "twilio", twilio_form(PHONE, UNICODE_MY), 200, "", 1,
        check=lambda s: _only_inbound(s).body == UNICODE_MY and _contact(s, "sms", PHONE).encoding == "unicode"),
    Row("twilio Shan untouched", "twilio", twilio_form(PHONE, SHAN), 200, "", 1,
        check=lambda s: _only_inbound(s).body == SHAN),
    Row("twilio zawgyi converted", "twilio", twilio_form(PHONE, ZAWGYI), 200, "", 1,
        check=lambda s: _only_inbound(s).body == ZAWGYI_AS_UNICODE
        and _contact(s, "sms", PHONE).encoding == "zawgyi"),
    Row("twilio forged", "twilio", twilio_form(), 403, "invalid", 0, sign="forged"),
    Row("twilio missing signature", "twilio", twilio_form(), 403, "missing X-Twilio-Signature", 0, sign="none"),
    Row("twilio signed for another URL", "twilio", twilio_form(), 403, "", 0, sign="other-url"),
    Row("twilio missing fields", "twilio", _missing("MessageSid", "From"), 400,
        "missing required field(s): MessageSid, From", 0),
    Row("twilio missing AccountSid", "twilio", _missing("AccountSid"), 400, "AccountSid", 0),
    Row("twilio From not a number", "twilio", twilio_form("not-a-number"), 400, "From", 0),
    Row("twilio media only", "twilio",
        twilio_form(PHONE, "", NumMedia="2", MediaUrl0="https://api.twilio.com/m/ME1", MediaContentType0="image/jpeg",
                    MediaUrl1="https://api.twilio.com/m/ME2", MediaContentType1="image/png"),
        200, "<Response/>", 1,
        check=lambda s: _only_inbound(s).kind == "media"
        and [m["url"] for m in _only_inbound(s).media["items"]]
        == ["https://api.twilio.com/m/ME1", "https://api.twilio.com/m/ME2"]),
    Row("twilio media with text is read", "twilio",
        twilio_form(PHONE, "my sister", NumMedia="1", MediaUrl0="https://api.twilio.com/m/ME3"), 200, "", 1,
        check=lambda s: _only_inbound(s).kind == "text" and _only_inbound(s).media is not None),
    Row("twilio duplicate", "twilio", twilio_form(PHONE, "same", sid="SMdup"), 200, "<Response/>", 1, repeat=3),
    Row("twilio wrong content type", "twilio", twilio_form(), 415, "expected", 0, content_type="application/json"),
    Row("twilio oversized", "twilio", twilio_form(PHONE, BIG), 413, "", 0),
    # --- Twilio status callbacks ----------------------------------------------------------
    Row("status delivered", "twilio_status", status_form("delivered"), 200, "<Response/>",
        setup=_sent_sms, check=lambda s: _outbox(s).state == Outbox.DELIVERED),
    Row("status out of order ignored", "twilio_status", status_form("sent"), 200, "",
        setup=lambda s: _sent_sms(s, status="delivered"),
        check=lambda s: _outbox(s).provider_status == "delivered" and _outbox(s).state == Outbox.SENT),
    Row("status opt-out by 21610", "twilio_status", status_form("failed", ErrorCode="21610"), 200, "",
        setup=_sent_sms,
        check=lambda s: _outbox(s).state == Outbox.FAILED and _outbox(s).error_code == "twilio:21610"
        and _contact(s, "sms", PHONE).opted_out),
    Row("status undelivered 30003 keeps contact", "twilio_status", status_form("undelivered", ErrorCode="30003"),
        200, "", setup=_sent_sms,
        check=lambda s: _outbox(s).state == Outbox.UNDELIVERED and not _contact(s, "sms", PHONE).unreachable),
    Row("status unknown", "twilio_status", status_form("exploded"), 400, "unknown MessageStatus",
        setup=_sent_sms, check=lambda s: _outbox(s).provider_status == "sent"),
    Row("status missing MessageStatus", "twilio_status",
        {k: v for k, v in status_form("sent").items() if k != "MessageStatus"}, 400, "MessageStatus"),
    Row("status forged", "twilio_status", status_form("failed", ErrorCode="21610"), 403, "", sign="forged",
        setup=_sent_sms, check=lambda s: not _contact(s, "sms", PHONE).opted_out),
    Row("status for an unknown message", "twilio_status", status_form("delivered", sid="SMnobody"), 200, ""),
    # --- Viber ------------------------------------------------------------------------------
    Row("viber valid", "viber", viber_message(VIBER_ID, "Hello Lanpya", token=111), 200, '"status":0', 1,
        check=lambda s: _only_inbound(s).body == "Hello Lanpya" and _only_inbound(s).provider_id == "111"
        and _contact(s, "viber", VIBER_ID) is not None),
    Row("viber forged", "viber", viber_message(VIBER_ID), 403, "invalid", 0, sign="forged"),
    Row("viber missing signature", "viber", viber_message(VIBER_ID), 403, "missing", 0, sign="none"),
    Row("viber bad JSON", "viber", b'{"event": "message", ', 400, "malformed JSON", 0),
    Row("viber not an object", "viber", b"[1, 2]", 400, "JSON object", 0),
    Row("viber missing sender", "viber", {k: v for k, v in viber_message().items() if k != "sender"}, 400,
        "sender", 0),
    Row("viber missing event", "viber", {"timestamp": 1}, 400, "event", 0),
    Row("viber wrong content type", "viber", viber_message(), 415, "", 0, content_type="text/plain"),
    Row("viber oversized", "viber", viber_message(VIBER_ID, BIG), 413, "", 0),
    Row("viber duplicate", "viber", viber_message(VIBER_ID, "same", token=222), 200, "", 1, repeat=3),
    Row("viber sticker", "viber", viber_message(VIBER_ID, None, type="sticker", sticker_id=46105), 200, "", 1,
        check=lambda s: _only_inbound(s).kind == "sticker" and _only_inbound(s).media["sticker_id"] == 46105),
    Row("viber picture", "viber", viber_message(VIBER_ID, None, type="picture", media="https://dl/x.jpg"), 200, "",
        1, check=lambda s: _only_inbound(s).kind == "media"),
    Row("viber picture with caption is read", "viber",
        viber_message(VIBER_ID, "this is the agency", type="picture", media="https://dl/y.jpg"), 200, "", 1,
        check=lambda s: _only_inbound(s).kind == "text" and _only_inbound(s).media["type"] == "picture"),
    Row("viber location", "viber",
        viber_message(VIBER_ID, None, type="location", location={"lat": 25.38, "lon": 97.39}), 200, "", 1,
        check=lambda s: _only_inbound(s).kind == "location"),
    Row("viber unknown event", "viber", {"event": "client_status", "timestamp": 1}, 200, '"status":0', 0),
    Row("viber webhook handshake", "viber",
        {"event": "webhook", "timestamp": 1, "chat_hostname": "SN", "message_token": 1}, 200, "ok", 0),
    Row("viber seen", "viber", {"event": "seen", "timestamp": 1, "message_token": 5491219213945456789,
                                "user_id": VIBER_ID}, 200, "",
        setup=_sent_viber, check=lambda s: _outbox(s).state == Outbox.READ),
    Row("viber delivered after seen is ignored", "viber",
        {"event": "delivered", "timestamp": 1, "message_token": 5491219213945456789, "user_id": VIBER_ID}, 200, "",
        setup=lambda s: _sent_viber(s, status="read"), check=lambda s: _outbox(s).provider_status == "read"),
    Row("viber failed", "viber", {"event": "failed", "timestamp": 1, "message_token": 5491219213945456789,
                                  "user_id": VIBER_ID, "desc": "failure description"}, 200, "",
        setup=_sent_viber, check=lambda s: _outbox(s).state == Outbox.FAILED),
    Row("viber unsubscribed opts out", "viber", {"event": "unsubscribed", "timestamp": 1, "user_id": VIBER_ID},
        200, "", setup=lambda s: get_or_create_contact(s, "viber", VIBER_ID),
        check=lambda s: _contact(s, "viber", VIBER_ID).opted_out and _contact(s, "viber", VIBER_ID).unreachable),
    Row("viber subscribed", "viber", {"event": "subscribed", "timestamp": 1, "user": {"id": VIBER_ID}}, 200, "",
        setup=lambda s: setattr(get_or_create_contact(s, "viber", VIBER_ID), "unreachable", True),
        check=lambda s: not _contact(s, "viber", VIBER_ID).unreachable),
    Row("viber status missing token", "viber", {"event": "seen", "timestamp": 1, "user_id": VIBER_ID}, 400,
        "message_token"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_webhook_table(case: Row, wclient, db):
    if case.setup:
        with db.session() as s:
            case.setup(s)
    for _ in range(case.repeat):
        if case.channel == "viber":
            resp = post_viber(wclient, case.payload, case.sign, case.content_type or "application/json")
        else:
            path = "/sms/twilio" if case.channel == "twilio" else "/sms/twilio/status"
            resp = post_twilio(wclient, path, case.payload, case.sign, case.content_type)
        assert resp.status_code == case.status, resp.get_data(as_text=True)
        assert case.contains in resp.get_data(as_text=True)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Inbound)) == case.inbound
        if case.check:
            assert case.check(s)


# --- beyond the table ------------------------------------------------------------------------
def test_status_only_moves_forward_whatever_the_order(wclient, db):
    with db.session() as s:
        _sent_sms(s, status="queued")
    for status in ["delivered", "sending", "sent", "queued", "read", "delivered"]:
        assert post_twilio(wclient, "/sms/twilio/status", status_form(status)).status_code == 200
    with db.session() as s:
        assert (_outbox(s).provider_status, _outbox(s).state) == ("read", Outbox.READ)


def test_twilio_reply_is_empty_twiml(wclient):
    resp = post_twilio(wclient, "/sms/twilio", twilio_form())
    assert resp.mimetype == "text/xml"
    assert resp.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def test_signature_is_checked_against_public_url_behind_a_proxy(wh_config, db):
    """Twilio signs the public https URL; the app sees http://127.0.0.1:8000."""
    from webhook import create_app

    cfg = replace(wh_config, public_url="https://lanpya.example.org")
    client = create_app(cfg, db).test_client()
    form = twilio_form()
    sig = twilio_signature(TWILIO_TOKEN, "https://lanpya.example.org/sms/twilio", form)
    resp = client.post("/sms/twilio", data=urlencode(form), headers={"X-Twilio-Signature": sig},
                       content_type="application/x-www-form-urlencoded", base_url="http://127.0.0.1:8000")
    assert resp.status_code == 200
    bad = twilio_signature(TWILIO_TOKEN, "http://127.0.0.1:8000/sms/twilio", form)
    resp = client.post("/sms/twilio", data=urlencode(form), headers={"X-Twilio-Signature": bad},
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 403


def test_unconfigured_provider_fails_closed(config, db):
    from webhook import create_app

    client = create_app(config, db).test_client()  # no Twilio, no Viber
    form = twilio_form()
    sig = twilio_signature("", "http://testserver/sms/twilio", form)
    assert post_twilio(client, "/sms/twilio", form).status_code == 403
    assert client.post("/sms/twilio", data=urlencode(form), headers={"X-Twilio-Signature": sig},
                       content_type="application/x-www-form-urlencoded").status_code == 403
    raw = viber_body(viber_message())
    assert client.post("/viber", data=raw, content_type="application/json",
                       headers={"X-Viber-Content-Signature": viber_signature("", raw)}).status_code == 403
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Inbound)) == 0


def test_app_refuses_to_start_when_spool_is_not_writable(wh_config, db, tmp_path):
    from webhook import create_app

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="LANPYA_SPOOL_DIR"):
        create_app(replace(wh_config, spool_dir=blocker / "spool"), db)


def test_conversation_started_answers_with_a_welcome_and_language_keyboard(wclient, db):
    pytest.importorskip("lanpya.content")
    event = {"event": "conversation_started", "timestamp": 1, "message_token": 9, "type": "open",
             "user": {"id": VIBER_ID, "name": "A", "language": "my", "country": "MM", "api_version": 8},
             "subscribed": False}
    resp = post_viber(wclient, event)
    assert resp.status_code == 200
    answer = resp.get_json()
    assert answer["type"] == "text" and answer["text"] and answer["sender"]["name"]
    assert len(answer["keyboard"]["Buttons"]) == 4
    with db.session() as s:  # nothing stored for someone who only opened the chat
        assert s.scalar(select(func.count()).select_from(Contact)) == 0


def test_status_that_overtakes_the_send_commit_is_kept(wclient, db, clock):
    """Twilio can call back before the dispatcher has committed the sid; the
    outbox id in the signed StatusCallback URL finds the row, and the
    dispatcher's later commit does not move the status backwards."""
    from lanpya.channels.dispatch import Claimed, _record
    from lanpya.channels.errors import SendOutcome

    sid = "SM" + "b" * 32
    with db.session() as s:
        c = get_or_create_contact(s, "sms", PHONE)
        row = enqueue(s, body="hi", channel="sms", contact=c)
        row.state, row.lease_owner, row.attempts = Outbox.SENDING, "w1", 1
        rid = row.id
    resp = post_twilio(wclient, f"/sms/twilio/status?o={rid}", status_form("delivered", sid=sid))
    assert resp.status_code == 200
    with db.session() as s:
        row = s.get(Outbox, rid)
        assert (row.state, row.provider_status) == (Outbox.SENDING, "delivered")
        _record(s, Claimed(rid, "sms", "reply", PHONE, "hi", None, 1, row.contact_id), "w1",
                SendOutcome(provider_id=sid, provider_status="queued"))
    with db.session() as s:
        row = s.get(Outbox, rid)
        assert (row.state, row.provider_status, row.provider_id) == (Outbox.DELIVERED, "delivered", sid)
    # a ref that points at another message's row is not trusted
    resp = post_twilio(wclient, f"/sms/twilio/status?o={rid}", status_form("failed", sid="SM" + "c" * 32))
    with db.session() as s:
        assert s.get(Outbox, rid).state == Outbox.DELIVERED


def test_oversized_chunked_body_is_413_on_a_live_server(wh_config, db):
    import requests

    from tests.support import LiveServer
    from webhook import create_app

    def chunks():
        for _ in range(100):
            yield b"x" * 1024

    with LiveServer(create_app(wh_config, db)) as server:
        resp = requests.post(server.url + "/viber", data=chunks(), timeout=30,
                             headers={"Content-Type": "application/json", "X-Viber-Content-Signature": "00"})
    assert resp.status_code == 413


def test_viber_status_of_a_broadcast_updates_only_that_receiver(wclient, db):
    token = "5000000000000000777"
    with db.session() as s:
        for vid in ("user-a=", "user-b=", "user-c="):
            c = get_or_create_contact(s, "viber", vid)
            row = enqueue(s, body="campaign", channel="viber", contact=c, kind=Outbox.CAMPAIGN)
            row.state, row.provider_id, row.provider_status = Outbox.SENT, token, "sent"
    event = {"event": "seen", "timestamp": 1, "message_token": int(token), "user_id": "user-b="}
    assert post_viber(wclient, event).status_code == 200
    with db.session() as s:
        states = {get_or_create_contact(s, "viber", v).id: None for v in ("user-a=", "user-b=", "user-c=")}
        for row in s.scalars(select(Outbox)):
            states[row.contact_id] = row.state
        b = get_or_create_contact(s, "viber", "user-b=").id
    assert states.pop(b) == Outbox.READ
    assert set(states.values()) == {Outbox.SENT}


def test_welcome_keyboard_buttons_are_language_keywords(config):
    """Each button of the Viber welcome keyboard sends back a word the keyword
    list reads as that language (content/keywords.yml)."""
    keywords = pytest.importorskip("lanpya.keywords")
    from webhook.viber import LANGUAGE_BUTTONS

    for code, label in LANGUAGE_BUTTONS:
        hit = keywords.match_keyword(label, config=config, directory=config.content_dir)
        assert hit is not None and hit.kind == "language" and hit.language == code, (label, hit)
