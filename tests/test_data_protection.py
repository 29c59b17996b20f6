"""Encryption at rest, key rotation, retention purges and erasure."""

from __future__ import annotations

import sqlite3

from sqlalchemy import select, text

from lanpya import crypto
from lanpya.db import Database
from lanpya.ingest import receive
from lanpya.models import AuditLog, Case, CaseNote, Contact, Inbound, Outbox
from lanpya.outbox import enqueue
from lanpya.retention import count_under_old_keys, erase_contact, purge, rotate_keys
from tests.conftest import make_config

PHONE = "+959420123456"
NARRATIVE = "Naw Seng was taken to Yingjiang by a broker called Ko Aung"
BODY = "my sister Hkawn Nu went to China and they keep her locked"


def seed(db: Database) -> tuple[int, int]:
    with db.session() as s:
        got = receive(s, channel="sms", provider_id="SM1", address=PHONE, text=BODY)
        contact = s.get(Contact, got.contact_id)
        case = Case(contact_id=contact.id, narrative=NARRATIVE, answers={"relationship": "sister Hkawn Nu"})
        s.add(case)
        s.flush()
        s.add(CaseNote(case_id=case.id, body="called back, mother Daw Bawk confirmed"))
        enqueue(s, body="We have your report. A person will call you.", channel="sms", contact=contact)
        return contact.id, case.id


def dump(db: Database, config) -> bytes:
    """What an attacker with a database dump would see."""
    if db.is_sqlite:
        db.dispose()
        path = config.database_url.split("///", 1)[1]
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        data = open(path, "rb").read()
        try:
            data += open(path + "-wal", "rb").read()
        except FileNotFoundError:
            pass
        return data
    out = b""
    with db.engine.connect() as conn:
        for table in ("contact", "inbound", "outbox", "case", "case_note", "audit_log"):
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out += repr(tuple(row)).encode() + b"\n"
                out += b" ".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)
    return out


def test_database_dump_holds_no_plain_number_or_narrative(db, config):
    seed(db)
    data = dump(db, config)
    assert len(data) > 1000
    for secret in (PHONE, PHONE[1:], "420123456", "Naw Seng", "Hkawn Nu", "Daw Bawk", "keep her locked", "A person will call"):
        assert secret.encode() not in data, secret


def test_contact_found_by_keyed_hash_not_plain_number(db, config):
    contact_id, _ = seed(db)
    with db.session() as s:
        c = s.get(Contact, contact_id)
        assert c.address == PHONE
        assert c.address_hash == crypto.lookup_hash(PHONE) != PHONE
        # a different lookup key gives a different hash: a dump alone cannot be brute-forced
        other = crypto.Keyring([crypto.new_key()], crypto.new_lookup_key())
        assert other.lookup_hash(PHONE) != c.address_hash


def test_key_rotation_reencrypts_everything_under_the_new_key(tmp_path, db, config):
    contact_id, case_id = seed(db)
    old = config.data_keys[0]
    new = crypto.new_key()
    rotated = make_config(tmp_path, config.database_url, data_keys=[new, old])
    assert count_under_old_keys(db) > 0
    counts = rotate_keys(db)
    assert counts["case.narrative"] == 1 and counts["contact.address"] == 1
    assert count_under_old_keys(db) == 0
    # the old key can now be removed: everything still decrypts
    make_config(tmp_path, config.database_url, data_keys=[new], lookup_key=rotated.lookup_key)
    with db.session() as s:
        assert s.get(Case, case_id).narrative == NARRATIVE
        assert s.get(Contact, contact_id).address == PHONE
    make_config(tmp_path, config.database_url)  # restore the session's keys


def test_lookup_key_rotation_rehashes_contacts(tmp_path, db, config):
    contact_id, _ = seed(db)
    new_lookup = crypto.new_lookup_key()
    make_config(tmp_path, config.database_url, lookup_key=new_lookup)
    assert rotate_keys(db)["contact.address_hash"] == 1
    with db.session() as s:
        assert s.get(Contact, contact_id).address_hash == crypto.lookup_hash(PHONE)
        # the same person texting again is the same contact
        again = receive(s, channel="sms", provider_id="SM2", address=PHONE, text="hello again")
        assert again.contact_id == contact_id
    make_config(tmp_path, config.database_url)


def test_purge_dry_run_changes_nothing_and_purge_applies_retention(db, config, clock):
    contact_id, case_id = seed(db)
    with db.session() as s:
        s.execute(text("UPDATE inbound SET state = 'done'"))
        s.execute(text("UPDATE outbox SET state = 'delivered'"))
        case = s.get(Case, case_id)
        case.status, case.closed_at = Case.CLOSED, clock.now()
        s.add(AuditLog(action="case_viewed", object_type="case", object_id=case_id, at=clock.now()))
    clock.advance(days=config.retention_closed_case_days + 1)
    dry = purge(db, config, dry_run=True)
    assert dry.counts["inbound messages"] == 1
    assert dry.counts["closed cases anonymised"] == 1
    with db.session() as s:
        assert s.scalar(select(Inbound.id)) is not None
        assert s.get(Case, case_id).narrative == NARRATIVE
    done = purge(db, config)
    assert done.counts == dry.counts | {"rasa tracker events": 0}
    with db.session() as s:
        assert s.scalar(select(Inbound.id)) is None
        assert s.scalar(select(Outbox.id)) is None
        case = s.get(Case, case_id)
        assert case.anonymised and case.narrative is None and case.contact_id is None and case.answers is None
        assert s.scalar(select(CaseNote.id)) is None
        # the audit entry is younger than its retention period
        assert s.scalar(select(AuditLog.id)) is not None


