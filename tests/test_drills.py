"""The drill harness's counting (bench/drill_check.py) on synthetic sets, and
the fake Twilio's outage switch. The drills themselves (real processes,
minutes) run in ``make bench`` / ``python -m bench.drills``."""

from __future__ import annotations

import time

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bench.drill_check import Arrival, InRow, OutRow, Webhook, campaign_check, check
from tests.fakes import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN


def _world():
    """Three contacts, five messages: every one stored and answered once, in order."""
    webhooks = [
        Webhook(f"SM{i}", f"+9592600000{i % 3}", t_send=float(i), t_ack=i + 0.01, status=200)
        for i in range(5)
    ]
    inbound = [InRow(100 + i, f"SM{i}", "done") for i in range(5)]
    outbox, arrivals = [], []
    for i in range(5):
        for seq in range(2):
            pid = f"P{i}-{seq}"
            outbox.append(
                OutRow(1000 + 2 * i + seq, "reply", 100 + i, seq, f"reply:{100 + i}:{seq}", pid, "sent")
            )
            arrivals.append(Arrival(pid, webhooks[i].sender, "answer", i + 0.5 + seq * 0.1))
    return webhooks, inbound, outbox, arrivals


def test_a_clean_run_counts_nothing_wrong():
    c = check(*_world())["all"]
    assert (c.sent, c.acked, c.stored, c.lost, c.unanswered, c.duplicated, c.order_violations, c.delayed) == (
        5,
        5,
        5,
        0,
        0,
        0,
        0,
        0,
    )
    assert c.e2e == pytest.approx([0.5] * 5)


def test_lost_unanswered_duplicated_out_of_order_and_delayed_are_each_counted():
    webhooks, inbound, outbox, arrivals = _world()
    webhooks.append(Webhook("SM-never-stored", "+959260000009", 6.0, 6.01, 200))  # lost: not stored
    inbound[1].state = "failed"  # lost: given up
    inbound[2].state = "queued"  # unanswered at the end
    arrivals.append(
        Arrival("P-orphan", webhooks[0].sender, "answer", 0.7)
    )  # a send nobody recorded: duplicate
    inbound.append(InRow(999, "SM3", "done"))  # stored twice
    # contact 0 (messages 0 and 3): message 0's answer reaches the provider after message 3's
    arrivals[0].t = 3.9
    # message 4's first reply 12 s late
    arrivals[8].t, arrivals[9].t = 16.0, 16.1
    c = check(webhooks, inbound, outbox, arrivals, delay_s=10)["all"]
    assert c.lost == 2 and set(c.lost_sids) == {"SM-never-stored", "SM1"}
    assert c.unanswered == 1
    assert c.duplicated == 2  # one orphan send, one inbound stored twice
    assert c.order_violations == 1
    assert c.delayed == 1


def test_done_without_a_reply_at_the_provider_is_lost_and_handoff_is_not():
    webhooks, inbound, outbox, arrivals = _world()
    arrivals = [a for a in arrivals if not a.sid.startswith("P2-")]  # message 2's replies never arrived
    inbound[4].state = "handoff"
    arrivals = [a for a in arrivals if not a.sid.startswith("P4-")]  # handed to a human: no bot reply
    c = check(webhooks, inbound, outbox, arrivals)["all"]
    assert (c.lost, c.lost_sids) == (1, ["SM2"])


def test_counts_go_to_the_window_they_were_posted_or_sent_in():
    webhooks, inbound, outbox, arrivals = _world()
    inbound[3].state = "failed"
    arrivals.append(Arrival("P-orphan", webhooks[4].sender, "answer", 4.7))
    segments = [("clean", float("-inf"), 2.5), ("kill-worker", 2.5, float("inf"))]
    out = check(webhooks, inbound, outbox, arrivals, segments=segments)
    assert (out["clean"].sent, out["clean"].lost, out["clean"].duplicated) == (3, 0, 0)
    assert (out["kill-worker"].sent, out["kill-worker"].lost, out["kill-worker"].duplicated) == (2, 1, 1)
    assert (out["all"].sent, out["all"].lost, out["all"].duplicated) == (5, 1, 1)


