"""Rasa's SQL tracker store, without re-reading a conversation on every turn.

Rasa's ``SQLTrackerStore`` reads every event of the conversation's current
session on each message (a query with a ``max(timestamp)`` subquery, then a
JSON parse of each row) and, to save, counts those rows again to know which
events are new. On this project's load that was a quarter of Rasa's CPU.

``LanpyaTrackerStore`` is the same store (same table, same rows, same
``url``/``db``/``dialect`` settings) that keeps the latest session's
serialised events of recently active senders in memory:

- ``retrieve`` asks the database one indexed question first — the sender's
  highest event id. If it is the one the cache saw last, the tracker is
  rebuilt from the cached rows (the same JSON the table holds); otherwise
  (another Rasa replica wrote, a restart, an eviction) it reads the table as
  Rasa does and refreshes the entry. So several replicas sharing one
  database stay correct: the database, not the cache, is the truth.
- ``save`` inserts only the events past the cached count — what Rasa's
  count query would give — when the entry was validated within
  ``TRUST_S`` (a turn runs under the sender's lock, so nobody else writes
  the sender's events between the two); otherwise it is Rasa's own save.
  A save that starts a new session drops the entry (the next read takes the
  session boundary from the table, exactly as Rasa does).
- Any error drops the entry and re-raises: nothing is half-cached.

The tracker saved last for each sender is also kept until the channel takes
it (``take_saved``), so the channel answers with the turn's intent and slots
without reading the conversation again.

Configured by bot/serve.py (``tracker_store.type``);
``RASA_TRACKER_CACHE`` senders are kept (default 2000; 0 = plain Rasa store).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Text

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)

#: a save trusts the cached count this long after the read that validated it
TRUST_S = 60.0
#: trackers saved but not yet taken by the channel (one per sender, oldest dropped)
MAX_SAVED = 1000


@dataclass
class _Entry:
    rows: List[str]  # the current session's events, serialised as in the table
    last_id: Optional[int]  # the sender's highest event id when rows were read or written
    checked: float  # time.monotonic() of the last validation against the table


class LanpyaTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, cache_size: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if cache_size is None:
            cache_size = int(os.environ.get("RASA_TRACKER_CACHE", "2000") or 0)
        self.cache_size = max(0, int(cache_size))
        self._cache: "OrderedDict[str, _Entry]" = OrderedDict()
        self._saved: "OrderedDict[str, DialogueStateTracker]" = OrderedDict()
        table = self.SQLEvent.__table__
        self._last_id_query = sa.select(sa.func.max(table.c.id)).where(
            table.c.sender_id == sa.bindparam("sender_id")
        )
        #: for tests and logs
        self.hits = 0
        self.misses = 0

    # --- reading ---------------------------------------------------------------------
    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        if not self.cache_size:
            return await super().retrieve(sender_id)
        try:
            rows = self._current_rows(sender_id)
        except Exception:
            self._cache.pop(sender_id, None)
            raise
        if not rows or not self.domain:
            return None
        return DialogueStateTracker.from_dict(sender_id, [json.loads(r) for r in rows], self.domain.slots)

    def _current_rows(self, sender_id: str) -> List[str]:
        with self.session_scope() as session:
            last_id = session.execute(self._last_id_query, {"sender_id": sender_id}).scalar()
            entry = self._cache.get(sender_id)
            if entry is not None and entry.last_id == last_id:
                self.hits += 1
            else:
                self.misses += 1
                events = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).all()
                entry = _Entry([e.data for e in events], last_id, 0.0)
                self._remember(sender_id, entry)
            entry.checked = time.monotonic()
            self._cache.move_to_end(sender_id)
            return list(entry.rows)

    def _remember(self, sender_id: str, entry: _Entry) -> None:
        self._cache[sender_id] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # --- writing ---------------------------------------------------------------------
    async def save(self, tracker: DialogueStateTracker) -> None:
        sender_id = tracker.sender_id
        entry = self._cache.get(sender_id) if self.cache_size else None
        if entry is None or time.monotonic() - entry.checked > TRUST_S:
            self._cache.pop(sender_id, None)
            await super().save(tracker)
            self._keep_saved(tracker)
            return
        await self.stream_events(tracker)
        try:
            new = list(tracker.events)[len(entry.rows):]
            rows: List[str] = []
            ids: List[int] = []
            with self.session_scope() as session:
                records = []
                for event in new:
                    data = event.as_dict()
                    serialised = json.dumps(data)
                    record = self.SQLEvent(
                        sender_id=sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                        action_name=data.get("name"),
                        data=serialised,
                    )
                    session.add(record)
                    records.append(record)
                    rows.append(serialised)
                session.flush()
                ids = [r.id for r in records]
                session.commit()
        except Exception:
            self._cache.pop(sender_id, None)
            raise
        if any(isinstance(e, SessionStarted) for e in new):
            self._cache.pop(sender_id, None)  # the next read takes the new session from the table
        else:
            entry.rows.extend(rows)
            if ids:
                entry.last_id = max(ids)
        self._keep_saved(tracker)

    def _keep_saved(self, tracker: DialogueStateTracker) -> None:
        self._saved[tracker.sender_id] = tracker
        self._saved.move_to_end(tracker.sender_id)
        while len(self._saved) > MAX_SAVED:
            self._saved.popitem(last=False)

    def take_saved(self, sender_id: str) -> Optional[DialogueStateTracker]:
        """The tracker this process saved last for the sender, once (None if none)."""
        return self._saved.pop(sender_id, None)

    def stats(self) -> Dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "cached": len(self._cache)}


def unwrap(store: Any) -> Any:
    """The store under Rasa's wrappers (AwaitableTrackerStore, FailSafeTrackerStore)."""
    for _ in range(5):
        inner = getattr(store, "_tracker_store", None)
        if inner is None:
            break
        store = inner
    return store
