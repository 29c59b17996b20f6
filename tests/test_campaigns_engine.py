"""The campaign engine with a controllable clock: each schedule kind (once,
cron in Asia/Yangon, sequences relative to the date a contact joined), catch-up
after downtime, quiet hours across time zones, exclusions, exactly-once fires,
pause/resume/cancel mid-send, preview figures and reports."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from campaigns import engine
from campaigns.engine import CampaignError
from lanpya.channels import dispatch_due
from lanpya.models import Audience, Campaign, CampaignFire, Case, Contact, Outbox
from tests.campaign_support import add_contacts, number

MY_TEXT = "ပြည်ပအလုပ်အကိုင် လိမ်လည်မှုများကို သတိထားပါ။ အေဂျင်စီ လိုင်စင်ကို အရင်စစ်ပါ။"
EN_TEXT = "Check an agency's licence before you pay anything. Reply 2 to check one."


def _campaign(db, config, *, flt=None, kind=Campaign.ONCE, run_at=None, cron=None, texts=None, steps=None,
              quiet=None) -> int:
    with db.session() as s:
        aud = engine.create_audience(s, "everyone", flt or {})
        messages = []
        if steps:
            for step, (offset, by_lang) in steps.items():
                messages += [{"step": step, "offset_days": offset, "language": lg, "body": b} for lg, b in by_lang.items()]
        else:
            messages = [{"language": lg, "body": b} for lg, b in (texts or {"my": MY_TEXT, "en": EN_TEXT}).items()]
        qs, qe = quiet or (None, None)
        c = engine.create_campaign(s, config, name="agency check", audience_id=aud.id, schedule_kind=kind,
                                   run_at=run_at, cron=cron, messages=messages, quiet_start=qs, quiet_end=qe)
        engine.schedule(s, config, c)
        assert c.status == Campaign.SCHEDULED
        return c.id


def _rows(db, campaign_id=None, **where):
    with db.session() as s:
        q = select(Outbox).order_by(Outbox.contact_id)
        for k, v in where.items():
            q = q.where(getattr(Outbox, k) == v)
        return list(s.scalars(q))


def _count(db, *conds) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Outbox.id)).where(*conds)) or 0


# --- once ------------------------------------------------------------------------------------
def test_once_fires_at_its_time_exactly_once_in_each_contacts_language(db, config, clock):
    clock.set(datetime(2026, 3, 2, 4, 0))  # 10:30 in Yangon: sending hours
    my = add_contacts(db, 5, language="my")
    en = add_contacts(db, 3, start=100, language="en")
    cid = _campaign(db, config, run_at=datetime(2026, 3, 2, 5, 0))
    assert engine.fire_due(db, config, cid) == []  # not yet
    assert _count(db) == 0
    clock.set(datetime(2026, 3, 2, 5, 0, 2))
    [r] = engine.fire_due(db, config, cid)
    assert r.inserted == 8 and r.state == CampaignFire.QUEUED
    rows = _rows(db)
    assert {r.contact_id: r.body for r in rows} == {**{i: MY_TEXT for i in my}, **{i: EN_TEXT for i in en}}
    assert {r.kind for r in rows} == {Outbox.CAMPAIGN}
    assert {(r.contact_id, r.encoding) for r in rows if r.contact_id in en} == {(i, "GSM-7") for i in en}
    assert all(r.encoding == "UCS-2" and r.segments == 2 for r in rows if r.contact_id in my)
    assert {r.dedupe_key for r in rows} == {f"fire:{r.fire_id}:contact:{r.contact_id}" for r in rows}
    # re-running the fire (a retry, a second scheduler, a crash and restart) adds nothing
    assert engine.materialise(db, config, r.fire_id).inserted == 0
    with db.session() as s:
        s.execute(update(CampaignFire).values(state=CampaignFire.MATERIALISING))
    assert engine.materialise(db, config, r.fire_id).inserted == 0
    assert _count(db) == 8
    with db.session() as s:
        assert s.get(Campaign, cid).status == Campaign.DONE
        assert s.scalar(select(func.count(CampaignFire.id))) == 1


def test_once_missed_past_grace_time_is_recorded_not_sent(db, config, clock):
    clock.set(datetime(2026, 3, 2, 3, 0))
    add_contacts(db, 3)
    cid = _campaign(db, config, run_at=datetime(2026, 3, 2, 4, 0))
    clock.set(datetime(2026, 3, 2, 4, 0) + timedelta(seconds=config.campaign_misfire_grace_s + 1))
    assert engine.fire_due(db, config, cid) == []
    assert _count(db) == 0
    with db.session() as s:
        [fire] = s.scalars(select(CampaignFire)).all()
        assert fire.state == CampaignFire.MISSED
        assert s.get(Campaign, cid).status == Campaign.DONE


# --- cron in Asia/Yangon -----------------------------------------------------------------------
def test_cron_is_read_in_yangon_time_and_fires_once_per_occurrence(db, config, clock):
    clock.set(datetime(2026, 3, 1, 0, 0))  # Sunday
    add_contacts(db, 4)
    # Mondays 09:00 in Yangon = 02:30 UTC
    cid = _campaign(db, config, kind=Campaign.CRON, cron="0 9 * * mon")
    clock.set(datetime(2026, 3, 2, 2, 29, 59))
    assert engine.fire_due(db, config, cid) == []
    clock.set(datetime(2026, 3, 2, 2, 30, 1))
    [r] = engine.fire_due(db, config, cid)
    assert r.scheduled_for == datetime(2026, 3, 2, 2, 30) and r.inserted == 4
    assert engine.fire_due(db, config, cid)[0].inserted == 0  # same occurrence again: nothing
    clock.set(datetime(2026, 3, 9, 2, 30, 1))  # next Monday: a new fire, everyone again
    [r2] = engine.fire_due(db, config, cid)
    assert r2.fire_id != r.fire_id and r2.inserted == 4
    assert _count(db) == 8


def test_cron_catch_up_after_downtime_is_one_fire_and_older_times_are_reported(db, config, clock):
    clock.set(datetime(2026, 3, 1, 23, 55))
    add_contacts(db, 2)
    cid = _campaign(db, config, kind=Campaign.CRON, cron="*/10 * * * *")
    clock.set(datetime(2026, 3, 2, 0, 0, 1))
    assert [r.inserted for r in engine.fire_due(db, config, cid)] == [2]  # 00:00, while still up
    # then the scheduler was down until 00:35: 00:10, 00:20, 00:30 were missed (grace 1 h)
    clock.set(datetime(2026, 3, 2, 0, 35))
    results = engine.fire_due(db, config, cid)
    assert [r.scheduled_for for r in results] == [datetime(2026, 3, 2, 0, 30)]
    assert _count(db) == 4  # one catch-up fire, not three
    with db.session() as s:
        fires = {f.scheduled_for.minute: f.state for f in s.scalars(select(CampaignFire))}
    assert fires == {0: CampaignFire.QUEUED, 10: CampaignFire.MISSED, 20: CampaignFire.MISSED,
                     30: CampaignFire.QUEUED}


# --- sequences relative to joining ---------------------------------------------------------------
def test_sequence_sends_each_step_its_days_after_joining_once(db, config, clock):
    t0 = datetime(2026, 3, 2, 3, 0)  # 09:30 Yangon
    clock.set(t0)
    cid = _campaign(db, config, kind=Campaign.SEQUENCE,
                    steps={0: (0, {"my": "day 0"}), 1: (3, {"my": "day 3"}), 2: (10, {"my": "day 10"})})
    a = add_contacts(db, 1, joined_at=t0)[0]
    engine.fire_due(db, config, cid)
    assert [(r.contact_id, r.body) for r in _rows(db)] == [(a, "day 0")]
    clock.set(t0 + timedelta(days=1))
    b = add_contacts(db, 1, start=1, joined_at=t0 + timedelta(days=1))[0]
    engine.fire_due(db, config, cid)
    engine.fire_due(db, config, cid)  # twice: nothing more
    assert sorted((r.contact_id, r.body) for r in _rows(db)) == [(a, "day 0"), (b, "day 0")]
    clock.set(t0 + timedelta(days=3, minutes=1))
    engine.fire_due(db, config, cid)
    assert sorted((r.contact_id, r.body) for r in _rows(db)) == [(a, "day 0"), (a, "day 3"), (b, "day 0")]
    clock.set(t0 + timedelta(days=4, minutes=1))
    engine.fire_due(db, config, cid)
    clock.set(t0 + timedelta(days=10, minutes=1))
    engine.fire_due(db, config, cid)
    clock.set(t0 + timedelta(days=11, minutes=1))
    engine.fire_due(db, config, cid)
    got = sorted((r.contact_id, r.body) for r in _rows(db))
    assert got == [(a, "day 0"), (a, "day 10"), (a, "day 3"), (b, "day 0"), (b, "day 10"), (b, "day 3")]
    # a contact who joined long before the campaign started does not get day 0 retroactively
    add_contacts(db, 1, start=2, joined_at=t0 - timedelta(days=30))
    engine.fire_due(db, config, cid)
    assert len(_rows(db)) == 6
    assert {r.dedupe_key.split(":contact:")[0] for r in _rows(db)} == {f"seq:{cid}:{n}" for n in (0, 1, 2)}


# --- quiet hours in the recipient's time zone --------------------------------------------------------
def test_quiet_hours_are_local_to_each_recipients_country(db, config, clock):
    fire_at = datetime(2026, 3, 2, 13, 0)  # 19:30 Yangon, 20:00 Bangkok, 21:00 Shanghai and Kuala Lumpur
    clock.set(fire_at)
    ids = {c: add_contacts(db, 1, country=c)[0] for c in ("MM", "TH", "CN", "MY")}
    cid = _campaign(db, config, run_at=fire_at)
    engine.fire_due(db, config, cid)
    nb = {r.contact_id: r.not_before for r in _rows(db)}
    assert nb[ids["MM"]] is None  # 19:30 in Yangon: sent now
    assert nb[ids["TH"]] == datetime(2026, 3, 3, 1, 0)  # 08:00 Bangkok (UTC+7)
    assert nb[ids["CN"]] == datetime(2026, 3, 3, 0, 0)  # 08:00 Shanghai (UTC+8)
    assert nb[ids["MY"]] == datetime(2026, 3, 3, 0, 0)  # 08:00 Kuala Lumpur (UTC+8)


def test_quiet_hours_are_configurable_per_campaign_and_early_morning_waits(db, config, clock):
    fire_at = datetime(2026, 3, 2, 23, 0)  # 05:30 Yangon next day
    clock.set(fire_at)
    mm = add_contacts(db, 1)[0]
    cid = _campaign(db, config, run_at=fire_at, quiet=("21:00", "06:00"))
    engine.fire_due(db, config, cid)
    [row] = _rows(db)
    assert row.contact_id == mm
    assert row.not_before == datetime(2026, 3, 2, 23, 30)  # 06:00 Yangon
    assert row.next_attempt_at == row.not_before


@pytest.mark.parametrize("at,tz,expected", [
    (datetime(2026, 3, 2, 1, 29), "Asia/Yangon", datetime(2026, 3, 2, 1, 30)),  # 07:59 → 08:00
    (datetime(2026, 3, 2, 1, 30), "Asia/Yangon", None),  # 08:00 sharp: open
    (datetime(2026, 3, 2, 13, 29), "Asia/Yangon", None),  # 19:59
    (datetime(2026, 3, 2, 13, 30), "Asia/Yangon", datetime(2026, 3, 3, 1, 30)),  # 20:00 → tomorrow 08:00
    (datetime(2026, 3, 2, 12, 59), "Asia/Bangkok", None),
    (datetime(2026, 3, 2, 17, 0), "Asia/Shanghai", datetime(2026, 3, 3, 0, 0)),  # 01:00 local
])
def test_quiet_not_before_edges(at, tz, expected):
    assert engine.quiet_not_before(at, tz, "20:00", "08:00") == expected


# --- exclusions --------------------------------------------------------------------------------------
def test_never_sent_to_opted_out_open_case_unsubscribed_erased_or_unreachable(db, config, clock):
    clock.set(datetime(2026, 3, 2, 4, 0))
    ids = add_contacts(db, 7)
    ok, opted, case, unsub, erased, unreach, closed_case = ids
    with db.session() as s:
        s.get(Contact, opted).opted_out = True
        s.get(Contact, unsub).subscribed = False
        e = s.get(Contact, erased)
        e.erased_at, e.address, e.address_hash = clock.now(), None, None
        s.get(Contact, unreach).unreachable = True
        s.add(Case(contact_id=case, status=Case.NEW))
        s.add(Case(contact_id=closed_case, status=Case.CLOSED))
    cid = _campaign(db, config, run_at=clock.now())
    engine.fire_due(db, config, cid)
    assert {r.contact_id for r in _rows(db)} == {ok, closed_case}


def test_audience_filters_language_township_role_channel(db, config, clock):
    clock.set(datetime(2026, 3, 2, 4, 0))
    a = add_contacts(db, 2, township="Lashio", state="Northern Shan", language="shn", roles=["planning"])
    add_contacts(db, 2, start=10, township="Lashio", state="Northern Shan", language="shn", roles=["family"])
    add_contacts(db, 2, start=20, township="Bhamo", language="shn", roles=["planning"])
    add_contacts(db, 2, start=30, township="Lashio", language="shn", roles=["planning"], channel="viber")
    flt = {"townships": ["Lashio"], "roles": ["planning"], "channels": ["sms"], "languages": ["shn"]}
    with db.session() as s:
        assert engine.audience_size(s, engine.clean_filter(flt), config) == 2
    cid = _campaign(db, config, flt=flt, run_at=clock.now(), texts={"shn": "ၵႂၢမ်းသိုပ်ႇ"})
    engine.fire_due(db, config, cid)
    assert {r.contact_id for r in _rows(db)} == set(a)


def test_every_language_in_the_audience_needs_text_before_scheduling(db, config, clock):
    add_contacts(db, 2, language="my")
    add_contacts(db, 1, start=10, language="kac")
    with db.session() as s:
        aud = engine.create_audience(s, "all", {})
        c = engine.create_campaign(s, config, name="x", audience_id=aud.id, run_at=clock.now(),
                                   messages=[{"language": "my", "body": MY_TEXT}])
        with pytest.raises(CampaignError, match="kac"):
            engine.schedule(s, config, c)
        engine.set_message(s, c, language="kac", body="Agency hpe licence hpe kaw yu u.")
        engine.schedule(s, config, c)
        assert c.status == Campaign.SCHEDULED


def test_large_sends_need_a_second_staff_member(db, config, clock):
    from lanpya.models import Staff

    config.approval_threshold = 3
    add_contacts(db, 4)
    with db.session() as s:
        alice, bob = Staff(email="alice@example.org", role="campaigner"), Staff(email="bob@example.org", role="campaigner")
        s.add_all([alice, bob])
        s.flush()
        aud = engine.create_audience(s, "all", {})
        c = engine.create_campaign(s, config, name="x", audience_id=aud.id, run_at=clock.now(),
                                   messages=[{"language": "my", "body": MY_TEXT}], staff_id=alice.id)
        engine.schedule(s, config, c, staff_id=alice.id)
        assert c.status == Campaign.AWAITING_APPROVAL
        with pytest.raises(CampaignError, match="second staff member"):
            engine.approve(s, config, c, alice.id)
        engine.approve(s, config, c, bob.id)
        assert c.status == Campaign.SCHEDULED and c.approved_by == bob.id


# --- preview -------------------------------------------------------------------------------------------
def test_preview_counts_segments_cost_time_and_warns_past_twilios_queue_window(db, config, clock):
    config.segment_prices = {"sms:MM": 0.2, "sms:TH": 0.03, "sms:*": 0.1, "viber:*": 0.0}
    add_contacts(db, 10, language="my")  # 2 UCS-2 segments each
    add_contacts(db, 5, start=50, language="en", country="TH")  # 1 GSM-7 segment
    add_contacts(db, 3, start=80, language="my", channel="viber")
    with db.session() as s:
        aud = engine.create_audience(s, "all", {})
        c = engine.create_campaign(s, config, name="x", audience_id=aud.id, run_at=clock.now(),
                                   messages=[{"language": "my", "body": MY_TEXT}, {"language": "en", "body": EN_TEXT}])
        p = engine.preview(s, config, c)
    assert p["recipients"] == 18
    assert p["by_language"] == {"my": 13, "en": 5}
    assert p["by_channel"] == {"sms": 15, "viber": 3}
    assert p["segments"] == 10 * 2 + 5 * 1
    assert p["estimated_cost"] == pytest.approx(10 * 2 * 0.2 + 5 * 0.03)
    assert p["seconds_to_deliver"]["sms"] == pytest.approx(25 / config.twilio_rate)
    assert {(t["language"], t["encoding"], t["segments"]) for t in p["texts"]} == {("my", "UCS-2", 2), ("en", "GSM-7", 1)}
    assert p["warnings"] == []
    config.twilio_rate = 0.0005  # 25 segments at 0.0005/s = 13.9 h
    with db.session() as s:
        p = engine.preview(s, config, s.get(Campaign, c.id))
    assert any("10-hour queue window" in w for w in p["warnings"]), p


# --- pause, resume, cancel mid-send --------------------------------------------------------------------
def test_pause_holds_queued_rows_resume_releases_cancel_drops(db, provider_config, fake_twilio, clock):
    config = provider_config
    clock.set(datetime(2026, 3, 2, 4, 0))
    add_contacts(db, 30)
    cid = _campaign(db, config, run_at=clock.now())
    engine.fire_due(db, config, cid)
    assert dispatch_due(db, config, "w1", limit=10) == 10
    assert len(fake_twilio.messages) == 10
    with db.session() as s:
        assert engine.pause(s, cid) == 20
    clock.advance(seconds=5)
    assert dispatch_due(db, config, "w1", limit=50) == 0
    assert len(fake_twilio.messages) == 10
    with db.session() as s:
        assert engine.resume(s, cid) == 20
    clock.advance(seconds=5)
    assert dispatch_due(db, config, "w1", limit=5) == 5
    with db.session() as s:
        assert engine.cancel(s, cid) == 15
    clock.advance(seconds=5)
    assert dispatch_due(db, config, "w1", limit=50) == 0
    assert len(fake_twilio.messages) == 15
    assert len({m.to for m in fake_twilio.messages}) == 15
    with db.session() as s:
        rep = engine.report(s, config, cid)
    assert rep["totals"]["sent"] == 15 and rep["totals"]["cancelled"] == 15


def test_pause_stops_a_fire_being_written_and_resume_finishes_it(db, config, clock):
    clock.set(datetime(2026, 3, 2, 4, 0))
    add_contacts(db, 50)
    cid = _campaign(db, config, run_at=clock.now())
    with db.session() as s:
        fire = CampaignFire(campaign_id=cid, step=0, scheduled_for=clock.now(), state=CampaignFire.PENDING)
        s.add(fire)
        s.flush()
        fire_id = fire.id
    # write the first chunk, then pause arrives
    calls = {"n": 0}
    real_lock = engine._lock_campaign

    def pause_after_first_chunk(session, campaign_id):
        calls["n"] += 1
        if calls["n"] == 2:
            session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=Campaign.PAUSED))
        return real_lock(session, campaign_id)

    engine._lock_campaign = pause_after_first_chunk
    try:
        r = engine.materialise(db, config, fire_id, chunk=10)
    finally:
        engine._lock_campaign = real_lock
    assert r.stopped == Campaign.PAUSED and r.inserted == 10
    assert _count(db) == 10
    with db.session() as s:
        engine.resume(s, cid)
    [r2] = engine.resume_unfinished(db, config)
    assert r2.inserted == 40 and r2.state == CampaignFire.QUEUED
    assert _count(db) == 50


def test_stop_mid_send_means_nothing_more_to_that_contact(db, provider_config, fake_twilio, clock):
    config = provider_config
    clock.set(datetime(2026, 3, 2, 4, 0))
    ids = add_contacts(db, 10)
    cid = _campaign(db, config, run_at=clock.now())
    engine.fire_due(db, config, cid)
    dispatch_due(db, config, "w1", limit=3)
    stopper = ids[-1]  # not sent yet
    with db.session() as s:
        c = s.get(Contact, stopper)
        c.opted_out, c.opted_out_at = True, clock.now()
    clock.advance(seconds=5)
    dispatch_due(db, config, "w1", limit=50)
    assert number("MM", 9) not in {m.to for m in fake_twilio.messages}
    assert len(fake_twilio.messages) == 9
    with db.session() as s:
        rep = engine.report(s, config, cid)
    assert rep["totals"]["cancelled"] == 1 and rep["totals"]["opted_out_after"] == 1


def test_report_by_language_township_channel_and_error_code(db, provider_config, fake_twilio, clock):
    config = provider_config
    clock.set(datetime(2026, 3, 2, 4, 0))
    add_contacts(db, 3, language="my", township="Myitkyina")
    add_contacts(db, 2, start=10, language="en", township="Lashio")
    fake_twilio.fail_number(number("MM", 10), status=400, code=21211)
    cid = _campaign(db, config, run_at=clock.now())
    engine.fire_due(db, config, cid)
    dispatch_due(db, config, "w1", limit=50)
    with db.session() as s:
        rep = engine.report(s, config, cid)
    assert rep["totals"]["sent"] == 4 and rep["totals"]["failed"] == 1
    assert rep["totals"]["failed_by_code"] == {"twilio:21211": 1}
    assert rep["by"]["language"]["en"]["failed"] == 1
    assert rep["by"]["township"]["Myitkyina"]["sent"] == 3
    assert rep["by"]["channel"]["sms"]["total"] == 5
    csv_text = engine.report_csv(rep)
    assert "township,Lashio" in csv_text and "twilio:21211=1" in csv_text


def test_audience_filter_refuses_unknown_fields():
    with pytest.raises(CampaignError):
        engine.clean_filter({"phone": ["+95"]})
    with pytest.raises(CampaignError):
        engine.clean_filter({"languages": ["fr"]})
    assert engine.clean_filter({"townships": "Lashio, Muse"}) == {"townships": ["Lashio", "Muse"]}


def test_audience_row_is_a_saved_filter(db, config):
    with db.session() as s:
        a = engine.create_audience(s, "Lashio planners", {"townships": ["Lashio"], "roles": ["planning"]})
        assert s.get(Audience, a.id).filter == {"roles": ["planning"], "townships": ["Lashio"]}


def test_a_send_running_past_20_00_local_is_held_until_morning(db, config, clock):
    clock.set(datetime(2026, 3, 2, 13, 0))  # 19:30 Yangon, 20:00 Bangkok
    mm = add_contacts(db, 3)
    th = add_contacts(db, 2, country="TH")
    cid = _campaign(db, config, run_at=clock.now())
    engine.fire_due(db, config, cid)
    assert engine.enforce_quiet_hours(db) == 0  # the Thai rows already wait (not_before set at fire)
    clock.set(datetime(2026, 3, 2, 13, 31))  # 20:01 in Yangon: the Myanmar rows still queued are held
    assert engine.enforce_quiet_hours(db) == 3
    nb = {r.contact_id: r.not_before for r in _rows(db)}
    assert {nb[i] for i in mm} == {datetime(2026, 3, 3, 1, 30)}
    assert {nb[i] for i in th} == {datetime(2026, 3, 3, 1, 0)}
    assert engine.enforce_quiet_hours(db) == 0