def test_campaign_bodies_are_not_conversation_duplicates_and_twice_is_counted():
    webhooks, inbound, outbox, arrivals = _world()
    arrivals += [
        Arrival("C1", "+959250000001", "check the licence", 1.0),
        Arrival("C2", "+959250000002", "check the licence", 1.1),
        Arrival("C3", "+959250000001", "check the licence", 1.2),
    ]
    c = check(webhooks, inbound, outbox, arrivals, campaign_bodies={"check the licence"})["all"]
    assert c.duplicated == 0
    assert campaign_check(arrivals, {"check the licence"}) == (3, 2, 1)


def test_the_fake_twilio_fails_every_send_for_a_while_with_500_and_429_in_turn(fake_twilio):
    client = Client(TWILIO_SID, TWILIO_TOKEN, http_client=TwilioHttpClient(timeout=5))
    client.api.base_url = fake_twilio.url  # the real client, against the fake
    fake_twilio.fail_for(0.6)
    statuses = []
    for _ in range(4):
        with pytest.raises(TwilioRestException) as err:
            client.messages.create(to="+959790000001", from_=TWILIO_FROM, body="x")
        statuses.append((err.value.status, err.value.code))
    assert statuses == [(500, None), (429, 20429), (500, None), (429, 20429)]
    assert fake_twilio.messages == []
    time.sleep(0.7)
    assert client.messages.create(to="+959790000001", from_=TWILIO_FROM, body="x").sid
    assert len(fake_twilio.messages) == 1
    assert requests.get(fake_twilio.url + "/nothing", timeout=5).status_code == 404


def test_rasa_builds_its_postgresql_tracker_store_from_the_endpoints_bot_serve_writes(tmp_path):
    """Regression (found by the scale drill): ``bot/serve.py`` wrote ``host`` for a PostgreSQL
    tracker store and Rasa, which passes the endpoint's ``url`` as ``host``, refused to start."""
    import os
    import subprocess
    import uuid

    from sqlalchemy import create_engine, text

    from lanpya.db import normalise_url
    from tests.support import RASA_PYTHON, ROOT

    admin = os.environ.get("TEST_POSTGRES_URL")
    if not admin or not RASA_PYTHON.exists():
        pytest.skip("needs TEST_POSTGRES_URL and the Rasa environment")
    name = f"lanpya_test_tracker_{uuid.uuid4().hex[:8]}"
    engine = create_engine(normalise_url(admin), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    script = (
        "import serve\n"
        "from rasa.core.tracker_store import TrackerStore\n"
        "from rasa.utils.endpoints import read_endpoint_config\n"
        "store = TrackerStore.create(read_endpoint_config(str(serve.write_endpoints()), 'tracker_store'))\n"
        "print(type(store).__name__, store.engine.url.host, store.engine.url.database)\n"
    )
    env = dict(
        os.environ,
        RASA_TRACKER_URL=admin.rsplit("/", 1)[0] + "/" + name,
        LANPYA_VAR_DIR=str(tmp_path),
        RASA_TELEMETRY_ENABLED="false",
    )
    try:
        out = subprocess.run(
            [str(RASA_PYTHON), "-c", script],
            cwd=ROOT / "bot",
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        with engine.connect() as conn:
            conn.execute(
                text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        engine.dispose()
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["LanpyaTrackerStore", "127.0.0.1", name]


def test_a_reply_still_in_the_outbox_is_unanswered_not_lost():
    webhooks, inbound, outbox, arrivals = _world()
    arrivals = [a for a in arrivals if not a.sid.startswith("P1-")]
    for r in outbox:
        if r.inbound_id == 101:
            r.provider_id, r.state = None, "queued"
    c = check(webhooks, inbound, outbox, arrivals)["all"]
    assert (c.lost, c.unanswered) == (0, 1)


def test_the_bench_lock_is_taken_for_an_outage_unless_this_process_tree_holds_it(tmp_path, monkeypatch):
    import fcntl

    import bench.drills as drills

    path = tmp_path / "bench.lock"
    path.touch()
    monkeypatch.setattr(drills, "BENCH_LOCK", str(path))

    def free() -> bool:
        with open(path) as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(other, fcntl.LOCK_UN)
            return True

    with drills.bench_lock():
        assert not free()  # nobody held it: taken for the outage
    assert free()
    with open(path) as mine:
        fcntl.flock(mine, fcntl.LOCK_EX)  # as `flock LOCK command` does for its child
        with drills.bench_lock():  # held by this process (an ancestor of itself): no deadlock
            pass
        fcntl.flock(mine, fcntl.LOCK_UN)
