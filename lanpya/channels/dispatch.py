"""Sending the outbox: claim due rows, honour the channel's rate, call the
provider, record the outcome.

The state of a row is committed to ``sending`` *before* the provider call and
to ``sent`` / ``failed`` / ``queued`` (retry) *after* it, so a crash can at
worst repeat the sends that were in flight, never one that was recorded.
Claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the write lock
taken at ``BEGIN IMMEDIATE`` serialises claimers, and the ``lease_owner`` /
``lease_until`` columns say who holds a row. A ``sending`` row whose lease ran
out (its worker died mid-call) goes back to ``queued``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from lanpya import clock
from lanpya.channels import rate
from lanpya.channels.errors import MAX_ATTEMPTS, OPTED_OUT, UNREACHABLE, SendOutcome, backoff
from lanpya.channels.status import RANK, STATE
from lanpya.channels.twilio_sender import TwilioSender
from lanpya.channels.viber_sender import BROADCAST_MAX, ViberSender
from lanpya.config import Config
from lanpya.db import Database
from lanpya.models import Case, Contact, Outbox, Staff

logger = logging.getLogger(__name__)

#: how long a claimed row belongs to its worker before it is considered abandoned
LEASE = timedelta(minutes=5)
#: provider calls in flight at once per dispatch (each recipient's messages stay in order)
SEND_THREADS = 4
CHANNELS = (Contact.SMS, Contact.VIBER)


@dataclass
class Claimed:
    id: int
    channel: str
    kind: str
    to: str
    body: str
    extra: dict | None
    attempts: int
    contact_id: int | None


_senders: dict[tuple, object] = {}


def sender_for(config: Config, channel: str):
    """The channel's sender, or None when its credentials are not configured."""
    if channel == Contact.SMS:
        if not TwilioSender.configured(config):
            return None
        key = ("sms", config.twilio_account_sid, config.twilio_auth_token, config.twilio_api_url,
               config.twilio_from_number, config.twilio_messaging_service_sid, config.public_url,
               config.twilio_discard_content)
        if key not in _senders:
            _senders[key] = TwilioSender(config)
        return _senders[key]
    if channel == Contact.VIBER:
        if not ViberSender.configured(config):
            return None
        key = ("viber", config.viber_auth_token, config.viber_api_url, config.viber_bot_name)
        if key not in _senders:
            _senders[key] = ViberSender(config)
        return _senders[key]
    return None


def _rate_of(config: Config, channel: str) -> float:
    return config.twilio_rate if channel == Contact.SMS else config.viber_rate


def _due(channel: str, now):
    return (
        select(Outbox)
        .where(
            Outbox.state == Outbox.QUEUED,
            Outbox.channel == channel,
            or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= now),
            or_(Outbox.not_before.is_(None), Outbox.not_before <= now),
        )
        .order_by(Outbox.priority, Outbox.id)
    )


def _lock(session: Session, q):
    if session.get_bind().dialect.name == "postgresql":
        return q.with_for_update(skip_locked=True, of=Outbox)
    return q


def recover_abandoned(db: Database) -> int:
    """Rows stuck in ``sending`` past their lease go back to the queue."""
    now = clock.now()
    with db.session() as s:
        result = s.execute(
            update(Outbox)
            .where(Outbox.state == Outbox.SENDING, Outbox.lease_until < now)
            .values(state=Outbox.QUEUED, lease_owner=None, lease_until=None, next_attempt_at=now)
        )
        count = result.rowcount or 0
    if count:
        logger.warning("outbox: %d abandoned sending row(s) requeued", count)
    return count


def _mark_unsent(db: Database, channel: str, limit: int) -> int:
    """No credentials for the channel: due rows become ``unsent`` (see `lanpya outbox`)."""
    now = clock.now()
    with db.session() as s:
        rows = s.scalars(_lock(s, _due(channel, now).limit(limit))).all()
        for row in rows:
            row.state = Outbox.UNSENT
            row.error = f"{channel} is not configured"
        count = len(rows)
    if count:
        logger.info("outbox: %d %s row(s) kept unsent (no credentials)", count, channel)
    return count


def _open_case(session: Session, contact_id: int) -> bool:
    return (
        session.scalar(
            select(Case.id).where(Case.contact_id == contact_id, Case.status.in_(Case.OPEN)).limit(1)
        )
        is not None
    )


