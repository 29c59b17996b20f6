"""People join audiences: CSV import with consent (row-by-row rejections,
nothing half-imports), the bot's subscribe route, and the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns import contacts
from campaigns.engine import CampaignError
from lanpya.crypto import lookup_hash
from lanpya.models import Contact, Outbox
from tests.campaign_support import add_contacts, number
from tests.conftest import TEST_KEYS
from tests.support import ROOT

GOOD = "\n".join([
    "phone,consent,language,state,township,roles,joined_at",
    "09250000001,yes,my,Kachin,myitkyina,planning,2026-02-01T00:00",
    "+66 81 234 5678,yes,shn,,Lashio,family;returnee,",
    "959250000003,Y,kac,,Bhamo,,",
])


def _count(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count(Contact.id))) or 0


def test_import_with_consent_sets_audience_fields(db, clock):
    rep = contacts.import_csv(db, GOOD)
    assert rep.committed and rep.imported == 3 and rep.rejected == []
    with db.session() as s:
        c = s.scalar(select(Contact).where(Contact.address_hash == lookup_hash("+959250000001")))
        assert (c.language, c.state, c.township, c.roles, c.subscribed) == ("my", "Kachin", "Myitkyina", ["planning"], True)
        assert c.joined_at.isoformat() == "2026-02-01T00:00:00"
        th = s.scalar(select(Contact).where(Contact.address_hash == lookup_hash("+66812345678")))
        assert (th.country, th.timezone, th.state, th.roles) == ("TH", "Asia/Bangkok", "Northern Shan", ["family", "returnee"])
        assert th.joined_at == clock.now()


def test_bad_rows_are_reported_line_by_line_and_nothing_is_imported(db):
    data = "\n".join([
        "phone,consent,language",
        "09250000001,yes,my",  # line 2: good
        "09250000002,no,my",  # 3: no consent
        "12345,yes,my",  # 4: bad number
        "+959250000001,yes,en",  # 5: duplicate of line 2 in another spelling
        "09250000005,maybe,my",  # 6: unclear consent
        "09250000006,yes,fr",  # 7: unknown language
    ])
    rep = contacts.import_csv(db, data)
    assert not rep.committed
    assert rep.rejected == [(3, "no consent"), (4, "not a valid phone number"), (5, "duplicate of an earlier row"),
                            (6, "consent must be yes or no"), (7, "language must be one of en, my, kac, shn")]
    assert _count(db) == 0
    assert not any("0925" in line for line in rep.lines())  # rejections never echo the number
    rep = contacts.import_csv(db, data, accept_valid=True)
    assert rep.committed and rep.imported == 1 and _count(db) == 1


def test_import_never_resubscribes_someone_who_opted_out(db):
    [cid] = add_contacts(db, 1, subscribed=False)
    with db.session() as s:
        s.get(Contact, cid).opted_out = True
    rep = contacts.import_csv(db, f"phone,consent\n{number('MM', 0)},yes\n")
    assert rep.rejected == [(2, "this contact opted out; only they can re-join")] and not rep.committed
    with db.session() as s:
        assert s.get(Contact, cid).subscribed is False


def test_import_needs_phone_and_consent_columns(db):
    with pytest.raises(CampaignError, match="consent"):
        contacts.import_csv(db, "phone,language\n09250000001,my\n")


def test_subscribe_route_joins_and_records_township_and_roles(client, db, config, clock):
    [cid] = add_contacts(db, 1, subscribed=False, township=None, state=None)
    with db.session() as s:
        uuid = s.get(Contact, cid).uuid
    auth = {"Authorization": f"Bearer {config.internal_token}"}
    resp = client.post(f"/internal/contacts/{uuid}/subscribe", json={"township": "muse", "roles": ["planning"]},
                       headers=auth)
    assert resp.status_code == 200 and resp.get_json() == {"ok": True, "opted_out": False}
    with db.session() as s:
        c = s.get(Contact, cid)
        assert (c.subscribed, c.township, c.state, c.roles, c.joined_at) == (
            True, "Muse", "Northern Shan", ["planning"], clock.now())
    assert client.post(f"/internal/contacts/{uuid}/subscribe", json={"state": "Mandalay"},
                       headers=auth).status_code == 400
    assert client.post(f"/internal/contacts/{uuid}/subscribe", json={}).status_code == 401
    assert client.post("/internal/contacts/nope/subscribe", json={}, headers=auth).status_code == 404


def _env(config) -> dict:
    import os

    env = dict(os.environ)
    env.update(LANPYA_ENV="test", DATABASE_URL=config.database_url, LANPYA_DATA_KEY=TEST_KEYS["data"],
               LANPYA_LOOKUP_KEY=TEST_KEYS["lookup"], LANPYA_INTERNAL_TOKEN=TEST_KEYS["internal"],
               LANPYA_SECRET_KEY=TEST_KEYS["secret"], LANPYA_VAR_DIR=str(config.var_dir), TWILIO_ACCOUNT_SID="",
               TWILIO_AUTH_TOKEN="", VIBER_AUTH_TOKEN="", LOG_LEVEL="WARNING")
    return env


def _lanpya(config, *args) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "lanpya"), *args], cwd=ROOT, env=_env(config),
                          capture_output=True, text=True, timeout=60)


def test_cli_import_audience_create_preview_schedule_report(tmp_path, config, db):
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_text(GOOD + "\n09250000009,no,my\n")
    out = _lanpya(config, "campaign", "import", str(csv_path))
    assert out.returncode == 1 and "line 5: no consent" in out.stdout and "NOT imported" in out.stdout
    out = _lanpya(config, "campaign", "import", "--accept-valid", str(csv_path))
    assert out.returncode == 0, out.stderr
    out = _lanpya(config, "campaign", "audience", "Kachin and Shan", "--json")
    aud = json.loads(out.stdout)
    assert aud["size"] == 3
    out = _lanpya(config, "campaign", "create", "--name", "fees", "--audience", str(aud["id"]),
                  "--run-at", "2026-03-02T03:00", "--text", "my=အေဂျင်စီ ကြေး မပေးခင် စစ်ပါ", "--json")
    cid = json.loads(out.stdout)["id"]
    out = _lanpya(config, "campaign", "schedule", str(cid))
    assert out.returncode == 1 and "missing" in out.stderr and "kac" in out.stderr and "shn" in out.stderr
    out = _lanpya(config, "campaign", "preview", str(cid), "--json")
    p = json.loads(out.stdout)
    assert p["recipients"] == 3 and p["by_language"] == {"my": 1, "shn": 1, "kac": 1}
    assert p["texts"][0]["encoding"] == "UCS-2"
    with db.session() as s:
        assert s.scalar(select(func.count(Outbox.id))) == 0
    out = _lanpya(config, "campaign", "report", str(cid), "--csv")
    assert out.returncode == 0 and out.stdout.startswith("campaign_id,dimension,value")
