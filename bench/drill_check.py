"""What the drills count, as pure functions over what was sent and what was
seen (tests/test_drills.py runs them on synthetic sets).

Inputs, all on one monotonic clock (the harness process's):

- ``Webhook``: every inbound message the harness posted (MessageSid, sender,
  when sent, when acknowledged, HTTP status);
- ``InRow``: the ``inbound`` rows found in the database afterwards, by MessageSid;
- ``OutRow``: the ``outbox`` rows that reached the provider (``provider_id``)
  or belong to an inbound message;
- ``Arrival``: every message the fake provider accepted (its sid, to, body, when).

Counts:

- *lost*: posted but never stored, stored but given up (``failed``), or
  done in the database with no reply at the provider and none left to send;
- *unanswered*: still queued or processing, or its reply still in the outbox,
  when the drill stopped waiting (not lost, but the drill fails on it too);
- *duplicated*: inbound stored more than once, and provider messages that no
  outbox row accounts for (a send whose outcome was not recorded, sent again:
  bounded by the sends in flight at a crash);
- *order violations*: per contact, Rasa answers (``reply:<inbound>:<seq>``)
  reaching the provider out of (inbound, seq) order;
- *delayed*: answered, first reply more than ``delay_s`` after posting.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

DONE_STATES = ("done", "handoff")


@dataclass
class Webhook:
    sid: str
    sender: str
    t_send: float
    t_ack: float = 0.0
    status: int = 0
    kind: str = "question"  # question | report


@dataclass
class InRow:
    id: int
    sid: str
    state: str


@dataclass
class OutRow:
    id: int
    kind: str
    inbound_id: int | None
    seq: int
    dedupe_key: str | None
    provider_id: str | None
    state: str


@dataclass
class Arrival:
    sid: str
    to: str
    body: str
    t: float


@dataclass
class Counts:
    sent: int = 0
    acked: int = 0
    stored: int = 0
    lost: int = 0
    unanswered: int = 0
    duplicated: int = 0
    order_violations: int = 0
    delayed: int = 0
    e2e: list[float] = field(default_factory=list)
    ack: list[float] = field(default_factory=list)
    lost_sids: list[str] = field(default_factory=list)
    #: why each lost one counts as lost ("not stored (HTTP 0)", "failed", "done, no reply" ...)
    reasons: Counter = field(default_factory=Counter)

    def line(self) -> str:
        return (
            f"sent {self.sent}, acked {self.acked}, stored {self.stored}, lost {self.lost}, "
            f"unanswered {self.unanswered}, duplicated {self.duplicated}, out of order {self.order_violations}, "
            f"delayed {self.delayed}"
        )


def segment_of(t: float, segments: list[tuple[str, float, float]]) -> str:
    for name, start, end in segments:
        if start <= t < end:
            return name
    return segments[-1][0] if segments else "all"


def check(
    webhooks: list[Webhook],
    inbound: list[InRow],
    outbox: list[OutRow],
    arrivals: list[Arrival],
    *,
    segments: list[tuple[str, float, float]] | None = None,
    campaign_bodies: set[str] = frozenset(),
    delay_s: float = 10.0,
) -> dict[str, Counts]:
    """Counts per segment (by when the webhook was posted / the duplicate sent), plus "all"."""
    segments = segments or [("all", float("-inf"), float("inf"))]
    out: dict[str, Counts] = {name: Counts() for name, _, _ in segments}
    out["all"] = out.get("all") or Counts()
    by_sid: dict[str, list[InRow]] = defaultdict(list)
    for row in inbound:
        by_sid[row.sid].append(row)
    arrived = {a.sid: a for a in arrivals}
    recorded = {r.provider_id for r in outbox if r.provider_id}
    replies: dict[int, list[float]] = defaultdict(list)
    to_send: set[int] = set()  # inbound ids with a reply still queued or sending
    by_provider: dict[str, OutRow] = {}
    for r in outbox:
        if r.provider_id:
            by_provider[r.provider_id] = r
        if r.inbound_id is not None and r.kind != "campaign" and r.state in ("queued", "sending"):
            to_send.add(r.inbound_id)
        if r.inbound_id is not None and r.kind != "campaign" and r.provider_id in arrived:
            replies[r.inbound_id].append(arrived[r.provider_id].t)

    def both(seg: str):
        return (out[seg], out["all"]) if seg != "all" else (out["all"],)

    for w in webhooks:
        seg = segment_of(w.t_send, segments)
        rows = by_sid.get(w.sid, [])
        first = min((t for row in rows for t in replies.get(row.id, [])), default=None)
        for c in both(seg):
            c.sent += 1
            if w.status == 200:
                c.acked += 1
                c.ack.append(w.t_ack - w.t_send)
            if rows:
                c.stored += 1
                c.duplicated += len(rows) - 1
            reason = None
            if not rows:
                reason = f"not stored (HTTP {w.status})"
            elif rows[0].state == "failed":
                reason = "failed"
            elif rows[0].state not in DONE_STATES or (first is None and rows[0].id in to_send):
                c.unanswered += 1
            elif rows[0].state == "done" and first is None:
                reason = "done, no reply at the provider"
            if reason is not None:
                c.lost += 1
                c.lost_sids.append(w.sid)
                c.reasons[reason] += 1
            if first is not None:
                c.e2e.append(first - w.t_send)
                if first - w.t_send > delay_s:
                    c.delayed += 1
    # provider messages no outbox row accounts for: a send repeated after its outcome was lost
    for a in arrivals:
        if a.sid not in recorded and a.body not in campaign_bodies:
            for c in both(segment_of(a.t, segments)):
                c.duplicated += 1
    # per contact, the Rasa answers in (inbound, seq) order
    per_to: dict[str, list[Arrival]] = defaultdict(list)
    for a in arrivals:
        r = by_provider.get(a.sid)
        if r is not None and (r.dedupe_key or "").startswith("reply:") and r.inbound_id is not None:
            per_to[a.to].append(a)
    for items in per_to.values():
        items.sort(key=lambda a: a.t)
        last: tuple[int, int] | None = None
        for a in items:
            r = by_provider[a.sid]
            key = (r.inbound_id, r.seq)
            if last is not None and key < last:
                for c in both(segment_of(a.t, segments)):
                    c.order_violations += 1
            last = max(last, key) if last is not None else key
    return out


def campaign_check(arrivals: list[Arrival], bodies: set[str]) -> tuple[int, int, int]:
    """(campaign messages at the provider, recipients, recipients who got one more than once)."""
    per = Counter(a.to for a in arrivals if a.body in bodies)
    return sum(per.values()), len(per), sum(1 for n in per.values() if n > 1)
