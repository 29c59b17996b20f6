"""Cases, alerts and the chase, with a controllable clock.

The chase climbs the roster at the deadlines (rank 1 → rank 2 → supervisor →
every supervisor/admin) and stops at acknowledgement; two schedulers running
at once send one alert per step; a repeat report joins the open case."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from lanpya import escalation
from lanpya.ingest import receive
from lanpya.models import Alert, AuditLog, Case, Contact, Outbox, Shift, Staff
from lanpya.staff import add_staff

REPORTER = "+959791230001"
PHONES = {"a1": "+959250000101", "a2": "+959250000102", "sup": "+959250000103", "boss": "+959250000104"}


def roster(db, *, days=range(7), start=time(0, 0), end=time(23, 59, 59)) -> dict[str, int]:
    """a1 (rank 1) and a2 (rank 2) on call with supervisor sup; boss is an admin off the roster."""
    with db.session() as s:
        ids = {
            "a1": add_staff(s, "a1@example.org", Staff.AGENT, phone=PHONES["a1"]).id,
            "a2": add_staff(s, "a2@example.org", Staff.AGENT, phone=PHONES["a2"], viber_id="vb-a2").id,
            "sup": add_staff(s, "sup@example.org", Staff.SUPERVISOR, phone=PHONES["sup"]).id,
            "boss": add_staff(s, "boss@example.org", Staff.ADMIN, phone=PHONES["boss"]).id,
            "camp": add_staff(s, "camp@example.org", Staff.CAMPAIGNER, phone="+959250000105").id,
        }
        for day in days:
            s.add(Shift(staff_id=ids["a1"], weekday=day, start=start, end=end, rank=1, supervisor_id=ids["sup"]))
            s.add(Shift(staff_id=ids["a2"], weekday=day, start=start, end=end, rank=2, supervisor_id=ids["sup"]))
    return ids


def reporter(db, address: str = REPORTER, n: int = 1) -> int:
    with db.session() as s:
        receive(s, channel="sms", provider_id=f"SM-esc-{address}-{n}", address=address, text="help my sister")
        return s.scalar(select(Contact.id).order_by(Contact.id.desc()).limit(1))


def open_and_alert(db, config, contact_id: int, severity: str = Case.URGENT, category: str = "trafficking") -> int:
    with db.session() as s:
        case, created = escalation.open_case(s, s.get(Contact, contact_id), category=category, severity=severity,
                                             config=config)
        if created:
            escalation.alert_on_call(s, case, config)
        return case.id


def alerts(db, case_id: int) -> list[tuple[int, int]]:
    with db.session() as s:
        return [(a.step, a.staff_id) for a in s.scalars(select(Alert).where(Alert.case_id == case_id)
                                                        .order_by(Alert.step, Alert.staff_id))]


def test_new_case_alerts_rank_one_discreetly(config, db, clock):
    ids = roster(db)
    case_id = open_and_alert(db, config, reporter(db), Case.URGENT)
    assert alerts(db, case_id) == [(0, ids["a1"])]
    with db.session() as s:
        row = s.scalar(select(Outbox).where(Outbox.kind == Outbox.ALERT))
        assert row.staff_id == ids["a1"] and row.channel == "sms" and row.contact_id is None
        assert row.dedupe_key == f"alert:{case_id}:0:{ids['a1']}"
        assert row.body == f"Lanpya: new case #{case_id}, urgent. http://testserver/console/cases/{case_id}"
        assert "help" not in row.body and "sister" not in row.body
        case = s.get(Case, case_id)
        assert case.status == Case.NOTIFIED
        assert case.deadline_at == clock.now() + timedelta(minutes=config.deadline_urgent_min)


def test_chase_climbs_at_deadlines_and_stops_at_ack(config, db, clock):
    ids = roster(db)
    case_id = open_and_alert(db, config, reporter(db), Case.EMERGENCY)  # 5 min per step
    assert escalation.chase_due(db, config) == 0
    clock.advance(minutes=4, seconds=59)
    assert escalation.chase_due(db, config) == 0  # not yet
    assert alerts(db, case_id) == [(0, ids["a1"])]
    clock.advance(seconds=1)
    assert escalation.chase_due(db, config) == 1
    assert alerts(db, case_id)[-1] == (1, ids["a2"])
    with db.session() as s:  # a2 has Viber too: both channels
        assert sorted(o.channel for o in s.scalars(select(Outbox).where(Outbox.staff_id == ids["a2"]))) == [
            "sms", "viber"]
    assert escalation.chase_due(db, config) == 0  # the same step never twice
    clock.advance(minutes=5)
    assert escalation.chase_due(db, config) == 1
    assert alerts(db, case_id)[-1] == (2, ids["sup"])
    clock.advance(minutes=5)
    assert escalation.chase_due(db, config) == 1
    assert alerts(db, case_id)[-1] == (3, ids["boss"])  # then every supervisor and admin not yet alerted
    # someone acknowledges: the chase stops
    with db.session() as s:
        assert escalation.acknowledge(s, s.get(Case, case_id), ids["sup"])
    for _ in range(5):
        clock.advance(minutes=5)
        assert escalation.chase_due(db, config) == 0
    assert len(alerts(db, case_id)) == 4
    assert ids["camp"] not in [staff for _, staff in alerts(db, case_id)]
    with db.session() as s:
        steps = [e.detail["step"] for e in s.scalars(
            select(AuditLog).where(AuditLog.action == "chase_step").order_by(AuditLog.id))]
        assert steps == [1, 2, 3]
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "case_acknowledged")) == 1


def test_ack_before_deadline_means_no_chase(config, db, clock):
    ids = roster(db)
    case_id = open_and_alert(db, config, reporter(db), Case.URGENT)
    clock.advance(minutes=3)
    with db.session() as s:
        escalation.acknowledge(s, s.get(Case, case_id), ids["a1"])
    clock.advance(hours=2)
    assert escalation.chase_due(db, config) == 0
    assert alerts(db, case_id) == [(0, ids["a1"])]


def test_scheduler_alerts_a_case_whose_opener_did_not(config, db, clock):
    ids = roster(db)
    with db.session() as s:
        case, _ = escalation.open_case(s, s.get(Contact, reporter(db)), severity=Case.NORMAL, config=config)
        case_id = case.id
    assert alerts(db, case_id) == []
    assert escalation.chase_due(db, config) == 1
    assert alerts(db, case_id) == [(0, ids["a1"])]
    # step 1 comes at the deadline, not at the next run
    clock.advance(minutes=config.deadline_normal_min - 1)
    assert escalation.chase_due(db, config) == 0
    clock.advance(minutes=1)
    assert escalation.chase_due(db, config) == 1
    assert alerts(db, case_id)[-1] == (1, ids["a2"])


def test_roster_is_weekly_in_yangon_time(config, db, clock):
    # a1/a2 only on Monday 09:00-17:00 Yangon (02:30-10:30 UTC); sup and boss are the fallback
    ids = roster(db, days=[0], start=time(9, 0), end=time(17, 0))
    clock.set(datetime(2026, 1, 5, 2, 29))  # Monday 08:59 Yangon
    with db.session() as s:
        assert escalation.on_call(s) == []
    clock.set(datetime(2026, 1, 5, 2, 30))  # Monday 09:00 Yangon
    with db.session() as s:
        assert [p.staff_id for p in escalation.on_call(s)] == [ids["a1"], ids["a2"]]
    clock.set(datetime(2026, 1, 6, 3, 0))  # Tuesday: nobody on shift → supervisors and admins
    case_id = open_and_alert(db, config, reporter(db))
    assert sorted(alerts(db, case_id)) == sorted([(0, ids["sup"]), (0, ids["boss"])])


def test_overnight_shift(config, db, clock):
    with db.session() as s:
        night = add_staff(s, "night@example.org", Staff.AGENT, phone="+959250000199").id
        s.add(Shift(staff_id=night, weekday=4, start=time(22, 0), end=time(6, 0), rank=1))  # Fri 22:00 → Sat 06:00
    with db.session() as s:
        clock.set(datetime(2026, 1, 9, 16, 0))  # Friday 22:30 Yangon
        assert [p.staff_id for p in escalation.on_call(s)] == [night]
        clock.set(datetime(2026, 1, 9, 23, 0))  # Saturday 05:30 Yangon
        assert [p.staff_id for p in escalation.on_call(s)] == [night]
        clock.set(datetime(2026, 1, 10, 0, 0))  # Saturday 06:30 Yangon
        assert escalation.on_call(s) == []


def test_repeat_report_joins_and_raises_severity(config, db, clock):
    roster(db)
    contact_id = reporter(db)
    first = open_and_alert(db, config, contact_id, Case.NORMAL, "other")
    clock.advance(minutes=2)
    with db.session() as s:
        case, created = escalation.open_case(s, s.get(Contact, contact_id), category="forced marriage",
                                             severity=Case.EMERGENCY, config=config)
        assert (case.id, created) == (first, False)
        assert case.severity == Case.EMERGENCY and case.category == "forced_marriage"
        assert case.deadline_at == clock.now() + timedelta(minutes=config.deadline_emergency_min)
        assert case.next_chase_at == case.deadline_at
    with db.session() as s:  # never lowered
        case, _ = escalation.open_case(s, s.get(Contact, contact_id), severity=Case.NORMAL, config=config)
        assert case.severity == Case.EMERGENCY
        assert s.scalar(select(func.count()).select_from(Case)) == 1
    # a closed case does not take new reports: a new one opens
    with db.session() as s:
        escalation.close(s, s.get(Case, first), None, outcome="referred")
    with db.session() as s:
        case, created = escalation.open_case(s, s.get(Contact, contact_id), config=config)
        assert created and case.id != first


def test_concurrent_reports_of_one_contact_open_one_case(config, db, clock):
    roster(db)
    contact_id = reporter(db)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def report():
        try:
            barrier.wait()
            open_and_alert(db, config, contact_id)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=report) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1
        assert s.scalar(select(func.count()).select_from(Alert)) == 1


def test_two_schedulers_send_one_alert_per_step(config, db, clock):
    ids = roster(db)
    case_ids = [open_and_alert(db, config, reporter(db, f"+95979123{i:04d}"), Case.EMERGENCY) for i in range(6)]
    for expected_step, who in ((1, "a2"), (2, "sup"), (3, "boss")):
        clock.advance(minutes=5)
        barrier = threading.Barrier(2)
        counts: list[int] = []
        errors: list[BaseException] = []

        def scheduler():
            try:
                barrier.wait()
                counts.append(escalation.chase_due(db, config))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=scheduler) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert sum(counts) == len(case_ids), counts  # each case stepped once, by one of them
        for case_id in case_ids:
            got = [a for a in alerts(db, case_id) if a[0] == expected_step]
            assert got == [(expected_step, ids[who])]
    with db.session() as s:
        keys = s.scalars(select(Outbox.dedupe_key).where(Outbox.kind == Outbox.ALERT)).all()
        assert len(keys) == len(set(keys)) == len(case_ids) * 5  # a1, a2 (sms+viber), sup, boss


def test_alert_on_call_twice_sends_once(config, db, clock):
    roster(db)
    case_id = open_and_alert(db, config, reporter(db))
    with db.session() as s:
        assert escalation.alert_on_call(s, s.get(Case, case_id), config) == 0
    assert len(alerts(db, case_id)) == 1


def test_close_cancels_waiting_agent_messages_and_alerts(config, db, clock):
    ids = roster(db)
    case_id = open_and_alert(db, config, reporter(db))
    with db.session() as s:
        case = s.get(Case, case_id)
        escalation.reply(s, case, ids["a1"], "We are here. Are you safe?")
        escalation.close(s, case, ids["a1"], outcome="referred", referral="labour_dept")
    with db.session() as s:
        states = {o.kind: o.state for o in s.scalars(select(Outbox))}
        assert states == {Outbox.ALERT: Outbox.CANCELLED, Outbox.AGENT: Outbox.CANCELLED}
        case = s.get(Case, case_id)
        assert (case.status, case.outcome, case.referral, case.handoff) == (
            Case.CLOSED, "referred", "labour_dept", False)
        with pytest.raises(escalation.CaseError):
            escalation.reply(s, case, ids["a1"], "one more thing")


def test_record_answer_keeps_narrative_encrypted(config, db, clock):
    roster(db)
    case_id = open_and_alert(db, config, reporter(db))
    with db.session() as s:
        case = s.get(Case, case_id)
        escalation.record_answer(s, case, "what_happened", "She went to Ruili with a broker")
        escalation.record_answer(s, case, "township", "Muse")
    with db.session() as s:
        case = s.get(Case, case_id)
        assert case.answers == {"what_happened": "She went to Ruili with a broker", "township": "Muse"}
        assert case.narrative == "She went to Ruili with a broker" and case.township == "Muse"
        raw = s.connection().exec_driver_sql(f'SELECT narrative FROM "case" WHERE id = {case_id}').scalar()
        raw = raw if isinstance(raw, str) else bytes(raw).decode("latin-1")
        assert "Ruili" not in raw and raw


def test_top_of_the_ladder_repeats_until_acknowledged(config, db, clock):
    ids = roster(db)
    case_id = open_and_alert(db, config, reporter(db), Case.EMERGENCY)
    for _ in range(5):
        clock.advance(minutes=5)
        escalation.chase_due(db, config)
    assert alerts(db, case_id)[3:] == [(3, ids["boss"]), (4, ids["boss"]), (5, ids["boss"])]
    with db.session() as s:
        escalation.acknowledge(s, s.get(Case, case_id), ids["boss"])
    clock.advance(minutes=30)
    assert escalation.chase_due(db, config) == 0 and len(alerts(db, case_id)) == 6
