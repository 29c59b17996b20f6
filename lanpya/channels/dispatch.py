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
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from cryptography.fernet import InvalidToken
from sqlalchemy import (
    ColumnElement,
    Integer,
    LargeBinary,
    any_,
    bindparam,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from lanpya import clock, crypto
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
SEND_THREADS = 8
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
        key = (
            "sms",
            config.twilio_account_sid,
            config.twilio_auth_token,
            config.twilio_api_url,
            config.twilio_from_number,
            config.twilio_messaging_service_sid,
            config.public_url,
            config.twilio_discard_content,
        )
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


def _due(channel: str, now, *columns):
    return (
        select(*(columns or (Outbox,)))
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


def _among(session: Session, col, ids) -> ColumnElement[bool]:
    """``col IN (ids)``; on PostgreSQL ``col = ANY(%s)`` with one array parameter.
    A batch's IN list is 200 placeholders: psycopg does not cache the conversion
    of so long a query and re-parsed it for every statement (~3 ms each, five
    statements a batch), and PostgreSQL got a new statement text for every
    batch size."""
    ids = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return col == any_(bindparam(None, ids, type_=ARRAY(Integer)))
    return col.in_(ids)


def _open_case(session: Session, contact_id: int) -> bool:
    return (
        session.scalar(
            select(Case.id).where(Case.contact_id == contact_id, Case.status.in_(Case.OPEN)).limit(1)
        )
        is not None
    )


#: the body as stored (a Fernet token): campaign rows of one language share one token
_RAW_BODY = type_coerce(Outbox.__table__.c.body, LargeBinary).label("raw_body")
_CLAIM_COLUMNS = (
    Outbox.id,
    Outbox.kind,
    Outbox.contact_id,
    Outbox.staff_id,
    _RAW_BODY,
    Outbox.extra,
    Outbox.attempts,
)
#: decrypted campaign bodies by (keyring, token): the engine writes one token per
#: language and fire, so a batch decrypts a handful of tokens, not one per row
_campaign_bodies: dict[tuple[int, bytes], str] = {}
_BODY_CACHE_MAX = 256


def _body(raw: bytes | None, kind: str) -> str | None:
    """The row's text, or None when no configured key opens it."""
    if raw is None:
        return ""
    raw = bytes(raw)
    ring = crypto.keyring()
    key = (id(ring), raw)
    if kind == Outbox.CAMPAIGN and key in _campaign_bodies:
        return _campaign_bodies[key]
    try:
        text = ring.decrypt(raw)
    except InvalidToken:
        return None
    if kind == Outbox.CAMPAIGN:  # replies are one of a kind: not kept
        if len(_campaign_bodies) >= _BODY_CACHE_MAX:
            _campaign_bodies.clear()
        _campaign_bodies[key] = text
    return text


def _recipient(
    session: Session, channel: str, row, contacts: dict, open_case_ids: set[int]
) -> tuple[str | None, str | None]:
    """(address, reason it must not be sent) for a claimed row; ``contacts`` and
    ``open_case_ids`` were loaded for the whole batch."""
    if row.staff_id is not None and row.contact_id is None:
        staff = session.get(Staff, row.staff_id)
        if staff is None or not staff.active:
            return None, "staff member inactive"
        addr = staff.phone if channel == Contact.SMS else staff.viber_id
        return (addr, None) if addr else (None, f"staff member has no {channel} address")
    contact = contacts.get(row.contact_id) if row.contact_id is not None else None
    if contact is None or contact.erased_at is not None or not contact.address:
        return None, "contact erased"
    if row.kind == Outbox.CAMPAIGN:
        if contact.opted_out:
            return None, "opted out"
        if contact.unreachable:
            return None, "unreachable"
        if contact.id in open_case_ids:
            return None, "open case"
    return contact.address, None


def _held_back(session: Session, rows) -> set[int]:
    """Ids of conversation rows (anything but campaign messages) that must wait
    because an earlier one to the same person is still queued outside this
    batch (not due yet: a retry's backoff) or being sent by another worker.

    Within a batch a person's rows are sent in order on one thread
    (``_send_in_parallel``); across batches and workers nothing else kept that
    order, and the stop-redis drill saw a contact's answers overtake each other
    when a backlog of one person's messages was answered all at once."""
    mine = {r.id: r.contact_id for r in rows if r.contact_id is not None and r.kind != Outbox.CAMPAIGN}
    if not mine:
        return set()
    pending: dict[int, list[int]] = {}
    for contact_id, row_id in session.execute(
        select(Outbox.contact_id, Outbox.id).where(
            _among(session, Outbox.contact_id, set(mine.values())),
            Outbox.kind != Outbox.CAMPAIGN,
            Outbox.state.in_((Outbox.QUEUED, Outbox.SENDING)),
            Outbox.id < max(mine),
        )
    ):
        pending.setdefault(contact_id, []).append(row_id)
    held: set[int] = set()
    for row_id in sorted(mine):
        earlier = [i for i in pending.get(mine[row_id], ()) if i < row_id]
        if any(i not in mine or i in held for i in earlier):
            held.add(row_id)
    return held


def _claim(db: Database, config: Config, channel: str, worker: str, limit: int) -> list[Claimed]:
    """Take up to ``limit`` due rows (and the rate's tokens for them) and commit
    them as ``sending`` under this worker's lease, in a handful of statements
    whatever the batch size: the rows, their contacts, their open cases, one
    UPDATE for the claimed and one per reason for the cancelled."""
    now = clock.now()
    claimed: list[Claimed] = []
    with db.session() as s:
        tokens = rate.available(s, channel, _rate_of(config, channel))
        want = min(limit, tokens)
        if want <= 0:
            return []
        rows = s.execute(_lock(s, _due(channel, now, *_CLAIM_COLUMNS).limit(want))).all()
        contact_ids = {r.contact_id for r in rows if r.contact_id is not None}
        contacts: dict = {}
        open_ids: set[int] = set()
        if contact_ids:
            contacts = {
                c.id: c
                for c in s.execute(
                    select(
                        Contact.id, Contact.address, Contact.erased_at, Contact.opted_out, Contact.unreachable
                    ).where(_among(s, Contact.id, contact_ids))
                )
            }
            open_ids = set(
                s.scalars(
                    select(Case.contact_id).where(
                        _among(s, Case.contact_id, contact_ids), Case.status.in_(Case.OPEN)
                    )
                )
            )
        held = _held_back(s, rows)
        cancelled: dict[tuple[str, str], list[int]] = {}
        for row in rows:
            if row.id in held:
                continue  # stays queued: an earlier message to this person goes first
            to, reason = _recipient(s, channel, row, contacts, open_ids)
            body = _body(row.raw_body, row.kind) if reason is None else None
            if reason is None and body is None:
                # no configured key opens it: keep it (a key may come back), send nothing
                cancelled.setdefault((Outbox.UNSENT, "body undecryptable (key missing)"), []).append(row.id)
                continue
            if reason is not None:
                cancelled.setdefault((Outbox.CANCELLED, reason), []).append(row.id)
                continue
            claimed.append(
                Claimed(
                    row.id, channel, row.kind, to, body, row.extra, (row.attempts or 0) + 1, row.contact_id
                )
            )
        if claimed:
            s.execute(
                update(Outbox)
                .where(_among(s, Outbox.id, [c.id for c in claimed]))
                .values(
                    state=Outbox.SENDING,
                    lease_owner=worker,
                    lease_until=now + LEASE,
                    attempts=func.coalesce(Outbox.attempts, 0) + 1,
                )
                .execution_options(synchronize_session=False)
            )
        for (state, reason), ids in cancelled.items():
            s.execute(
                update(Outbox)
                .where(_among(s, Outbox.id, ids))
                .values(state=state, error=reason)
                .execution_options(synchronize_session=False)
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
    """Write one provider outcome on its row (only if this worker still holds it)."""
    return _record_many(session, worker, [(item, outcome)])[0]


_T = Outbox.__table__
_SET_SENT = (
    update(_T)
    .where(_T.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        provider_id=bindparam("b_pid"),
        provider_status=bindparam("b_pstatus"),
        sent_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
        lease_owner=None,
        lease_until=None,
        error=None,
        error_code=None,
    )
)
_SET_RETRY = (
    update(_T)
    .where(_T.c.id == bindparam("b_id"))
    .values(
        state=Outbox.QUEUED,
        next_attempt_at=bindparam("b_next"),
        error_code=bindparam("b_code"),
        error=bindparam("b_error"),
        updated_at=bindparam("b_now"),
        lease_owner=None,
        lease_until=None,
    )
)
_SET_FAILED = (
    update(_T)
    .where(_T.c.id == bindparam("b_id"))
    .values(
        state=Outbox.FAILED,
        error_code=bindparam("b_code"),
        error=bindparam("b_error"),
        updated_at=bindparam("b_now"),
        lease_owner=None,
        lease_until=None,
    )
)


def _record_many(session: Session, worker: str, done: list[tuple[Claimed, SendOutcome]]) -> list[str]:
    """Write provider outcomes on their rows, each only if this worker still
    holds it: one SELECT (``FOR UPDATE`` on PostgreSQL, so a status callback
    for the same row waits) and one executemany UPDATE per kind of outcome,
    whatever the batch size. Returns "sent" / "retry" / "failed" / "lost" per item."""
    ids = sorted({item.id for item, _ in done})
    q = select(Outbox.id, Outbox.state, Outbox.lease_owner, Outbox.provider_status).where(
        _among(session, Outbox.id, ids)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    current = {r.id: r for r in session.execute(q)}
    now = clock.now()
    sent: list[dict] = []
    retry: list[dict] = []
    failed: list[dict] = []
    reachable: set[int] = set()
    flags: list[tuple[int | None, str | None]] = []
    results: list[str] = []
    for item, outcome in done:
        row = current.get(item.id)
        if row is None or row.state != Outbox.SENDING or row.lease_owner != worker:
            logger.warning("outbox %s: lease lost before the outcome was recorded", item.id)
            results.append("lost")
            continue
        if outcome.ok:
            # a status callback may have overtaken this commit: never move backwards
            status = row.provider_status
            if RANK.get(outcome.provider_status or "", -1) > RANK.get(status or "", -1):
                status = outcome.provider_status
            sent.append(
                {
                    "b_id": item.id,
                    "b_state": STATE.get(status, Outbox.SENT) if status else Outbox.SENT,
                    "b_pid": outcome.provider_id,
                    "b_pstatus": status,
                    "b_now": now,
                }
            )
            if item.contact_id is not None:  # the provider took it: reachable after all
                reachable.add(item.contact_id)
            results.append("sent")
            continue
        err = outcome.error
        assert err is not None
        params = {
            "b_id": item.id,
            "b_code": err.code[:32],
            "b_error": (err.message or err.code)[:200],
            "b_now": now,
        }
        if err.transient and item.attempts < MAX_ATTEMPTS:
            params["b_next"] = now + backoff(item.attempts)
            retry.append(params)
            results.append("retry")
        else:
            failed.append(params)
            if not err.transient:
                flags.append((item.contact_id, err.contact_flag))
            results.append("failed")
    for statement, params in ((_SET_SENT, sent), (_SET_RETRY, retry), (_SET_FAILED, failed)):
        if params:
            session.execute(statement, params)
    if reachable:
        session.execute(
            update(Contact)
            .where(_among(session, Contact.id, sorted(reachable)), Contact.unreachable.is_(True))
            .values(unreachable=False)
            .execution_options(synchronize_session=False)
        )
    for contact_id, flag in flags:
        _flag_contact(session, contact_id, flag)
    return results


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
        results = _record_many(s, worker, done)
    # one line per batch; a line per row only for what did not go (no numbers, no bodies)
    for (item, outcome), result in zip(done, results, strict=True):
        if result != "sent":
            logger.info(
                "outbox %s %s via %s: %s%s",
                item.id,
                item.kind,
                item.channel,
                result,
                f" ({outcome.error.code})" if outcome.error else "",
            )
    logger.info(
        "outbox: %d sent via %s (%d to retry, %d failed, %d lost)",
        results.count("sent"),
        done[0][0].channel,
        results.count("retry"),
        results.count("failed"),
        results.count("lost"),
    )


def _send_broadcast(db: Database, sender: ViberSender, items: list[Claimed], worker: str) -> None:
    first = items[0]
    result = sender.broadcast([i.to for i in items], first.body, first.extra)
    done = []
    for item in items:
        if result.error is not None:
            outcome = SendOutcome(error=result.error)
        elif item.to in result.failed:
            outcome = SendOutcome(error=result.failed[item.to])
        else:
            outcome = SendOutcome(provider_id=result.provider_id, provider_status="sent")
        done.append((item, outcome))
    with db.session() as s:
        _record_many(s, worker, done)
    logger.info(
        "outbox: viber broadcast of %d (%d failed)%s",
        len(items),
        len(result.failed),
        f" error {result.error.code}" if result.error else "",
    )


def _broadcast_key(item: Claimed) -> tuple:
    return (item.body, repr(sorted((item.extra or {}).items())))


def dispatch_due(
    db: Database, config: Config, worker_name: str, limit: int = 100, housekeeping: bool = True
) -> int:
    """Send what is due, at most ``limit`` rows per channel; returns rows handled.

    Replies, alerts and agent messages (priority 0) go before campaign
    traffic (priority 5). Viber campaign rows with the same text are sent with
    ``broadcast_message`` in batches of at most 300.

    ``housekeeping``: also requeue rows abandoned past their lease and mark
    rows of a channel without credentials unsent — a transaction each. The
    worker's dispatch loop, which passes once per reply under load, asks for
    it about once a second, not on every pass.
    """
    if housekeeping:
        recover_abandoned(db)
    handled = 0
    for channel in CHANNELS:
        sender = sender_for(config, channel)
        if sender is None:
            if housekeeping:
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


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _send_pool() -> ThreadPoolExecutor:
    """The process's send threads, started once (not per batch)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="send")
        return _pool


def _send_in_parallel(db: Database, sender, items: list[Claimed], worker: str) -> None:
    """Provider calls are network-bound: up to SEND_THREADS at once, but one
    recipient's messages in order, one after the other, on one thread. The
    outcomes are recorded together once the batch has been sent."""
    by_recipient: dict[tuple, list[Claimed]] = {}
    for item in sorted(items, key=lambda i: i.id):
        by_recipient.setdefault((item.channel, item.to), []).append(item)
    lanes = list(by_recipient.values())
    done: list[tuple[Claimed, SendOutcome]] = []

    def run(share: list[list[Claimed]]) -> list[tuple[Claimed, SendOutcome]]:
        return [(item, _call(sender, item)) for lane in share for item in lane]

    try:
        if len(lanes) <= 1 or SEND_THREADS <= 1:
            done += run(lanes)
        else:
            # each thread takes whole lanes (so a recipient's rows keep their order)
            shares = [lanes[k::SEND_THREADS] for k in range(min(SEND_THREADS, len(lanes)))]
            futures = [_send_pool().submit(run, share) for share in shares]
            for future in futures:
                done += future.result()
    finally:
        _record_all(db, worker, done)
