"""The scheduler process: one leader by a database lease with a fencing
epoch, standbys beat too and take over within 30 s of the leader dying,
APScheduler runs the jobs from a persistent job store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns import lease
from campaigns.engine import LEASE_NAME, Fence, LostLease
from campaigns.scheduler import Scheduler
from lanpya.db import Database
from lanpya.models import Heartbeat
from tests.conftest import TEST_KEYS
from tests.support import ROOT, stop_process, wait_until


def test_lease_has_one_holder_and_a_new_epoch_on_takeover(db, clock):
    assert lease.acquire(db, "scheduler", "a") == 1
    assert lease.acquire(db, "scheduler", "b") is None
    clock.advance(seconds=10)
    assert lease.acquire(db, "scheduler", "a") == 1  # renewed
    clock.advance(seconds=19)
    assert lease.acquire(db, "scheduler", "b") is None  # a renewed 19 s ago: still a's
    clock.advance(seconds=2)
    assert lease.acquire(db, "scheduler", "b") == 2  # expired: b takes over, epoch bumped
    with db.session() as s:
        assert not lease.holds(s, "scheduler", "a", 1)
        assert lease.holds(s, "scheduler", "b", 2)
    assert lease.acquire(db, "scheduler", "a") is None  # the old leader wakes up: refused


def test_a_fenced_write_by_a_stale_leader_is_refused(db, clock):
    assert lease.acquire(db, LEASE_NAME, "old") == 1
    clock.advance(seconds=25)
    assert lease.acquire(db, LEASE_NAME, "new") == 2
    with pytest.raises(LostLease), db.session() as s:
        Fence("old", 1).check(s)
    with db.session() as s:
        Fence("new", 2).check(s)


def test_leader_runs_apscheduler_standby_only_beats(config, db, clock):
    a = Scheduler(config, db, name="sched-a")
    b = Scheduler(config, db, name="sched-b")
    try:
        a.tick()
        b.tick()
        assert a.is_leader and not b.is_leader
        assert b.aps is None
        ids = {j.id for j in a.aps.get_jobs()}
        assert {"escalation.chase", "retention.purge", "campaigns.resume"} <= ids
        with db.session() as s:
            beats = {h.name: h.detail for h in s.scalars(select(Heartbeat).where(Heartbeat.kind == "scheduler"))}
        assert beats == {"sched-a": "leader epoch 1", "sched-b": "standby"}
        # the leader stops renewing (it hangs): b takes over after the lease runs out
        clock.advance(seconds=21)
        b.tick()
        assert b.is_leader and b.epoch == 2
        a.tick()  # the old leader notices and steps down
        assert not a.is_leader and a.aps is None
    finally:
        a.stop()
        b.stop()
        a._step_down("test over")
        b._step_down("test over")


def scheduler_env(config, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        LANPYA_ENV="test",
        DATABASE_URL=config.database_url,
        LANPYA_SECRET_KEY=TEST_KEYS["secret"],
        LANPYA_DATA_KEY=TEST_KEYS["data"],
        LANPYA_LOOKUP_KEY=TEST_KEYS["lookup"],
        LANPYA_INTERNAL_TOKEN=TEST_KEYS["internal"],
        LANPYA_VAR_DIR=str(config.var_dir),
        TWILIO_ACCOUNT_SID="",
        TWILIO_AUTH_TOKEN="",
        VIBER_AUTH_TOKEN="",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def start_scheduler(env: dict, name: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "lanpya"), "scheduler", "--name", name],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def _holder(db: Database) -> tuple[str | None, int]:
    holder, epoch, expires = lease.current(db, LEASE_NAME)
    return holder, epoch


@pytest.mark.postgres
def test_two_scheduler_processes_one_leader_standby_takes_over_after_kill_9(tmp_path, config, db):
    if not db.is_postgres:
        pytest.skip("the two-process leader election runs on PostgreSQL")
    env = scheduler_env(config)
    procs = {n: start_scheduler(env, n, tmp_path / f"{n}.log") for n in ("sched-1", "sched-2")}
    try:
        wait_until(lambda: _holder(db)[0] in procs, timeout=30, what="a leader")
        wait_until(lambda: _beats(db) == 2, timeout=30, what="both schedulers beating")
        leader, epoch = _holder(db)
        standby = next(n for n in procs if n != leader)
        with db.session() as s:
            details = {h.name: h.detail for h in s.scalars(select(Heartbeat))}
        assert details[leader] == f"leader epoch {epoch}"
        assert details[standby] == "standby"
        os.kill(procs[leader].pid, signal.SIGKILL)
        procs[leader].wait(10)
        killed_at = time.monotonic()
        wait_until(lambda: _holder(db)[0] == standby, timeout=35, interval=0.2, what="standby takeover")
        took = time.monotonic() - killed_at
        assert took <= 30, f"standby took {took:.1f}s"
        assert _holder(db)[1] == epoch + 1
        wait_until(lambda: _detail(db, standby) == f"leader epoch {epoch + 1}", timeout=10, what="new leader beat")
        print(f"standby took over {took:.1f}s after kill -9")
    finally:
        for p in procs.values():
            stop_process(p)
    log = (tmp_path / f"{standby}.log").read_text()
    assert "is the leader" in log


def _beats(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Heartbeat).where(Heartbeat.kind == "scheduler")) or 0


def _detail(db: Database, name: str) -> str | None:
    with db.session() as s:
        hb = s.get(Heartbeat, name)
        return hb.detail if hb else None
