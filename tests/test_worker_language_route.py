"""POST /internal/contacts/<uuid>/language (the bot's language choice)."""

from __future__ import annotations

from lanpya.ingest import receive
from lanpya.models import Contact
from tests.conftest import TEST_KEYS

AUTH = {"Authorization": f"Bearer {TEST_KEYS['internal']}"}


def _contact(db) -> str:
    with db.session() as s:
        got = receive(s, channel="sms", provider_id="SM-lang-1", address="+959250000011", text="hi")
        return s.get(Contact, got.contact_id).uuid


def test_language_choice_is_stored_and_sticks(client, db):
    uuid = _contact(db)
    r = client.post(f"/internal/contacts/{uuid}/language", json={"language": "kac"}, headers=AUTH)
    assert r.status_code == 200 and r.get_json() == {"ok": True}
    with db.session() as s:
        c = s.query(Contact).filter_by(uuid=uuid).one()
        assert (c.language, c.language_chosen) == ("kac", True)


def test_language_route_refuses_bad_input_and_no_token(client, db):
    uuid = _contact(db)
    assert client.post(f"/internal/contacts/{uuid}/language", json={"language": "kac"}).status_code == 401
    bad = client.post(f"/internal/contacts/{uuid}/language", json={"language": "fr"}, headers=AUTH)
    assert bad.status_code == 400
    assert client.post(f"/internal/contacts/{uuid}/language", data="x", headers=AUTH).status_code == 400
    missing = client.post("/internal/contacts/" + "0" * 32 + "/language", json={"language": "my"}, headers=AUTH)
    assert missing.status_code == 404
    with db.session() as s:
        c = s.query(Contact).filter_by(uuid=uuid).one()
        assert c.language_chosen is False
