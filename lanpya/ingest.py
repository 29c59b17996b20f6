"""The one way a received message enters the system.

Provider webhooks (through :func:`store`), the disk spool's replay and
``lanpya say`` all end in the same effects: find or create the contact by
keyed hash, normalise the text, store one :class:`~lanpya.models.Inbound`
row keyed by (channel, provider id). A repeat delivery finds the existing row.

This is what a provider waits for before its acknowledgement, so it is a few
prepared statements rather than an ORM unit of work (measured: 7.9 ms → 1.3 ms
median a message on PostgreSQL, docs/benchmarks.md "Webhook acknowledgement").
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from sqlalchemy import String, bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lanpya import clock, wakeup
from lanpya.crypto import lookup_hash
from lanpya.models import Contact, Inbound
from lanpya.phone import country_of, timezone_of
from lanpya.text import normalise_text

logger = logging.getLogger(__name__)


@dataclass
class Received:
    inbound_id: int
    contact_id: int
    created: bool  # False: a repeat delivery, already stored


def get_or_create_contact(session: Session, channel: str, address: str) -> Contact:
    """The contact for (channel, address); ``address`` is E.164 or a Viber id."""
    h = lookup_hash(address)
    contact = session.scalar(select(Contact).where(Contact.channel == channel, Contact.address_hash == h))
    if contact is not None:
        return contact
    contact = Contact(channel=channel, address_hash=h, address=address)
    if channel == Contact.SMS:
        contact.country = country_of(address)
        contact.timezone = timezone_of(address)
    try:
        with session.begin_nested():
            session.add(contact)
            session.flush()
    except IntegrityError:
        # another process created it between our select and insert
        contact = session.scalar(select(Contact).where(Contact.channel == channel, Contact.address_hash == h))
        assert contact is not None
    return contact


def _insert(dialect: str):
    """The dialect's INSERT (both PostgreSQL and SQLite have ON CONFLICT and RETURNING)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


#: what the INSERT of an inbound row sets (the rest are NULL)
_INBOUND_COLUMNS = (
    "channel",
    "provider_id",
    "contact_id",
    "body",
    "media",
    "kind",
    "encoding",
    "received_at",
    "next_attempt_at",
    "state",
    "attempts",
    "held_reply_sent",
)


@functools.cache
def _statements(dialect: str):
    """Built once per dialect with bound parameters, so each compiles once.

    The inbound INSERT is SQL text (typed parameters: the body is still
    encrypted on the way in) because SQLAlchemy 2.0 does not cache the
    dialect ``insert()`` that ON CONFLICT needs: it compiled on every message,
    which cost more than the statement's round trip."""
    contact, inbound = Contact.__table__, Inbound.__table__
    touch = (
        update(contact)
        .where(contact.c.channel == bindparam("k_channel"), contact.c.address_hash == bindparam("k_hash"))
        .values(
            last_seen_at=bindparam("last_seen_at"),
            encoding=func.coalesce(bindparam("encoding", type_=String), contact.c.encoding),
        )
        .returning(contact.c.id)
    )
    names = ", ".join(_INBOUND_COLUMNS)
    params = ", ".join(":" + name for name in _INBOUND_COLUMNS)
    # names from _INBOUND_COLUMNS, values bound
    sql = f"INSERT INTO inbound ({names}) VALUES ({params}) "  # noqa: S608
    sql += "ON CONFLICT (channel, provider_id) DO NOTHING RETURNING id"
    if dialect == "postgresql":
        # the NOTIFY rides on the INSERT: sent only if a row was stored, and
        # delivered by PostgreSQL when this transaction commits
        sql = f"WITH stored AS ({sql}) SELECT id, pg_notify('{wakeup.INBOUND}', '') FROM stored"  # noqa: S608
    store = text(sql).bindparams(*(bindparam(n, type_=inbound.c[n].type) for n in _INBOUND_COLUMNS))
    stored_ids = select(inbound.c.id, inbound.c.contact_id).where(
        inbound.c.channel == bindparam("channel"), inbound.c.provider_id == bindparam("provider_id")
    )
    return touch, store, stored_ids


def _seen(session: Session, channel: str, address: str, now, encoding: str | None) -> int:
    """The contact's id, marked seen now; created if new. One statement for a
    known contact (an UPDATE … RETURNING), two for a new one."""
    conn = session.connection()
    touch, _, _ = _statements(conn.dialect.name)
    h = lookup_hash(address)
    contact_id = conn.execute(
        touch, {"k_channel": channel, "k_hash": h, "last_seen_at": now, "encoding": encoding}
    ).scalar()
    if contact_id is not None:
        return contact_id
    seen = {"last_seen_at": now}
    if encoding is not None:
        seen["encoding"] = encoding
    values = {"channel": channel, "address_hash": h, "address": address, **seen}
    if channel == Contact.SMS:
        values["country"] = country_of(address)
        values["timezone"] = timezone_of(address)
    table = Contact.__table__
    # ON CONFLICT: another process created this contact since the UPDATE above
    stmt = (
        _insert(conn.dialect.name)(table)
        .values(**values)
        .on_conflict_do_update(index_elements=[table.c.channel, table.c.address_hash], set_=seen)
        .returning(table.c.id)
    )
    return conn.execute(stmt).scalar_one()


