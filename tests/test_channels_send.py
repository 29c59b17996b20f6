"""Sending the outbox through the real twilio client and Viber's REST API,
against the fake providers on 127.0.0.1."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from lanpya import clock as clockmod
from lanpya.channels import dispatch_due
from lanpya.channels.errors import MAX_ATTEMPTS, backoff
from lanpya.channels.twilio_sender import TwilioSender
from lanpya.db import Database
from lanpya.ingest import get_or_create_contact
from lanpya.models import Case, Contact, Outbox
from lanpya.outbox import enqueue
from tests.fakes import TWILIO_FROM

PHONE = "+959791234567"
PHONE2 = "+66812345678"
VIBER_ID = "01234567890A="


@pytest.fixture
def pdb(provider_config):
    database = Database(provider_config.database_url)
    yield database
    database.dispose()


def add(db, channel=Contact.SMS, address=PHONE, body="Hello from Lanpya", kind=Outbox.REPLY, **kw) -> int:
    with db.session() as s:
        contact = get_or_create_contact(s, channel, address)
        row = enqueue(s, body=body, channel=channel, contact=contact, kind=kind, **kw)
        return row.id


def row(db, rid) -> Outbox:
    with db.session() as s:
        return s.get(Outbox, rid)


def contact_of(db, channel, address) -> Contact:
    with db.session() as s:
        return get_or_create_contact(s, channel, address)


# --- happy paths -------------------------------------------------------------------
def test_sms_reply_goes_through_the_real_twilio_client(pdb, provider_config, fake_twilio, clock):
    rid = add(pdb, body="မင်္ဂလာပါ Lanpya")
    assert dispatch_due(pdb, provider_config, "w1") == 1
    assert len(fake_twilio.messages) == 1
    sent = fake_twilio.messages[0]
    assert (sent.to, sent.body, sent.from_) == (PHONE, "မင်္ဂလာပါ Lanpya", TWILIO_FROM)
    assert sent.status_callback == provider_config.public_url + f"/sms/twilio/status?o={rid}"
    r = row(pdb, rid)
    assert r.state == Outbox.SENT and r.provider_id == sent.sid and r.provider_status == "queued"
    assert r.encoding == "UCS-2" and r.segments == 1 and r.attempts == 1 and r.sent_at == clock.now()
    # a second dispatch sends nothing again
    assert dispatch_due(pdb, provider_config, "w1") == 0
    assert len(fake_twilio.messages) == 1


def test_sms_through_a_messaging_service(pdb, provider_config, fake_twilio, clock):
    cfg = replace(provider_config, twilio_messaging_service_sid="MG" + "1" * 32, twilio_from_number="")
    add(pdb)
    dispatch_due(pdb, cfg, "w1")
    assert fake_twilio.messages[0].messaging_service_sid == "MG" + "1" * 32
    assert fake_twilio.messages[0].from_ is None


def test_twilio_is_asked_to_keep_no_body_and_no_full_number_when_configured(
    pdb, provider_config, fake_twilio, clock
):
    add(pdb)
    dispatch_due(pdb, provider_config, "w1")
    assert "ContentRetention" not in fake_twilio.messages[0].form  # off by default: needs the account feature
    add(pdb, body="second")
    dispatch_due(pdb, replace(provider_config, twilio_discard_content=True), "w1")
    form = fake_twilio.messages[1].form
    assert (form["ContentRetention"], form["AddressRetention"]) == ("discard", "obfuscate")


def test_viber_reply_uses_send_message(pdb, provider_config, fake_viber, clock):
    rid = add(
        pdb,
        channel=Contact.VIBER,
        address=VIBER_ID,
        body="Hi",
        extra={"keyboard": {"Type": "keyboard", "Buttons": []}},
    )
    assert dispatch_due(pdb, provider_config, "w1") == 1
    (sent,) = fake_viber.messages
    assert sent.receiver == VIBER_ID and sent.text == "Hi" and not sent.broadcast
    assert sent.payload["sender"]["name"] == provider_config.viber_bot_name
    assert sent.payload["keyboard"]["Type"] == "keyboard"
    r = row(pdb, rid)
    assert r.state == Outbox.SENT and r.provider_id == str(sent.token)


def test_without_credentials_rows_stay_unsent(db, config, clock):
    sms = add(db)
    viber = add(db, channel=Contact.VIBER, address=VIBER_ID)
    assert dispatch_due(db, config, "w1") == 2
    assert row(db, sms).state == Outbox.UNSENT and row(db, viber).state == Outbox.UNSENT
    assert "not configured" in row(db, sms).error


def test_staff_alert_goes_to_the_staff_phone(pdb, provider_config, fake_twilio, clock):
    from lanpya.models import Staff

    with pdb.session() as s:
        staff = Staff(email="a@example.org", role="agent", phone="+959420000001")
        s.add(staff)
        s.flush()
        enqueue(s, body="Lanpya: new case #3, urgent.", channel="sms", staff_id=staff.id, kind=Outbox.ALERT)
    dispatch_due(pdb, provider_config, "w1")
    assert [m.to for m in fake_twilio.messages] == ["+959420000001"]


# --- errors --------------------------------------------------------------------------
@pytest.mark.parametrize("status, code", [(500, None), (503, None), (429, 20429), (400, 30001)])
def test_transient_twilio_error_is_retried_with_backoff(
    pdb, provider_config, fake_twilio, clock, status, code
):
    rid = add(pdb)
    fake_twilio.fail_next(1, status=status, code=code)
    dispatch_due(pdb, provider_config, "w1")
    r = row(pdb, rid)
    assert r.state == Outbox.QUEUED and r.attempts == 1
    assert r.next_attempt_at == clock.now() + backoff(1)
    assert r.error_code == (f"twilio:{code}" if code else f"http:{status}")
    assert dispatch_due(pdb, provider_config, "w1") == 0  # not due yet
    clock.advance(seconds=backoff(1).total_seconds())
    dispatch_due(pdb, provider_config, "w1")
    r = row(pdb, rid)
    assert r.state == Outbox.SENT and r.attempts == 2 and r.error_code is None
    assert len(fake_twilio.messages) == 1
    c = contact_of(pdb, "sms", PHONE)
    assert not c.unreachable and not c.opted_out


def test_transient_errors_give_up_after_the_cap(pdb, provider_config, fake_twilio, clock):
    rid = add(pdb)
    fake_twilio.fail_next(MAX_ATTEMPTS + 5, status=503)
    delays = []
    for _ in range(MAX_ATTEMPTS):
        dispatch_due(pdb, provider_config, "w1")
        r = row(pdb, rid)
        if r.state != Outbox.QUEUED:
            break
        delays.append(r.next_attempt_at - clock.now())
        clock.set(r.next_attempt_at)
    r = row(pdb, rid)
    assert r.state == Outbox.FAILED and r.attempts == MAX_ATTEMPTS
    assert delays == [backoff(n) for n in range(1, MAX_ATTEMPTS)]
    assert delays[1] == 2 * delays[0] and max(delays) <= timedelta(minutes=30)
    assert not contact_of(pdb, "sms", PHONE).unreachable


@pytest.mark.parametrize("code, flag", [(21211, "unreachable"), (21610, "opted_out"), (21614, "unreachable")])
def test_permanent_twilio_error_fails_at_once_and_marks_contact(
    pdb, provider_config, fake_twilio, clock, code, flag
):
    rid = add(pdb)
    fake_twilio.fail_number(PHONE, status=400, code=code)
    dispatch_due(pdb, provider_config, "w1")
    r = row(pdb, rid)
    assert r.state == Outbox.FAILED and r.attempts == 1 and r.error_code == f"twilio:{code}"
    clock.advance(hours=2)
    dispatch_due(pdb, provider_config, "w1")
    assert len(fake_twilio.requests) == 1  # never tried again
    c = contact_of(pdb, "sms", PHONE)
    assert getattr(c, flag) is True
    other = {"unreachable": "opted_out", "opted_out": "unreachable"}[flag]
    assert getattr(c, other) is False


def test_twilio_timeout_is_transient(provider_config, fake_twilio):
    fake_twilio.fail_next(1, status=500, delay=1.5)
    outcome = TwilioSender(provider_config, timeout=0.3).send(PHONE, "x")
    assert outcome.error is not None and outcome.error.transient and outcome.error.code == "timeout"


def test_viber_receiver_not_registered_fails_at_once(pdb, provider_config, fake_viber, clock):
    rid = add(pdb, channel=Contact.VIBER, address=VIBER_ID)
    fake_viber.fail_receiver(VIBER_ID, 5)
    dispatch_due(pdb, provider_config, "w1")
    r = row(pdb, rid)
    assert r.state == Outbox.FAILED and r.error_code == "viber:5"
    assert contact_of(pdb, "viber", VIBER_ID).unreachable


@pytest.mark.parametrize("http_status, status", [(500, 0), (200, 12)])
def test_viber_transient_errors_retry(pdb, provider_config, fake_viber, clock, http_status, status):
    rid = add(pdb, channel=Contact.VIBER, address=VIBER_ID)
    fake_viber.fail_next(1, http_status=http_status, status=status)
    dispatch_due(pdb, provider_config, "w1")
    assert row(pdb, rid).state == Outbox.QUEUED
    clock.advance(minutes=1)
    dispatch_due(pdb, provider_config, "w1")
    assert row(pdb, rid).state == Outbox.SENT
    assert len(fake_viber.messages) == 1


def test_a_successful_reply_clears_unreachable(pdb, provider_config, fake_twilio, clock):
    rid = add(pdb)
    with pdb.session() as s:
        s.get(Contact, row(pdb, rid).contact_id).unreachable = True
    dispatch_due(pdb, provider_config, "w1")
    assert row(pdb, rid).state == Outbox.SENT
    assert not contact_of(pdb, "sms", PHONE).unreachable


# --- rate and priority -----------------------------------------------------------------
def test_rate_is_honoured_by_a_token_bucket(pdb, provider_config, fake_twilio, clock):
    cfg = replace(provider_config, twilio_rate=5.0)
    for i in range(12):
        add(pdb, body=f"msg {i}")
    assert dispatch_due(pdb, cfg, "w1") == 5  # one second of burst
    assert dispatch_due(pdb, cfg, "w2") == 0  # another worker shares the bucket
    clock.advance(seconds=0.4)
    assert dispatch_due(pdb, cfg, "w2") == 2
    clock.advance(seconds=10)
    assert dispatch_due(pdb, cfg, "w1") == 5  # never more than the burst
    assert len(fake_twilio.messages) == 12


def test_replies_jump_ahead_of_campaign_traffic(pdb, provider_config, fake_twilio, clock):
    cfg = replace(provider_config, twilio_rate=1.0)
    for i in range(3):
        add(pdb, address=PHONE2, body=f"campaign {i}", kind=Outbox.CAMPAIGN)
    add(pdb, body="the reply")
    dispatch_due(pdb, cfg, "w1")
    assert [m.body for m in fake_twilio.messages] == ["the reply"]
    clock.advance(seconds=1)
    dispatch_due(pdb, cfg, "w1")
    assert fake_twilio.messages[1].body == "campaign 0"


def test_not_before_is_respected(pdb, provider_config, fake_twilio, clock):
    rid = add(pdb, kind=Outbox.CAMPAIGN, not_before=clock.now() + timedelta(hours=1))
    dispatch_due(pdb, provider_config, "w1")
    assert row(pdb, rid).state == Outbox.QUEUED
    clock.advance(hours=1)
    dispatch_due(pdb, provider_config, "w1")
    assert row(pdb, rid).state == Outbox.SENT


# --- the re-check just before a campaign message goes ---------------------------------------
def test_campaign_to_opted_out_erased_or_open_case_is_cancelled(pdb, provider_config, fake_twilio, clock):
    opted = add(pdb, address="+959791111111", kind=Outbox.CAMPAIGN)
    erased = add(pdb, address="+959792222222", kind=Outbox.CAMPAIGN)
    casey = add(pdb, address="+959793333333", kind=Outbox.CAMPAIGN)
    fine = add(pdb, address="+959794444444", kind=Outbox.CAMPAIGN)
    reply_to_opted = add(pdb, address="+959791111111", kind=Outbox.REPLY)
    cid = {r: row(pdb, r).contact_id for r in (opted, erased, casey)}
    with pdb.session() as s:
        s.get(Contact, cid[opted]).opted_out = True
        c = s.get(Contact, cid[erased])
        c.erased_at, c.address, c.address_hash = clock.now(), None, None
        s.add(Case(contact_id=cid[casey], status=Case.NEW))
    dispatch_due(pdb, provider_config, "w1")
    assert [row(pdb, r).state for r in (opted, erased, casey, fine, reply_to_opted)] == [
        Outbox.CANCELLED,
        Outbox.CANCELLED,
        Outbox.CANCELLED,
        Outbox.SENT,
        Outbox.SENT,
    ]
    assert sorted(m.to for m in fake_twilio.messages) == ["+959791111111", "+959794444444"]


# --- Viber broadcasts ------------------------------------------------------------------------
def test_viber_campaign_goes_as_broadcasts_of_at_most_300(pdb, provider_config, fake_viber, clock):
    ids = [f"viber-user-{i:04d}=" for i in range(650)]
    fake_viber.fail_receiver(ids[7], 6)  # left the bot
    with pdb.session() as s:
        for vid in ids:
            c = get_or_create_contact(s, "viber", vid)
            enqueue(s, body="Know the signs of trafficking", channel="viber", contact=c, kind=Outbox.CAMPAIGN)
    assert dispatch_due(pdb, provider_config, "w1", limit=1000) == 650
    assert [len(b) for b in fake_viber.broadcasts] == [300, 300, 50]
    assert sorted(r for b in fake_viber.broadcasts for r in b) == sorted(ids)
    with pdb.session() as s:
        states = dict(s.execute(select(Outbox.state, func.count()).group_by(Outbox.state)).all())
        assert states == {Outbox.SENT: 649, Outbox.FAILED: 1}
        assert get_or_create_contact(s, "viber", ids[7]).opted_out
    assert len(fake_viber.messages) == 649


# --- crashes and concurrency ----------------------------------------------------------------
def test_abandoned_sending_row_is_requeued_after_its_lease(pdb, provider_config, fake_twilio, clock):
    rid = add(pdb)
    with pdb.session() as s:
        r = s.get(Outbox, rid)
        r.state, r.lease_owner, r.lease_until = Outbox.SENDING, "dead", clock.now() + timedelta(minutes=5)
    dispatch_due(pdb, provider_config, "w1")
    assert row(pdb, rid).state == Outbox.SENDING and not fake_twilio.messages
    clock.advance(minutes=6)
    dispatch_due(pdb, provider_config, "w1")
    assert row(pdb, rid).state == Outbox.SENT and len(fake_twilio.messages) == 1


def test_concurrent_workers_send_each_row_once(pdb, provider_config, fake_twilio):
    n = 120
    for i in range(n):
        add(pdb, address=f"+9597912{i:05d}", body=f"m{i}")
    errors = []

    def work(name):
        try:
            for _ in range(10):
                dispatch_due(pdb, provider_config, name, limit=15)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert not errors
    assert len(fake_twilio.messages) == n
    assert len({m.to for m in fake_twilio.messages}) == n
    with pdb.session() as s:
        assert s.scalar(select(func.count()).where(Outbox.state == Outbox.SENT)) == n


def test_clock_is_the_fake_one(clock):
    assert clockmod.now() == clock.now()


def test_measured_rate_across_two_workers_on_the_real_clock(pdb, provider_config, fake_twilio):
    """Real time, two workers polling as fast as they can: 60 messages at 20/s
    with one second of burst cannot take less than (60 - 20) / 20 = 2 s."""
    import time

    cfg = replace(provider_config, twilio_rate=20.0)
    with pdb.session() as s:
        for i in range(60):
            c = get_or_create_contact(s, "sms", f"+9597914{i:05d}")
            enqueue(s, body=f"rate {i}", channel="sms", contact=c)
    start = time.monotonic()

    def work(name):
        while len(fake_twilio.messages) < 60 and time.monotonic() - start < 30:
            if not dispatch_due(pdb, cfg, name):
                time.sleep(0.02)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    [t.start() for t in threads]
    [t.join(40) for t in threads]
    elapsed = time.monotonic() - start
    assert len(fake_twilio.messages) == 60
    assert 1.9 <= elapsed < 20, elapsed  # the floor is the point; the ceiling only catches a stall


def test_parallel_sending_keeps_each_recipients_order(pdb, provider_config, fake_twilio, clock):
    with pdb.session() as s:
        people = [get_or_create_contact(s, "sms", f"+9597915{i:05d}") for i in range(6)]
        for n in range(5):
            for c in people:
                enqueue(s, body=f"part {n}", channel="sms", contact=c, seq=n)
    assert dispatch_due(pdb, provider_config, "w1", limit=100) == 30
    for i in range(6):
        assert [m.body for m in fake_twilio.sent_to(f"+9597915{i:05d}")] == [f"part {n}" for n in range(5)]


def test_a_persons_later_reply_waits_for_an_earlier_one_in_retry_or_in_flight(
    pdb, provider_config, fake_twilio, clock
):
    """Found by the stop-redis drill: a backlog of one person's messages answered at once
    put several replies in the outbox together; a retry's backoff or another worker's
    batch let a later answer reach them first. Campaign messages do not wait."""
    first = add(pdb, body="answer 1", seq=0)
    fake_twilio.fail_next(1, status=500)
    dispatch_due(pdb, provider_config, "w1")
    assert row(pdb, first).state == Outbox.QUEUED  # failed: queued with a backoff
    second = add(pdb, body="answer 2", seq=0)
    campaign = add(pdb, body="campaign news", kind=Outbox.CAMPAIGN)
    other = add(pdb, address=PHONE2, body="someone else")
    dispatch_due(pdb, provider_config, "w1")
    assert row(pdb, second).state == Outbox.QUEUED  # held behind "answer 1"
    assert row(pdb, campaign).state == Outbox.SENT and row(pdb, other).state == Outbox.SENT
    clock.advance(seconds=backoff(1).total_seconds())
    dispatch_due(pdb, provider_config, "w1")
    assert [m.body for m in fake_twilio.sent_to(PHONE) if m.body.startswith("answer")] == ["answer 1", "answer 2"]
    # another worker holds an earlier row in flight: the later one waits for its outcome
    third, fourth = add(pdb, body="answer 3"), add(pdb, body="answer 4")
    with pdb.session() as s:
        s.get(Outbox, third).state = Outbox.SENDING
        s.get(Outbox, third).lease_owner = "w2"
        s.get(Outbox, third).lease_until = clock.now() + timedelta(minutes=5)
    assert dispatch_due(pdb, provider_config, "w1") == 0
    assert row(pdb, fourth).state == Outbox.QUEUED
    with pdb.session() as s:
        s.get(Outbox, third).state = Outbox.SENT
    assert dispatch_due(pdb, provider_config, "w1") == 1
    assert row(pdb, fourth).state == Outbox.SENT
    assert row(pdb, first).state == Outbox.SENT


@pytest.mark.parametrize(
    "http_status, code, kind, flag",
    [
        (500, None, "transient", None),
        (502, None, "transient", None),
        (429, None, "transient", None),
        (400, 30001, "transient", None),
        (429, 20429, "transient", None),
        (401, 20003, "transient", None),  # bad credentials: an operator fixes it, nothing is lost meanwhile
        (400, 21211, "permanent", "unreachable"),
        (400, 21610, "permanent", "opted_out"),
        (400, 21614, "permanent", "unreachable"),
        (400, 21408, "permanent", None),  # region not enabled: not the contact's fault
        (400, 99999, "permanent", None),
        (404, None, "permanent", None),
    ],
)
def test_twilio_error_classification(http_status, code, kind, flag):
    from lanpya.channels.errors import classify_twilio

    err = classify_twilio(http_status, code)
    assert (err.kind, err.contact_flag) == (kind, flag)


@pytest.mark.parametrize(
    "status, kind, flag",
    [
        (5, "permanent", "unreachable"),
        (6, "permanent", "opted_out"),
        (11, "permanent", "unreachable"),
        (12, "transient", None),
        (2, "transient", None),
        (3, "permanent", None),
        (99, "transient", None),
    ],
)
def test_viber_error_classification(status, kind, flag):
    from lanpya.channels.errors import classify_viber

    err = classify_viber(status)
    assert (err.kind, err.contact_flag) == (kind, flag)


def test_parallel_sends_record_each_rows_own_message_sid(pdb, provider_config, fake_twilio, clock):
    """The send threads share one twilio client: every row must be recorded with
    the sid Twilio gave *its* message (the stock TwilioHttpClient hands a
    response back through an attribute another thread may overwrite)."""
    n = 150
    ids = {add(pdb, address=f"+9597917{i:05d}", body=f"p{i}"): f"+9597917{i:05d}" for i in range(n)}
    assert dispatch_due(pdb, provider_config, "w1", limit=n) == n
    to_of_sid = {m.sid: m.to for m in fake_twilio.messages}
    assert len(to_of_sid) == n
    with pdb.session() as s:
        recorded = {r.id: r.provider_id for r in s.scalars(select(Outbox).where(Outbox.id.in_(ids)))}
    assert len(set(recorded.values())) == n
    assert all(to_of_sid[recorded[rid]] == address for rid, address in ids.items())


def test_a_stop_during_a_parallel_batch_stops_what_is_not_yet_claimed(
    pdb, provider_config, fake_twilio, clock, monkeypatch
):
    """STOP arrives while a batch is on the wire (here: right after the provider
    took the contact's first campaign message, on a send thread): the contact's
    later campaign rows are cancelled at their claim, never sent."""
    stopper = "+959791800000"
    first = add(pdb, address=stopper, body="camp 1", kind=Outbox.CAMPAIGN)
    for i in range(1, 12):
        add(pdb, address=f"+95979180{i:04d}", body="camp 1", kind=Outbox.CAMPAIGN)
    later = add(pdb, address=stopper, body="camp 2", kind=Outbox.CAMPAIGN)
    real_send = TwilioSender.send

    def send_then_stop(self, to, body, extra=None, ref=None):
        outcome = real_send(self, to, body, extra, ref=ref)
        if to == stopper:
            with pdb.session() as s:
                c = get_or_create_contact(s, Contact.SMS, stopper)
                c.opted_out, c.opted_out_at = True, clock.now()
        return outcome

    monkeypatch.setattr(TwilioSender, "send", send_then_stop)
    while dispatch_due(pdb, provider_config, "w1", limit=6):
        pass
    assert [m.body for m in fake_twilio.sent_to(stopper)] == ["camp 1"]
    assert row(pdb, first).state == Outbox.SENT
    assert (row(pdb, later).state, row(pdb, later).error) == (Outbox.CANCELLED, "opted out")
    assert len(fake_twilio.messages) == 12


def test_twilio_unreachable_is_a_transient_connection_error(provider_config):
    from tests.support import free_port

    cfg = replace(provider_config, twilio_api_url=f"http://127.0.0.1:{free_port()}")
    outcome = TwilioSender(cfg, timeout=2).send(PHONE, "x")
    assert outcome.error is not None and outcome.error.transient and outcome.error.code == "connection"


def test_the_fake_twilio_keeps_connections_alive(fake_twilio):
    """A client that reuses its connection can (as with Twilio): the fake must
    not be what limits a throughput benchmark."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", fake_twilio.port, timeout=5)
    local = set()
    for _ in range(3):
        conn.request(
            "POST",
            "/2010-04-01/Accounts/x/Messages.json",
            body=b"To=%2B1",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        resp = conn.getresponse()
        assert resp.status == 401 and resp.read()
        assert conn.sock is not None  # http.client drops a socket the server said it would close
        local.add(conn.sock.getsockname())
    conn.close()
    assert len(local) == 1  # one TCP connection served all three
