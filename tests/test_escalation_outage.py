"""The SMS provider fails for 10 minutes: no case and no alert is lost.

Cases open through the internal API while every call to the (fake) Twilio
API answers 503; the console shows the alerts as failed; the dispatcher
retries them with backoff; when the provider comes back every alert reaches
it exactly once. The clock is fake: 15-second scheduler/dispatcher ticks."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from lanpya import escalation
from lanpya.channels import dispatch_due
from lanpya.ingest import receive
from lanpya.models import Alert, Case, Contact, Outbox
from tests.test_console_auth import login
from tests.test_console_cases import INTERNAL, people  # noqa: F401 - fixture
from tests.test_escalation import PHONES

TICK = timedelta(seconds=15)


def tick(db, config, clock) -> None:
    escalation.chase_due(db, config)
    dispatch_due(db, config, "w-outage")
    clock.advance(seconds=TICK.total_seconds())


def test_provider_down_ten_minutes_loses_no_case_or_alert(provider_config, fake_twilio, db, people, clock):  # noqa: F811
    from webhook import create_app

    config = provider_config
    app = create_app(config, db)
    client = app.test_client()
    fake_twilio.fail_next(100000, status=503)
    outage_end = clock.now() + timedelta(minutes=10)

    case_ids = []
    for i in range(5):
        address = f"+95979155{i:04d}"
        with db.session() as s:
            receive(s, channel="sms", provider_id=f"SM-outage-{i}", address=address, text="help")
        with db.session() as s:
            uuid = s.scalar(select(Contact.uuid).order_by(Contact.id.desc()).limit(1))
        r = client.post("/internal/cases", json={"contact": uuid, "category": "trafficking",
                                                "severity": "urgent" if i % 2 else "emergency"}, headers=INTERNAL)
        assert r.status_code == 201
        case_ids.append(r.json["case_id"])
        for _ in range(4):
            tick(db, config, clock)

    # during the outage: every case is there, every alert queued for retry, the console says so
    agent = app.test_client()
    login(agent, "sup@example.org")
    queue = agent.get("/console/cases.json", headers={"Accept": "application/json"}).json["cases"]
    assert sorted(r["id"] for r in queue) == sorted(case_ids)
    assert all(r["alert_failed"] for r in queue)
    assert "alert failed" in agent.get(f"/console/cases/{case_ids[0]}").get_data(as_text=True)
    with db.session() as s:
        sms_alerts = s.scalars(select(Outbox).where(Outbox.kind == Outbox.ALERT, Outbox.channel == "sms")).all()
        assert sms_alerts and all(o.state == Outbox.QUEUED and o.error_code for o in sms_alerts)
    assert fake_twilio.messages == []

    while clock.now() < outage_end:
        tick(db, config, clock)
    fake_twilio.clear_failures()
    # the provider is back: the retries (backoff capped at 30 min) get everything out
    for _ in range(int(timedelta(minutes=40) / TICK)):
        tick(db, config, clock)
        with db.session() as s:
            if not s.scalar(select(Outbox.id).where(Outbox.kind == Outbox.ALERT, Outbox.channel == "sms",
                                                    Outbox.state == Outbox.QUEUED).limit(1)):
                break
        # somebody acknowledges after a while so the chase does not run forever
    with db.session() as s:
        for case_id in case_ids:
            escalation.acknowledge(s, s.get(Case, case_id), people["sup"])
    with db.session() as s:
        rows = s.scalars(select(Outbox).where(Outbox.kind == Outbox.ALERT, Outbox.channel == "sms")).all()
        alerts = s.scalars(select(Alert)).all()
        assert {r.state for r in rows} <= {Outbox.SENT, Outbox.DELIVERED}, {(r.state, r.error_code) for r in rows}
        assert all(r.error_code is None for r in rows)
        # every case alerted its rank-1 agent, and the chase kept climbing during the outage
        assert {a.case_id for a in alerts if a.step == 0} == set(case_ids)
        assert max(a.step for a in alerts) >= 2
        sent_ids = sorted(r.id for r in rows)
    # exactly one provider message per SMS alert row: nothing lost, nothing doubled
    staff_numbers = set(PHONES.values())
    to_staff = [m for m in fake_twilio.messages if m.to in staff_numbers]
    outbox_ids = sorted(int(parse_qs(urlsplit(m.status_callback).query)["o"][0]) for m in to_staff)
    assert outbox_ids == sent_ids
    assert all(m.body.startswith("Lanpya: new case #") for m in to_staff)
    queue = agent.get("/console/cases.json", headers={"Accept": "application/json"}).json["cases"]
    assert not any(r["alert_failed"] for r in queue)
