"""The campaigns JSON API and console pages: roles, create → preview →
schedule → fire → report, refusals with clear errors, CSV export."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select

from campaigns import engine
from lanpya.models import AuditLog, Campaign, Outbox
from lanpya.staff import add_staff, new_api_token
from tests.campaign_support import add_contacts

MY_TEXT = "အေဂျင်စီ လိုင်စင် စစ်ပါ။ ပိုက်ဆံ မပေးခင် မေးပါ။"


@pytest.fixture
def tokens(db):
    with db.session() as s:
        out = {}
        for email, role in (("camp@example.org", "campaigner"), ("camp2@example.org", "campaigner"),
                            ("agent@example.org", "agent")):
            staff = add_staff(s, email, role, password="a-long-test-password-1")
            out[role if email != "camp2@example.org" else "campaigner2"] = {
                "Authorization": f"Bearer {new_api_token(s, staff)}"}
    return out


def test_api_create_preview_schedule_fire_report(client, db, config, clock, tokens):
    clock.set(datetime(2026, 3, 2, 3, 0))
    add_contacts(db, 6, language="my", township="Lashio", state="Northern Shan")
    add_contacts(db, 2, start=10, language="en", township="Muse", state="Northern Shan")
    h = tokens["campaigner"]
    resp = client.post("/api/audiences/size", json={"filter": {"townships": ["Lashio"]}}, headers=h)
    assert resp.get_json()["size"] == 6
    resp = client.post("/api/campaigns", headers=h, json={
        "name": "Northern Shan fees", "audience": {"name": "N Shan", "filter": {"states": ["Northern Shan"]}},
        "schedule_kind": "once", "run_at": "2026-03-02T04:00:00Z",
        "messages": [{"language": "my", "body": MY_TEXT}]})
    assert resp.status_code == 201, resp.get_json()
    cid = resp.get_json()["id"]
    p = client.post(f"/api/campaigns/{cid}/preview", headers=h).get_json()
    assert p["recipients"] == 8 and p["by_language"] == {"my": 6, "en": 2}
    assert p["missing_content"] == {"0": ["en"]} or p["missing_content"] == {0: ["en"]}
    resp = client.post(f"/api/campaigns/{cid}/schedule", headers=h, json={})
    assert resp.status_code == 409 and "en" in resp.get_json()["error"]
    # the agent role may not touch campaigns; no token at all is 401
    assert client.post(f"/api/campaigns/{cid}/schedule", headers=tokens["agent"], json={}).status_code == 403
    assert client.get(f"/api/campaigns/{cid}/report").status_code == 401
    with db.session() as s:
        engine.set_message(s, s.get(Campaign, cid), language="en", body="Check the agency licence first.")
    resp = client.post(f"/api/campaigns/{cid}/schedule", headers=h, json={})
    assert resp.status_code == 200 and resp.get_json()["status"] == "scheduled"
    clock.set(datetime(2026, 3, 2, 4, 0, 1))
    [r] = engine.fire_due(db, config, cid)
    assert r.inserted == 8
    rep = client.get(f"/api/campaigns/{cid}/report", headers=h).get_json()
    assert rep["totals"]["unsent"] + rep["totals"]["queued"] == 8
    assert rep["by"]["township"]["Lashio"]["total"] == 6
    csv_resp = client.get(f"/api/campaigns/{cid}/report?format=csv", headers=h)
    assert csv_resp.mimetype == "text/csv" and "township,Muse" in csv_resp.get_data(as_text=True)
    resp = client.post(f"/api/campaigns/{cid}/pause", headers=h)
    assert resp.get_json() == {"id": cid, "status": "paused", "rows": 8}
    assert client.post(f"/api/campaigns/{cid}/pause", headers=h).status_code == 409
    with db.session() as s:
        assert s.scalar(select(func.count(Outbox.id)).where(Outbox.state == engine.PAUSED)) == 8
        actions = set(s.scalars(select(AuditLog.action)))
    assert {"campaign_created", "campaign_scheduled", "campaign_paused"} <= actions


def test_api_large_send_needs_a_second_campaigner(client, db, config, clock, tokens):
    config.approval_threshold = 2
    add_contacts(db, 3)
    h, h2 = tokens["campaigner"], tokens["campaigner2"]
    cid = client.post("/api/campaigns", headers=h, json={
        "name": "big", "audience": {"name": "all", "filter": {}}, "run_at": "2026-03-02T04:00",
        "messages": [{"language": "my", "body": MY_TEXT}]}).get_json()["id"]
    assert client.post(f"/api/campaigns/{cid}/preview", headers=h).get_json()["needs_approval"] is True
    assert client.post(f"/api/campaigns/{cid}/schedule", headers=h, json={}).get_json()["status"] == "awaiting_approval"
    resp = client.post(f"/api/campaigns/{cid}/approve", headers=h)
    assert resp.status_code == 409 and "second staff member" in resp.get_json()["error"]
    assert client.post(f"/api/campaigns/{cid}/approve", headers=h2).get_json()["status"] == "scheduled"


def test_api_refuses_bad_input_with_clear_errors(client, tokens):
    h = tokens["campaigner"]
    resp = client.post("/api/campaigns", headers=h, json={"name": "x", "audience": {"name": "a", "filter": {"phone": ["1"]}}})
    assert resp.status_code == 400 and "unknown filter field" in resp.get_json()["error"]
    resp = client.post("/api/campaigns", headers=h, json={"name": "x", "audience": {"name": "a", "filter": {}},
                                                          "schedule_kind": "cron", "cron": "61 * * * *"})
    assert resp.status_code == 400 and "cron" in resp.get_json()["error"]
    resp = client.post("/api/campaigns", headers=h, json={"name": "x", "audience": {"name": "a", "filter": {}},
                                                          "run_at": "tomorrow"})
    assert resp.status_code == 400 and "ISO 8601" in resp.get_json()["error"]
    assert client.post("/api/campaigns/999/preview", headers=h).status_code == 404
    seg = client.post("/api/text/segments", headers=h, json={"body": "a" * 161}).get_json()
    assert (seg["encoding"], seg["segments"]) == ("GSM-7", 2)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/audiences", {"name": [None], "filter": {}}),
        ("/api/campaigns", {"name": {"x": 1}, "audience_id": 1, "messages": []}),
        ("/api/campaigns", {"name": "n", "audience": {"name": [1], "filter": {}}, "messages": []}),
        ("/api/campaigns", {"name": "n", "audience_id": 1, "cron": 5, "messages": []}),
    ],
)
def test_api_refuses_non_text_fields_naming_them(client, db, tokens, path, body):
    """Found by the route fuzzer: a list where a name belongs was a 500."""
    resp = client.post(path, json=body, headers=tokens["campaigner"])
    assert resp.status_code == 400
    assert "must be text" in resp.get_json()["error"]