def _message(text: str | None, kind: str, media: dict | None) -> tuple[dict, str | None]:
    """The inbound row's own values, and what it says about the contact's encoding."""
    norm = normalise_text(text)
    now = clock.now()
    if norm.encoding == "zawgyi":
        encoding = "zawgyi"
    elif norm.zawgyi_probability and norm.zawgyi_probability < 0.05:
        encoding = "unicode"
    else:
        encoding = None
    row = {
        "body": norm.text,
        "media": media,
        "kind": kind,
        "encoding": norm.encoding if norm.zawgyi_probability > 0 else None,
        "received_at": now,
        "next_attempt_at": now,
        "state": Inbound.QUEUED,
        "attempts": 0,
        "held_reply_sent": False,
    }
    return row, encoding


def receive(
    session: Session,
    *,
    channel: str,
    provider_id: str,
    address: str,
    text: str | None,
    kind: str = "text",
    media: dict | None = None,
) -> Received:
    """Store one inbound message (idempotent on channel + provider_id).

    The caller commits. Raises only on database errors (the caller spools).
    (:func:`store` is the webhooks' one-statement way on PostgreSQL.)

    A few statements, not an ORM unit of work: an UPDATE of a known contact
    (an INSERT for a new one), then one INSERT … ON CONFLICT DO NOTHING that
    on PostgreSQL also sends the wake-up NOTIFY. A repeat delivery inserts
    nothing and reads the stored row's ids.
    """
    row, encoding = _message(text, kind, media)
    contact_id = _seen(session, channel, address, row["received_at"], encoding)
    conn = session.connection()
    _, insert_inbound, _ = _statements(conn.dialect.name)
    row.update(channel=channel, provider_id=provider_id, contact_id=contact_id)
    inbound_id = conn.execute(insert_inbound, row).scalar()
    if inbound_id is not None:
        return Received(inbound_id, contact_id, True)
    return _already_stored(conn, channel, provider_id)


def _already_stored(conn, channel: str, provider_id: str) -> Received:
    """A repeat delivery: the ids of the row stored the first time."""
    _, _, stored_ids = _statements(conn.dialect.name)
    existing = conn.execute(stored_ids, {"channel": channel, "provider_id": provider_id}).one()
    return Received(existing.id, existing.contact_id, False)


#: the SQL types of the inbound columns the one statement casts its parameters to
_PG_TYPES = {
    "body": "BYTEA",
    "media": "BYTEA",
    "kind": "VARCHAR",
    "encoding": "VARCHAR",
    "received_at": "TIMESTAMP",
    "next_attempt_at": "TIMESTAMP",
    "state": "VARCHAR",
    "attempts": "INTEGER",
    "held_reply_sent": "BOOLEAN",
}


@functools.cache
def _one_statement():
    """PostgreSQL: a known contact's message stored in one statement, run in
    autocommit, so it is its own transaction: touch the contact, insert the
    row unless it is a repeat, NOTIFY the workers if it was stored."""
    contact, inbound = Contact.__table__, Inbound.__table__
    columns = [n for n in _INBOUND_COLUMNS if n not in ("channel", "provider_id", "contact_id")]
    sql = f"""
WITH seen AS (
    UPDATE contact SET last_seen_at = :received_at, encoding = COALESCE(:contact_encoding, encoding)
    WHERE channel = :channel AND address_hash = :address_hash
    RETURNING id
), stored AS (
    INSERT INTO inbound (channel, provider_id, contact_id, {", ".join(columns)})
    SELECT :channel, :provider_id, seen.id, {", ".join(f"CAST(:{n} AS {_PG_TYPES[n]})" for n in columns)}
    FROM seen
    ON CONFLICT (channel, provider_id) DO NOTHING
    RETURNING id
)
SELECT seen.id AS contact_id, stored.id AS inbound_id,
       CASE WHEN stored.id IS NOT NULL THEN pg_notify('{wakeup.INBOUND}', '') END AS woke
FROM seen LEFT JOIN stored ON true"""  # noqa: S608 - module constants only, values bound
    typed = [bindparam(n, type_=inbound.c[n].type) for n in columns]
    typed += [
        bindparam("address_hash", type_=contact.c.address_hash.type),
        bindparam("contact_encoding", type_=String),
    ]
    return text(sql).bindparams(*typed)


def store(
    db,
    *,
    channel: str,
    provider_id: str,
    address: str,
    text: str | None,
    kind: str = "text",
    media: dict | None = None,
) -> Received:
    """Store one inbound message and commit: the webhooks' way in.

    On PostgreSQL a known contact's message is one statement in autocommit —
    one round trip, its commit included — instead of BEGIN, the contact, the
    message and COMMIT: this is what the provider waits for before its
    acknowledgement. A new contact, and SQLite, take :func:`receive` in a
    transaction. Same effects either way (tests run both)."""
    if db.is_postgres:
        row, encoding = _message(text, kind, media)
        row.update(
            channel=channel,
            provider_id=provider_id,
            address_hash=lookup_hash(address),
            contact_encoding=encoding,
        )
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = conn.execute(_one_statement(), row).first()
            if got is not None:
                if got.inbound_id is not None:
                    return Received(got.inbound_id, got.contact_id, True)
                return _already_stored(conn, channel, provider_id)
    with db.session() as session:  # a new contact (or SQLite)
        return receive(
            session,
            channel=channel,
            provider_id=provider_id,
            address=address,
            text=text,
            kind=kind,
            media=media,
        )
