"""``lanpya channels``: status, requeue of unsent rows once credentials
exist, spool replay, Viber webhook registration (against the fake)."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from lanpya import spool
from lanpya.channels.cli import channels
from lanpya.channels.dispatch import dispatch_due
from lanpya.db import Database
from lanpya.ingest import get_or_create_contact
from lanpya.models import Inbound, Outbox
from lanpya.outbox import enqueue


def run(args, config, db):
    result = CliRunner().invoke(channels, args, obj={"config": config, "db": db}, catch_exceptions=False)
    return result


def test_unsent_rows_are_shown_then_sent_once_credentials_exist(config, provider_config, fake_twilio, clock):
    db = Database(config.database_url)
    with db.session() as s:
        c = get_or_create_contact(s, "sms", "+959791234567")
        enqueue(s, body="kept for later", channel="sms", contact=c)
    dispatch_due(db, config, "w")  # no credentials
    out = run(["status"], config, db).output
    assert "sms: NOT configured" in out and "unsent" in out
    assert "1 row(s) queued again" in run(["requeue-unsent"], provider_config, db).output
    assert "1 row(s) handled" in run(["send"], provider_config, db).output
    assert [m.body for m in fake_twilio.messages] == ["kept for later"]
    with db.session() as s:
        assert s.scalars(select(Outbox.state)).one() == Outbox.SENT
    db.dispose()


def test_replay_spool_command(config):
    db = Database(config.database_url)
    spool.write(config.spool_dir, "inbound", {"channel": "sms", "provider_id": "SMcli", "address": "+959791234567",
                                              "text": "from the spool", "kind": "text", "media": None})
    assert "replayed 1 record(s); 0 left" in run(["replay-spool"], config, db).output
    with db.session() as s:
        assert s.scalars(select(Inbound.provider_id)).one() == "SMcli"
    db.dispose()


def test_viber_webhook_registration(provider_config, fake_viber):
    db = Database(provider_config.database_url)
    result = run(["viber-webhook"], provider_config, db)
    assert result.exit_code == 0, result.output
    assert fake_viber.webhooks[0]["url"] == provider_config.public_url + "/viber"
    assert "conversation_started" in fake_viber.webhooks[0]["event_types"]
    db.dispose()
