"""The disk spool: what the web process received while the database could
not be written.

Each record is one file in ``LANPYA_SPOOL_DIR``, encrypted with the data key
(it holds a phone number and a message body), written to a temporary name,
fsynced and renamed, so a file either exists complete or not at all. A
replayer (the worker loop, and the web process at start and after the
database answers again) applies each file in arrival order with the same
idempotent functions the webhooks use, commits, and only then deletes the
file, so a crash between the two leads to a second, harmless apply.

Record kinds (``op``):

- ``inbound``: keyword arguments of :func:`lanpya.ingest.receive`;
- ``twilio_status``: ``sid``, ``status``, ``error_code``;
- ``viber_status``: ``token``, ``event``, ``user_id``;
- ``viber_subscription``: ``user_id``, ``subscribed``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from lanpya import clock, crypto
from lanpya.config import Config, ConfigError
from lanpya.db import Database

logger = logging.getLogger(__name__)

SUFFIX = ".spool"
#: what "the database cannot be written" looks like
DATABASE_DOWN = (DBAPIError, PoolTimeout)


class SpoolError(RuntimeError):
    """Neither the database nor the spool could take the record."""


def check_writable(directory: Path) -> None:
    """Refuse to start when the spool directory cannot be written (fail closed)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".probe-{os.getpid()}-{uuid.uuid4().hex}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"LANPYA_SPOOL_DIR is not writable ({directory}): {exc.strerror or exc}"
        ) from exc


def write(directory: Path, op: str, payload: dict) -> Path:
    """Spool one record durably; returns its path."""
    record = {"op": op, "payload": payload, "at": clock.now().isoformat()}
    token = crypto.keyring().encrypt(json.dumps(record, ensure_ascii=False))
    name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{SUFFIX}"
    tmp = directory / f".tmp-{name}"
    final = directory / name
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(token)
            while view:  # os.write may write less than asked (disk nearly full)
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, final)
    except OSError:
        tmp.unlink(missing_ok=True)  # never leave half a record behind
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return final


def pending(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))
    except FileNotFoundError:
        return []


# --- applying a record --------------------------------------------------------------
def _apply_inbound(session: Session, payload: dict, at: str | None) -> Any:
    from lanpya import ingest
    from lanpya.models import Inbound

    got = ingest.receive(session, **payload)
    if got.created and at:
        # keep the time it really arrived, not the time the database came back
        session.execute(
            update(Inbound).where(Inbound.id == got.inbound_id).values(received_at=_parse(at))
        )
    return got


def _parse(at: str):
    from datetime import datetime

    return datetime.fromisoformat(at)


def _apply_twilio_status(session: Session, payload: dict, at: str | None) -> Any:
    from lanpya.channels.status import apply_twilio_status

    return apply_twilio_status(
        session, payload["sid"], payload["status"], payload.get("error_code"), payload.get("ref")
    )


def _apply_viber_status(session: Session, payload: dict, at: str | None) -> Any:
    from lanpya.channels.status import apply_viber_status

    return apply_viber_status(session, payload["token"], payload["event"], payload.get("user_id"))


def _apply_viber_subscription(session: Session, payload: dict, at: str | None) -> Any:
    from lanpya.channels.status import viber_subscription

    return viber_subscription(session, payload["user_id"], bool(payload["subscribed"]))


APPLY: dict[str, Callable[[Session, dict, str | None], Any]] = {
    "inbound": _apply_inbound,
    "twilio_status": _apply_twilio_status,
    "viber_status": _apply_viber_status,
    "viber_subscription": _apply_viber_subscription,
}


def apply(session: Session, op: str, payload: dict, at: str | None = None) -> Any:
    return APPLY[op](session, payload, at)


# --- the one entry point for webhooks ------------------------------------------------
#: a webhook waits at most this long for the database, then spools (Twilio gives
#: up on a webhook after 15 s, Viber after 5 s; a slow commit must not lose a message)
PERSIST_TIMEOUT_S = 4.0
_persist_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="persist")


def _apply_committed(db: Database, op: str, payload: dict) -> Any:
    if op == "inbound":
        from lanpya import ingest

        return ingest.store(db, **payload)  # one statement on PostgreSQL
    with db.session() as session:
        return apply(session, op, payload)


def _spool(directory: Path, op: str, payload: dict) -> None:
    try:
        write(directory, op, payload)
    except OSError as disk:
        logger.error("spool write failed: %s", disk.strerror or type(disk).__name__)
        raise SpoolError("database and spool both unavailable") from disk


def persist(
    db: Database, directory: Path, op: str, payload: dict, timeout: float | None = None
) -> tuple[Any, bool]:
    """Apply a record in its own transaction; if the database cannot be
    written — an error, or no commit within ``timeout`` seconds (a long lock,
    a stalled disk) — spool it. Returns (result, spooled).

    A spooled record whose slow transaction commits after all is harmless:
    every record kind is idempotent, so the replay finds it already there.
    Raises :class:`SpoolError` only when the disk fails too (the webhook then
    answers 503 and the provider retries)."""
    timeout = PERSIST_TIMEOUT_S if timeout is None else timeout
    future = _persist_pool.submit(_apply_committed, db, op, payload)
    try:
        result = future.result(timeout=timeout)
    except FutureTimeout:
        logger.warning("database slow (no commit in %.1f s): spooling a %s record", timeout, op)
        _spool(directory, op, payload)
        return None, True
    except DATABASE_DOWN as exc:
        logger.warning("database unavailable (%s): spooling a %s record", type(exc).__name__, op)
        _spool(directory, op, payload)
        return None, True
    if pending(directory):
        replay_soon(db, directory)
    return result, False


# --- replay ------------------------------------------------------------------------------
def replay_dir(db: Database, directory: Path, limit: int | None = None) -> int:
    """Apply spooled files in order; returns how many were applied. Stops at
    the first database error (the rest wait for the next round)."""
    done = 0
    for path in pending(directory):
        if limit is not None and done >= limit:
            break
        try:
            fh = open(path, "rb")  # noqa: SIM115 - held open for the lock
        except FileNotFoundError:
            continue  # another replayer took it
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if not path.exists():
                continue
            try:
                record = json.loads(crypto.keyring().decrypt(fh.read()))
            except Exception as exc:  # noqa: BLE001 - a damaged file must not block the rest
                bad = path.with_name("." + path.name + ".bad")
                os.rename(path, bad)
                logger.error("spool: unreadable file set aside as %s (%s)", bad.name, type(exc).__name__)
                continue
            try:
                with db.session() as session:
                    apply(session, record["op"], record["payload"], record.get("at"))
            except DATABASE_DOWN as exc:
                logger.warning("spool replay paused: database unavailable (%s)", type(exc).__name__)
                break
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            done += 1
    if done:
        logger.info("spool: replayed %d record(s)", done)
    return done


def replay(db: Database, config: Config) -> int:
    """Called by the worker loop and at web start."""
    return replay_dir(db, config.spool_dir)


_replaying = threading.Lock()


def replay_soon(db: Database, directory: Path) -> None:
    """The database answers again: replay the spool in a background thread
    of this process (at most one at a time), so the webhook stays fast."""
    if not _replaying.acquire(blocking=False):
        return

    def run() -> None:
        try:
            replay_dir(db, directory)
        except Exception:  # noqa: BLE001 - the worker loop will try again
            logger.exception("spool replay failed")
        finally:
            _replaying.release()

    threading.Thread(target=run, name="spool-replay", daemon=True).start()