def test_purge_keeps_unanswered_messages_and_open_cases(db, config, clock):
    _, case_id = seed(db)
    clock.advance(days=max(config.retention_message_days, config.retention_closed_case_days) + 5)
    purge(db, config)
    with db.session() as s:
        assert s.scalar(select(Inbound.body)) == BODY  # still queued: nothing received is lost
        assert s.get(Case, case_id).narrative == NARRATIVE


def test_erasure_removes_messages_identifiers_and_keeps_case_anonymised(db, config):
    contact_id, case_id = seed(db)
    with db.session() as s:
        s.execute(text("UPDATE outbox SET state = 'delivered'"))
    with db.session() as s:
        counts = erase_contact(s, s.get(Contact, contact_id), config)
    assert counts["inbound"] == 1 and counts["cases_anonymised"] == 1
    with db.session() as s:
        c = s.get(Contact, contact_id)
        assert c.address is None and c.address_hash is None and c.erased_at is not None
        assert s.scalar(select(Inbound.id)) is None
        case = s.get(Case, case_id)
        assert case.contact_id is None and case.narrative is None and case.anonymised
        assert s.scalar(select(AuditLog).where(AuditLog.action == "contact_erased")) is not None
    assert PHONE.encode() not in dump(db, config)


def test_erasure_waits_for_the_confirmation_to_be_sent_before_wiping_the_address(db, config):
    contact_id, _ = seed(db)
    with db.session() as s:
        s.execute(text("UPDATE outbox SET state = 'delivered'"))
        contact = s.get(Contact, contact_id)
        enqueue(s, body="Your data is deleted.", channel="sms", contact=contact)
        erase_contact(s, contact, config)
    with db.session() as s:
        # the confirmation still has to go out: the address is kept until then
        assert s.get(Contact, contact_id).address == PHONE
    purge(db, config)
    with db.session() as s:
        assert s.get(Contact, contact_id).address == PHONE
    with db.session() as s:
        s.execute(text("UPDATE outbox SET state = 'delivered'"))
    purge(db, config)
    with db.session() as s:
        assert s.get(Contact, contact_id).address is None


def test_delete_confirmed_through_the_internal_api_erases_the_contact(app, db, config):
    contact_id, case_id = seed(db)
    with db.session() as s:
        uuid = s.get(Contact, contact_id).uuid
        s.execute(text("UPDATE outbox SET state = 'delivered'"))
    client = app.test_client()
    auth = {"Authorization": f"Bearer {config.internal_token}"}
    assert client.post(f"/internal/contacts/{uuid}/erase", json={"confirm": True}).status_code == 401
    assert client.post(f"/internal/contacts/{uuid}/erase", json={}, headers=auth).status_code == 400
    assert client.post(f"/internal/contacts/{uuid}/erase", json={"confirm": True}, headers=auth).status_code == 200
    with db.session() as s:
        assert s.get(Contact, contact_id).erased_at is not None
        assert s.get(Case, case_id).anonymised
        assert s.scalar(select(Inbound.id)) is None
    # erased: the contact is gone for the internal API too
    assert client.post(f"/internal/contacts/{uuid}/erase", json={"confirm": True}, headers=auth).status_code == 404


def test_the_message_in_hand_survives_erasure_emptied_and_goes_at_the_purge(db, config):
    contact_id, _ = seed(db)
    with db.session() as s:
        s.execute(text("UPDATE inbound SET state = 'processing'"))
        s.execute(text("UPDATE outbox SET state = 'delivered'"))
    with db.session() as s:
        erase_contact(s, s.get(Contact, contact_id), config)
    with db.session() as s:
        row = s.scalar(select(Inbound))
        assert row is not None and row.body is None
        s.execute(text("UPDATE inbound SET state = 'done'"))
        # the worker's reply to the DELETE confirmation, linked to the message in hand
        enqueue(s, body="Deleted.", channel="sms", contact=s.get(Contact, contact_id), inbound_id=row.id)
    with db.session() as s:
        assert s.get(Contact, contact_id).address == PHONE  # the reply still has to go
        s.execute(text("UPDATE outbox SET state = 'delivered'"))
    purge(db, config)
    with db.session() as s:
        assert s.scalar(select(Inbound.id)) is None
        assert s.scalar(select(Outbox.id)) is None
        assert s.get(Contact, contact_id).address is None


def test_staff_erase_on_request_from_the_command_line(db, config, monkeypatch):
    from click.testing import CliRunner
    from werkzeug.security import generate_password_hash

    from lanpya import cli
    from lanpya.models import Staff

    contact_id, _ = seed(db)
    with db.session() as s:
        s.execute(text("UPDATE outbox SET state = 'delivered'"))
        s.add(Staff(email="sup@example.org", role=Staff.SUPERVISOR, password_hash=generate_password_hash("x" * 12)))
    monkeypatch.setattr(cli, "load_config", lambda *a, **k: config)
    runner = CliRunner()
    out = runner.invoke(cli.cli, ["contact", "erase", "--phone", "09 420 123 456", "--by", "nobody@example.org", "--yes"])
    assert out.exit_code != 0
    out = runner.invoke(cli.cli, ["contact", "erase", "--phone", "09 420 123 456", "--by", "sup@example.org", "--yes"])
    assert out.exit_code == 0, out.output
    with db.session() as s:
        assert s.get(Contact, contact_id).address is None
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "contact_erased"))
        assert entry.staff_id is not None