def _recipient(session: Session, row: Outbox, open_case_ids: set[int] | None = None) -> tuple[str | None, str | None]:
    """(address, reason it must not be sent). ``open_case_ids``: contacts with an
    open case, when the caller loaded them for a whole batch."""
    if row.staff_id is not None and row.contact_id is None:
        staff = session.get(Staff, row.staff_id)
        if staff is None or not staff.active:
            return None, "staff member inactive"
        addr = staff.phone if row.channel == Contact.SMS else staff.viber_id
        return (addr, None) if addr else (None, f"staff member has no {row.channel} address")
    contact = session.get(Contact, row.contact_id) if row.contact_id is not None else None
    if contact is None or contact.erased_at is not None or not contact.address:
        return None, "contact erased"
    if row.kind == Outbox.CAMPAIGN:
        if contact.opted_out:
            return None, "opted out"
        if contact.unreachable:
            return None, "unreachable"
        if contact.id in open_case_ids if open_case_ids is not None else _open_case(session, contact.id):
            return None, "open case"
    return contact.address, None


def _claim(db: Database, config: Config, channel: str, worker: str, limit: int) -> list[Claimed]:
    now = clock.now()
    claimed: list[Claimed] = []
    with db.session() as s:
        tokens = rate.available(s, channel, _rate_of(config, channel))
        want = min(limit, tokens)
        if want <= 0:
            return []
        rows = s.scalars(_lock(s, _due(channel, now).limit(want))).all()
        # one query each for the batch's contacts and open cases, not two per row
        contact_ids = {r.contact_id for r in rows if r.contact_id is not None}
        open_ids: set[int] = set()
        _held: list[Contact] = []  # kept alive, so session.get below finds them in the (weak) identity map
        if contact_ids:
            _held = list(s.scalars(select(Contact).where(Contact.id.in_(contact_ids))))
            open_ids = set(s.scalars(select(Case.contact_id).where(
                Case.contact_id.in_(contact_ids), Case.status.in_(Case.OPEN))))
        for row in rows:
            to, reason = _recipient(s, row, open_ids)
            if reason is not None:
                row.state = Outbox.CANCELLED
                row.error = reason
                continue
            row.state = Outbox.SENDING
            row.lease_owner = worker
            row.lease_until = now + LEASE
            row.attempts = (row.attempts or 0) + 1
            claimed.append(
                Claimed(row.id, row.channel, row.kind, to, row.body or "", row.extra, row.attempts, row.contact_id)
            )
        rate.take(s, channel, len(claimed))
    return claimed


def _flag_contact(session: Session, contact_id: int | None, flag: str | None) -> None:
    if contact_id is None or flag is None:
        return
    contact = session.get(Contact, contact_id)
    if contact is None:
        return
    if flag == OPTED_OUT:
        if not contact.opted_out:
            contact.opted_out = True
            contact.opted_out_at = clock.now()
    elif flag == UNREACHABLE:
        contact.unreachable = True


def _record(session: Session, item: Claimed, worker: str, outcome: SendOutcome) -> str:
    """Write a provider outcome on the row (only if this worker still holds it)."""
    row = session.get(Outbox, item.id, with_for_update=session.get_bind().dialect.name == "postgresql")
    if row is None or row.state != Outbox.SENDING or row.lease_owner != worker:
        logger.warning("outbox %s: lease lost before the outcome was recorded", item.id)
        return "lost"
    now = clock.now()
    row.lease_owner = None
    row.lease_until = None
    if outcome.ok:
        row.state = Outbox.SENT
        row.provider_id = outcome.provider_id
        # a status callback may have overtaken this commit: never move backwards
        if RANK.get(outcome.provider_status or "", -1) > RANK.get(row.provider_status or "", -1):
            row.provider_status = outcome.provider_status
        if row.provider_status in STATE:
            row.state = STATE[row.provider_status]
        row.sent_at = now
        if item.contact_id is not None:  # the provider took it: reachable after all
            contact = session.get(Contact, item.contact_id)
            if contact is not None and contact.unreachable:
                contact.unreachable = False
        row.error = None
        row.error_code = None
        return "sent"
    err = outcome.error
    assert err is not None
    row.error_code = err.code[:32]
    row.error = (err.message or err.code)[:200]
    if err.transient and item.attempts < MAX_ATTEMPTS:
        row.state = Outbox.QUEUED
        row.next_attempt_at = now + backoff(item.attempts)
        return "retry"
    row.state = Outbox.FAILED
    if not err.transient:
        _flag_contact(session, item.contact_id, err.contact_flag)
    return "failed"


