"""Drills with real processes (marked ``drill``; bigger versions in bench/campaigns.py):

- kill -9 the worker 10 times during a campaign send → every contact gets
  exactly one message, except at most the sends in flight at each kill
  (counted and reported);
- a STOP processed by the worker mid-send → nothing more to that contact;
- the scheduler down across a fire time → exactly one catch-up fire on
  restart (and, past the grace time, a recorded missed fire and no sends).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns import engine
from lanpya import clock as clockmod
from lanpya.channels import dispatch_due, recover_abandoned
from lanpya.ingest import receive
from lanpya.models import Campaign, CampaignFire, Contact, Outbox
from tests.campaign_support import add_contacts, number
from tests.conftest import TEST_KEYS
from tests.fakes import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN, FakeTwilio
from tests.support import ROOT, free_port, stop_process, wait_until

pytestmark = pytest.mark.drill

DRILL_CONTACTS = int(os.environ.get("DRILL_CONTACTS", "2000"))


def _env(config, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        LANPYA_ENV="test", DATABASE_URL=config.database_url, LANPYA_SECRET_KEY=TEST_KEYS["secret"],
        LANPYA_DATA_KEY=TEST_KEYS["data"], LANPYA_LOOKUP_KEY=TEST_KEYS["lookup"],
        LANPYA_INTERNAL_TOKEN=TEST_KEYS["internal"], LANPYA_VAR_DIR=str(config.var_dir),
        LANPYA_SPOOL_DIR=str(config.spool_dir), PUBLIC_URL=config.public_url,
        RASA_URL=f"http://127.0.0.1:{free_port()}", TWILIO_ACCOUNT_SID=config.twilio_account_sid,
        TWILIO_AUTH_TOKEN=config.twilio_auth_token, TWILIO_FROM_NUMBER=config.twilio_from_number,
        TWILIO_MESSAGING_SERVICE_SID="", TWILIO_API_URL=config.twilio_api_url, TWILIO_RATE="100000",
        VIBER_AUTH_TOKEN="", HOTLINE_NUMBER="+95 1 000 000 (test)", LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def _proc(env: dict, kind: str, name: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "lanpya"), kind, "--name", name], cwd=ROOT, env=env,
                            stdout=log.open("a"), stderr=subprocess.STDOUT)


def _campaign_now(db, config, quiet=("00:00", "00:00"), run_at=None, **kw) -> int:
    with db.session() as s:
        aud = engine.create_audience(s, "all", {})
        c = engine.create_campaign(s, config, name="drill", audience_id=aud.id,
                                   run_at=run_at or clockmod.now(), quiet_start=quiet[0], quiet_end=quiet[1],
                                   messages=[{"language": "my", "body": "drill: check the agency licence first"}],
                                   **kw)
        engine.schedule(s, config, c)
        return c.id


def _states(db) -> Counter:
    with db.session() as s:
        return Counter(dict(s.execute(select(Outbox.state, func.count(Outbox.id)).group_by(Outbox.state)).all()))


def test_kill_9_the_worker_ten_times_mid_send_everyone_gets_one_message(tmp_path, config, db):
    n = DRILL_CONTACTS
    config.approval_threshold = n * 10
    add_contacts(db, n)
    with FakeTwilio(TWILIO_SID, TWILIO_TOKEN) as twilio:
        pconfig = replace(config, twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN,
                          twilio_from_number=TWILIO_FROM, twilio_api_url=twilio.url, twilio_rate=100000.0)
        cid = _campaign_now(db, pconfig)
        [fire] = engine.fire_due(db, pconfig, cid)
        assert fire.inserted == n
        env = _env(pconfig)
        in_flight: list[int] = []
        proc = None
        try:
            for kill in range(10):
                name = f"drill-worker-{kill}"
                proc = _proc(env, "worker", name, tmp_path / "worker.log")
                target = (kill + 1) * n // 12
                wait_until(lambda t=target: len(twilio.messages) >= t, timeout=120, interval=0.02,
                           what=f"{target} sends before kill {kill + 1}")
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                with db.session() as s:
                    in_flight.append(s.scalar(select(func.count(Outbox.id)).where(
                        Outbox.state == Outbox.SENDING, Outbox.lease_owner == name)) or 0)
            proc = _proc(env, "worker", "drill-worker-last", tmp_path / "worker.log")
            wait_until(lambda: _states(db)[Outbox.QUEUED] == 0, timeout=180, interval=0.2, what="queue drained")
        finally:
            if proc is not None:
                stop_process(proc)
        # rows the killed workers held are released when their lease runs out (5 min): jump there
        fake = clockmod.FakeClock(datetime.utcnow() + timedelta(minutes=6))
        previous = clockmod.use(fake)
        try:
            recover_abandoned(db)
            while dispatch_due(db, pconfig, "drill-finisher", limit=500):
                fake.advance(seconds=1)
        finally:
            clockmod.use(previous)
        sent_to = Counter(m.to for m in twilio.messages)
    everyone = {number("MM", i) for i in range(n)}
    missing = everyone - set(sent_to)
    duplicates = sum(c - 1 for c in sent_to.values() if c > 1)
    report = (f"{n} contacts, 10 kills: in flight at each kill {in_flight} (total {sum(in_flight)}); "
              f"duplicates {duplicates}; missing {len(missing)}; states {dict(_states(db))}")
    print(report)
    assert not missing, report
    assert set(sent_to) == everyone
    assert duplicates <= sum(in_flight), report
    assert _states(db) == Counter({Outbox.SENT: n}), report


def test_stop_processed_by_the_worker_mid_send_stops_that_contact(tmp_path, config, db):
    n = 400
    config.approval_threshold = n * 10
    add_contacts(db, n)
    stopper = number("MM", n - 1)  # the last row: not sent yet when the STOP arrives
    with FakeTwilio(TWILIO_SID, TWILIO_TOKEN) as twilio:
        pconfig = replace(config, twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN,
                          twilio_from_number=TWILIO_FROM, twilio_api_url=twilio.url, twilio_rate=100000.0)
        cid = _campaign_now(db, pconfig)
        engine.fire_due(db, pconfig, cid)
        proc = _proc(_env(pconfig, TWILIO_RATE="40"), "worker", "drill-stop", tmp_path / "worker.log")
        try:
            wait_until(lambda: len(twilio.messages) >= 20, timeout=60, what="sending started")
            with db.session() as s:
                receive(s, channel="sms", provider_id="SMdrillstop0001", address=stopper, text="STOP")
            wait_until(lambda: _opted_out(db, stopper), timeout=30, what="the STOP processed")
            wait_until(lambda: _states(db)[Outbox.QUEUED] == 0, timeout=120, interval=0.2, what="queue drained")
        finally:
            stop_process(proc)
        campaign_to_stopper = [m for m in twilio.messages if m.to == stopper and "drill" in m.body]
    assert campaign_to_stopper == []
    with db.session() as s:
        rep = engine.report(s, config, cid)
    assert rep["totals"]["cancelled"] == 1 and rep["totals"]["opted_out_after"] == 1
    assert rep["totals"]["sent"] == n - 1


def _opted_out(db, address: str) -> bool:
    from lanpya.crypto import lookup_hash

    with db.session() as s:
        c = s.scalar(select(Contact).where(Contact.address_hash == lookup_hash(address)))
        return bool(c and c.opted_out)


def _fires(db, cid: int) -> list[tuple[str, int]]:
    with db.session() as s:
        return [(f.state, f.recipients) for f in s.scalars(select(CampaignFire).where(CampaignFire.campaign_id == cid))]


@pytest.mark.parametrize("grace,expect_sent", [(3600, True), (2, False)], ids=["within-grace", "past-grace"])
def test_scheduler_down_across_a_fire_time_catches_up_exactly_once(tmp_path, config, db, grace, expect_sent):
    add_contacts(db, 25)
    env = _env(config, CAMPAIGN_MISFIRE_GRACE_S=str(grace), TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="",
               LOG_LEVEL="INFO")
    log = tmp_path / "scheduler.log"
    proc = _proc(env, "scheduler", "drill-sched", log)
    try:
        wait_until(lambda: "is the leader" in log.read_text(), timeout=30, what="scheduler leading")
        run_at = datetime.utcnow() + timedelta(seconds=12)
        cid = _campaign_now(db, config, run_at=run_at)
        wait_until(lambda: "campaign job(s) changed" in log.read_text(), timeout=15, what="job stored")
        os.kill(proc.pid, signal.SIGKILL)  # down before the fire time
        proc.wait(10)
        assert _fires(db, cid) == []
        while datetime.utcnow() < run_at + timedelta(seconds=4):
            time.sleep(0.2)
        assert _fires(db, cid) == []  # nobody fired it while down
        proc = _proc(env, "scheduler", "drill-sched", log)  # same name: renews its own lease at once
        if expect_sent:
            wait_until(lambda: _fires(db, cid) == [(CampaignFire.QUEUED, 25)], timeout=30, what="catch-up fire")
        else:
            wait_until(lambda: _fires(db, cid) == [(CampaignFire.MISSED, 0)], timeout=30, what="missed fire recorded")
        # a second restart adds nothing
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc = _proc(env, "scheduler", "drill-sched", log)
        time.sleep(7)
        assert len(_fires(db, cid)) == 1
    finally:
        stop_process(proc)
    with db.session() as s:
        assert s.scalar(select(func.count(Outbox.id))) == (25 if expect_sent else 0)
        assert s.get(Campaign, cid).status == Campaign.DONE
