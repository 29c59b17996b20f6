"""bot/channels/tracker_store.py: Rasa's SQL tracker store with a per-sender cache.

Run in the Rasa environment (Python 3.10). Two cached stores stand for two Rasa
replicas on one database, and Rasa's own SQLTrackerStore reads the same table:
every read must equal Rasa's, whoever wrote last."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support import RASA_PYTHON, ROOT

SCRIPT = r'''
import asyncio, json, sys
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from channels.tracker_store import LanpyaTrackerStore, unwrap
from rasa.core.tracker_store import FailSafeTrackerStore, AwaitableTrackerStore

db = sys.argv[1]
domain = Domain.from_yaml("""
version: "3.1"
intents: [greet]
slots:
  language: {type: text, influence_conversation: false, mappings: [{type: custom}]}
responses:
  utter_greet: [{text: hi}]
""")
a = LanpyaTrackerStore(domain=domain, dialect="sqlite", db=db)
b = LanpyaTrackerStore(domain=domain, dialect="sqlite", db=db)
plain = SQLTrackerStore(domain=domain, dialect="sqlite", db=db)
out = {}

def dump(t):
    return [e.as_dict() for e in t.events] if t is not None else None

async def same(name, sender="s1"):
    mine, theirs = await a.retrieve(sender), await plain.retrieve(sender)
    out[name] = dump(mine) == dump(theirs) and mine is not None

async def main():
    t = await a.get_or_create_tracker("s1")
    t.update(UserUttered("hello", {"name": "greet", "confidence": 0.9}))
    t.update(ActionExecuted("utter_greet"))
    t.update(BotUttered("hi"))
    t.update(SlotSet("language", "my"))
    await a.save(t)
    out["taken_once"] = a.take_saved("s1") is t and a.take_saved("s1") is None
    await same("after_save")
    hits = a.hits
    await same("again")
    out["hit"] = a.hits == hits + 1
    # the other replica writes: the first must see it
    tb = await b.retrieve("s1")
    tb.update(UserUttered("from b", {"name": "greet", "confidence": 0.8}))
    await b.save(tb)
    misses = a.misses
    await same("other_replica")
    out["miss_after_other_write"] = a.misses == misses + 1
    out["sees_b"] = any(e.get("text") == "from b" for e in dump(await a.retrieve("s1")))
    # a new session: reads keep only it, as Rasa's store does
    t = await a.retrieve("s1")
    t.update(ActionExecuted("action_session_start"))
    t.update(SessionStarted())
    t.update(ActionExecuted("action_listen"))
    t.update(UserUttered("new session", {"name": "greet", "confidence": 0.7}))
    await a.save(t)
    await same("new_session")
    out["new_session_only"] = [e.get("text") for e in dump(await a.retrieve("s1")) if e["event"] == "user"] == ["new session"]
    t = await a.retrieve("s1")
    t.update(BotUttered("second turn"))
    await a.save(t)
    await same("after_session_save")
    # a stranger: nothing stored, nothing returned
    out["unknown_none"] = await a.retrieve("nobody") is None
    # the channel finds the store under Rasa's wrappers
    out["unwrap"] = unwrap(FailSafeTrackerStore(AwaitableTrackerStore(a))) is a
    # cache off: plain Rasa behaviour
    off = LanpyaTrackerStore(domain=domain, dialect="sqlite", db=db, cache_size=0)
    out["off_same"] = dump(await off.retrieve("s1")) == dump(await plain.retrieve("s1"))
    out["off_no_cache"] = off.hits == 0 and off.misses == 0

asyncio.run(main())
print(json.dumps(out))
'''


def test_cached_tracker_store_reads_what_rasas_store_reads(tmp_path):
    if not RASA_PYTHON.exists():
        pytest.skip("needs the Rasa environment")
    proc = subprocess.run(
        [str(RASA_PYTHON), "-c", SCRIPT, str(tmp_path / "tracker.db")],
        cwd=ROOT / "bot", capture_output=True, text=True, timeout=300,
        env={"RASA_TELEMETRY_ENABLED": "false", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {k: True for k in result}, result
    assert len(result) == 14