def _call(sender, item: Claimed) -> SendOutcome:
    """One provider call; never raises (a bug must not leave the row in flight)."""
    try:
        return sender.send(item.to, item.body, item.extra, ref=item.id)
    except Exception as exc:  # noqa: BLE001
        logger.exception("outbox %s: sender raised %s", item.id, type(exc).__name__)
        from lanpya.channels.errors import ProviderError

        return SendOutcome(error=ProviderError("transient", "internal", type(exc).__name__))


def _record_all(db: Database, worker: str, done: list[tuple[Claimed, SendOutcome]]) -> None:
    """Record a claimed batch's outcomes in one transaction (one commit per
    batch, not per message: the batch was committed as in flight before any
    call, so a crash here can repeat at most that batch, never more)."""
    if not done:
        return
    with db.session() as s:
        results = [(item, outcome, _record(s, item, worker, outcome)) for item, outcome in done]
    for item, outcome, result in results:
        logger.info("outbox %s %s via %s: %s%s", item.id, item.kind, item.channel, result,
                    f" ({outcome.error.code})" if outcome.error else "")


def _send_broadcast(db: Database, sender: ViberSender, items: list[Claimed], worker: str) -> None:
    first = items[0]
    result = sender.broadcast([i.to for i in items], first.body, first.extra)
    with db.session() as s:
        for item in items:
            if result.error is not None:
                outcome = SendOutcome(error=result.error)
            elif item.to in result.failed:
                outcome = SendOutcome(error=result.failed[item.to])
            else:
                outcome = SendOutcome(provider_id=result.provider_id, provider_status="sent")
            _record(s, item, worker, outcome)
    logger.info("outbox: viber broadcast of %d (%d failed)%s", len(items), len(result.failed),
                f" error {result.error.code}" if result.error else "")


def _broadcast_key(item: Claimed) -> tuple:
    return (item.body, repr(sorted((item.extra or {}).items())))


def dispatch_due(db: Database, config: Config, worker_name: str, limit: int = 100) -> int:
    """Send what is due, at most ``limit`` rows per channel; returns rows handled.

    Replies, alerts and agent messages (priority 0) go before campaign
    traffic (priority 5). Viber campaign rows with the same text are sent with
    ``broadcast_message`` in batches of at most 300.
    """
    recover_abandoned(db)
    handled = 0
    for channel in CHANNELS:
        sender = sender_for(config, channel)
        if sender is None:
            handled += _mark_unsent(db, channel, limit)
            continue
        items = _claim(db, config, channel, worker_name, limit)
        if not items:
            continue
        singles = items
        if channel == Contact.VIBER:
            groups: dict[tuple, list[Claimed]] = {}
            singles = []
            for item in items:
                if item.kind == Outbox.CAMPAIGN:
                    groups.setdefault(_broadcast_key(item), []).append(item)
                else:
                    singles.append(item)
            for group in groups.values():
                if len(group) == 1:
                    singles.append(group[0])
                    continue
                for start in range(0, len(group), BROADCAST_MAX):
                    _send_broadcast(db, sender, group[start : start + BROADCAST_MAX], worker_name)
            singles.sort(key=lambda i: i.id)
        _send_in_parallel(db, sender, singles, worker_name)
        handled += len(items)
    return handled


def _send_in_parallel(db: Database, sender, items: list[Claimed], worker: str) -> None:
    """Provider calls are network-bound: up to SEND_THREADS at once, but one
    recipient's messages in order, one after the other, on one thread. The
    outcomes are recorded together once the batch has been sent."""
    by_recipient: dict[tuple, list[Claimed]] = {}
    for item in sorted(items, key=lambda i: i.id):
        by_recipient.setdefault((item.channel, item.to), []).append(item)
    lanes = list(by_recipient.values())
    done: list[tuple[Claimed, SendOutcome]] = []

    def run(lane: list[Claimed]) -> list[tuple[Claimed, SendOutcome]]:
        return [(item, _call(sender, item)) for item in lane]

    try:
        if len(lanes) <= 1 or SEND_THREADS <= 1:
            for lane in lanes:
                done += run(lane)
        else:
            with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(lanes)), thread_name_prefix="send") as pool:
                for future in [pool.submit(run, lane) for lane in lanes]:
                    done += future.result()
    finally:
        _record_all(db, worker, done)
