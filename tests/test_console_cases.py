"""The case console and APIs: roles on every route, escaping, CSRF, the live
queue's order, replies through the outbox, closing, audit of every view; the
internal API the bot calls; the JSON API with tokens."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from lanpya import escalation
from lanpya.ingest import receive
from lanpya.models import AuditLog, Case, CaseNote, Contact, Outbox, Staff
from lanpya.staff import new_api_token
from tests.conftest import TEST_KEYS
from tests.test_console_auth import PASSWORD, csrf_from, login
from tests.test_escalation import roster

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'
INTERNAL = {"Authorization": f"Bearer {TEST_KEYS['internal']}"}


@pytest.fixture
def people(db):
    ids = roster(db)
    with db.session() as s:
        for sid in ids.values():
            st = s.get(Staff, sid)
            from werkzeug.security import generate_password_hash

            st.password_hash = generate_password_hash(PASSWORD)
    return ids


def report(db, config, text: str = "help", address: str = "+959791230009", severity: str = Case.URGENT,
           n: int = 1) -> int:
    with db.session() as s:
        receive(s, channel="sms", provider_id=f"SM-con-{address}-{n}", address=address, text=text)
    with db.session() as s:
        contact = s.scalar(select(Contact).order_by(Contact.id.desc()).limit(1))
        case, created = escalation.open_case(s, contact, severity=severity, category="trafficking", config=config)
        if created:
            escalation.alert_on_call(s, case, config)
        return case.id


def test_every_console_and_api_route_requires_a_case_role(app, people):
    rules = list(app.url_map.iter_rules())
    cases = [r for r in rules if r.rule.startswith(("/console/cases", "/api/cases"))]
    assert len(cases) >= 12
    for rule in cases:
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "lanpya_roles", None) == (Staff.AGENT, Staff.SUPERVISOR), rule.rule
    # and every console/API route of every area goes through login_required
    for rule in rules:
        if rule.rule.startswith(("/console", "/api/")):
            assert hasattr(app.view_functions[rule.endpoint], "lanpya_roles"), rule.rule


def test_campaign_staff_cannot_open_cases(app, db, config, people, clock):
    case_id = report(db, config)
    c = app.test_client()
    login(c, "camp@example.org")
    assert c.get(f"/console/cases/{case_id}").status_code == 403
    assert c.get("/console/cases").status_code == 403
    assert c.get("/console/cases.json", headers={"Accept": "application/json"}).status_code == 403
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "case_viewed")) == 0


def test_case_page_escapes_everything_and_is_audited(app, db, config, people, clock):
    case_id = report(db, config, text=SCRIPT)
    with db.session() as s:
        case = s.get(Case, case_id)
        escalation.record_answer(s, case, "what_happened", SCRIPT)
        escalation.add_note(s, case, people["a1"], SCRIPT)
    c = app.test_client()
    login(c, "a1@example.org")
    page = c.get(f"/console/cases/{case_id}").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") >= 3  # message, answer/narrative, note
    with db.session() as s:
        entry = s.scalar(select(AuditLog).where(AuditLog.action == "case_viewed"))
        assert (entry.staff_id, entry.object_id) == (people["a1"], case_id)


def test_queue_orders_by_severity_then_time_left(app, db, config, people, clock):
    normal = report(db, config, address="+959791230011", severity=Case.NORMAL)
    clock.advance(minutes=1)
    urgent_late = report(db, config, address="+959791230012", severity=Case.URGENT)
    clock.advance(minutes=1)
    emergency = report(db, config, address="+959791230013", severity=Case.EMERGENCY)
    urgent_early = report(db, config, address="+959791230014", severity=Case.URGENT)
    with db.session() as s:  # an earlier deadline for this one
        s.get(Case, urgent_early).deadline_at -= timedelta(minutes=5)
    acked = report(db, config, address="+959791230015", severity=Case.EMERGENCY)
    with db.session() as s:
        escalation.acknowledge(s, s.get(Case, acked), people["a1"])
    c = app.test_client()
    login(c, "a1@example.org")
    data = c.get("/console/cases.json", headers={"Accept": "application/json"}).json
    assert [r["id"] for r in data["cases"]] == [emergency, urgent_early, urgent_late, normal, acked]
    html = c.get("/console/cases").get_data(as_text=True)
    assert html.index(f"#{emergency}<") < html.index(f"#{normal}<")
    assert 'data-poll="/console/cases.json"' in html and "console.js" in html
    assert "On call now: a1@example.org (rank 1), a2@example.org (rank 2), sup@example.org (supervisor)" in html


def test_ack_reply_take_over_close_from_the_console(app, db, config, people, clock):
    case_id = report(db, config)
    c = app.test_client()
    login(c, "a1@example.org")
    page = c.get(f"/console/cases/{case_id}").get_data(as_text=True)
    token = csrf_from(page)
    # without the CSRF token nothing changes
    assert c.post(f"/console/cases/{case_id}/ack").status_code == 400
    with db.session() as s:
        assert s.get(Case, case_id).acknowledged_at is None
    assert c.post(f"/console/cases/{case_id}/ack", data={"csrf_token": token}).status_code == 303
    assert c.post(f"/console/cases/{case_id}/handoff", data={"csrf_token": token, "handoff": "take"}).status_code == 303
    r = c.post(f"/console/cases/{case_id}/reply", data={"csrf_token": token, "body": "Are you safe now?"})
    assert r.status_code == 303
    c.post(f"/console/cases/{case_id}/notes", data={"csrf_token": token, "body": "called the family"})
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.status, case.acknowledged_by, case.handoff) == (Case.IN_PROGRESS, people["a1"], True)
        out = s.scalar(select(Outbox).where(Outbox.kind == Outbox.AGENT))
        contact = s.get(Contact, case.contact_id)
        assert (out.body, out.channel, out.contact_id, out.case_id, out.staff_id) == (
            "Are you safe now?", "sms", contact.id, case_id, people["a1"])
        assert s.scalar(select(CaseNote.body)) == "called the family"
    # closing needs an outcome
    c.post(f"/console/cases/{case_id}/close", data={"csrf_token": token, "outcome": ""})
    with db.session() as s:
        assert s.get(Case, case_id).status == Case.IN_PROGRESS
    c.post(f"/console/cases/{case_id}/close", data={"csrf_token": token, "outcome": "referred",
                                                    "referral": "", "referral_other": "Local church group"})
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.status, case.outcome, case.referral, case.handoff) == (
            Case.CLOSED, "referred", "Local church group", False)
    # no reply after closing
    c.post(f"/console/cases/{case_id}/reply", data={"csrf_token": token, "body": "one more"})
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.kind == Outbox.AGENT)) == 1
        actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.object_type == "case"))]
    for action in ("case_acknowledged", "handoff_taken", "agent_reply", "note_added", "case_closed", "case_viewed"):
        assert action in actions


def test_failed_alert_is_shown(app, db, config, people, clock):
    case_id = report(db, config)
    with db.session() as s:
        row = s.scalar(select(Outbox).where(Outbox.kind == Outbox.ALERT))
        row.state, row.error_code, row.attempts = Outbox.QUEUED, "http:503", 3
    c = app.test_client()
    login(c, "sup@example.org")
    assert "alert failed" in c.get(f"/console/cases/{case_id}").get_data(as_text=True)
    assert c.get("/console/cases.json", headers={"Accept": "application/json"}).json["cases"][0]["alert_failed"]


# --- JSON API ---------------------------------------------------------------------
def test_api_with_token(app, db, config, people, clock):
    case_id = report(db, config)
    with db.session() as s:
        token = new_api_token(s, s.get(Staff, people["a2"]))
        camp_token = new_api_token(s, s.get(Staff, people["camp"]))
    h = {"Authorization": f"Bearer {token}"}
    c = app.test_client()
    assert c.get("/api/cases").status_code == 401
    assert c.get("/api/cases", headers={"Authorization": f"Bearer {camp_token}"}).status_code == 403
    listed = c.get("/api/cases?status=notified", headers=h).json["cases"]
    assert [x["id"] for x in listed] == [case_id]
    assert c.get("/api/cases?status=bogus", headers=h).status_code == 400
    one = c.get(f"/api/cases/{case_id}", headers=h).json
    assert one["severity"] == "urgent" and one["alerts"][0]["staff"] == "a1@example.org"
    assert c.post(f"/api/cases/{case_id}/ack", headers=h).json == {"ok": True, "acknowledged": True}
    assert c.post(f"/api/cases/{case_id}/ack", headers=h).json == {"ok": True, "acknowledged": False}
    assert c.post(f"/api/cases/{case_id}/notes", headers=h, json={"body": SCRIPT}).status_code == 201
    assert c.post(f"/api/cases/{case_id}/notes", headers=h, json={"nope": 1}).status_code == 400
    assert c.get("/api/cases/9999", headers=h).status_code == 404
    with db.session() as s:
        case = s.get(Case, case_id)
        assert (case.status, case.acknowledged_by) == (Case.ACKNOWLEDGED, people["a2"])
        via = s.scalar(select(AuditLog).where(AuditLog.action == "case_acknowledged"))
        assert via.detail["via"] == "api" and via.staff_id == people["a2"]


# --- internal API (Rasa's action server) ----------------------------------------------
def contact_uuid(db, address: str = "+959791230020") -> str:
    with db.session() as s:
        receive(s, channel="sms", provider_id=f"SM-int-{address}", address=address, text="my daughter is missing")
    with db.session() as s:
        return s.scalar(select(Contact.uuid).order_by(Contact.id.desc()).limit(1))


def test_internal_api_needs_the_token(client, db, people):
    uuid = contact_uuid(db)
    body = {"contact": uuid, "category": "trafficking", "severity": "urgent", "source": "bot"}
    assert client.post("/internal/cases", json=body).status_code == 401
    assert client.post("/internal/cases", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0


def test_internal_open_case_answers_and_handoff(client, db, people, clock):
    uuid = contact_uuid(db)
    body = {"contact": uuid, "category": "missing_person", "severity": "urgent", "source": "bot",
            "intent": "report_concern"}
    r = client.post("/internal/cases", json=body, headers=INTERNAL)
    assert r.status_code == 201 and r.json["created"] is True
    case_id = r.json["case_id"]
    again = client.post("/internal/cases", json=body, headers=INTERNAL)
    assert again.json == {"case_id": case_id, "created": False}
    assert client.post(f"/internal/cases/{case_id}/answers", json={"field": "relationship", "value": "daughter"},
                       headers=INTERNAL).json == {"ok": True}
    assert client.post(f"/internal/cases/{case_id}/answers", json={"field": "in_danger", "value": "yes"},
                       headers=INTERNAL).json == {"ok": True}
    assert client.post(f"/internal/cases/{case_id}/answers", json={"value": "x"}, headers=INTERNAL).status_code == 400
    assert client.post("/internal/cases/999/answers", json={"field": "a", "value": "b"},
                       headers=INTERNAL).status_code == 404
    with db.session() as s:
        case = s.get(Case, case_id)
        assert case.answers == {"relationship": "daughter", "in_danger": "yes"}
        assert case.severity == Case.EMERGENCY and case.handoff is False and case.category == "missing_person"
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.kind == Outbox.ALERT)) == 1
    h = client.post(f"/internal/contacts/{uuid}/handoff", json={"reason": "asked for a person"}, headers=INTERNAL)
    assert h.json == {"case_id": case_id}
    with db.session() as s:
        assert s.get(Case, case_id).handoff is True


def test_internal_handoff_opens_a_normal_case(client, db, people, clock):
    uuid = contact_uuid(db, "+959791230021")
    r = client.post(f"/internal/contacts/{uuid}/handoff", json={"reason": "asked for a person"}, headers=INTERNAL)
    assert r.status_code == 201
    with db.session() as s:
        case = s.get(Case, r.json["case_id"])
        assert (case.severity, case.handoff, case.status) == (Case.NORMAL, True, Case.NOTIFIED)
    assert client.post("/internal/contacts/nope/handoff", json={}, headers=INTERNAL).status_code == 404


def test_internal_unknown_category_still_opens_the_case(client, db, people, clock):
    uuid = contact_uuid(db, "+959791230022")
    r = client.post("/internal/cases", json={"contact": uuid, "category": "weird", "severity": "??"},
                    headers=INTERNAL)
    assert r.status_code == 201
    with db.session() as s:
        case = s.get(Case, r.json["case_id"])
        assert (case.category, case.severity) == ("other", Case.URGENT)
    assert client.post("/internal/cases", data="not json", headers=INTERNAL).status_code == 400


def test_login_page_has_no_case_data(client, db, config, people, clock):
    report(db, config)
    html = client.get("/console/cases", follow_redirects=True).get_data(as_text=True)
    assert "Sign in" in html and re.search(r"#\d+", html) is None


def test_agent_opens_a_case_for_a_caller(app, db, config, people, clock):
    c = app.test_client()
    login(c, "a1@example.org")
    token = csrf_from(c.get("/console/cases/new").get_data(as_text=True))
    bad = c.post("/console/cases/new", data={"csrf_token": token, "phone": "not a number", "category": "other",
                                             "severity": "urgent"})
    assert bad.status_code == 400 and 'role="alert"' in bad.get_data(as_text=True)
    r = c.post("/console/cases/new", data={"csrf_token": token, "phone": "09 791 230 077", "category": "missing_person",
                                           "severity": "emergency", "note": "mother called the hotline"})
    assert r.status_code == 303
    case_id = int(r.headers["Location"].rsplit("/", 1)[1])
    with db.session() as s:
        case = s.get(Case, case_id)
        contact = s.get(Contact, case.contact_id)
        assert (case.source, case.severity, case.category, case.handoff) == ("agent", "emergency", "missing_person", True)
        assert (case.status, case.acknowledged_by, case.next_chase_at) == (Case.ACKNOWLEDGED, people["a1"], None)
        assert contact.address == "+959791230077"
        assert s.scalar(select(CaseNote.body)) == "mother called the hotline"
    # the reporter texts in later: the same contact, the message shows on the case page's live feed
    with db.session() as s:
        receive(s, channel="sms", provider_id="SM-caller-1", address="+959791230077", text="<i>is anyone there</i>")
    feed = c.get(f"/console/cases/{case_id}/messages.json?after=0", headers={"Accept": "application/json"}).json
    assert feed["count"] == 1 and feed["items"][0]["body"] == "<i>is anyone there</i>"
    assert c.get(f"/console/cases/{case_id}/messages.json?after=1").json["items"] == []


@pytest.mark.parametrize("field", ["category", "severity"])
@pytest.mark.parametrize("bad", [[None], {"a": 1}, 3, True])
def test_internal_open_case_with_a_non_text_label_still_opens_the_case(app, db, config, field, bad):
    """Found by the route fuzzer: a list where a string belongs was a 500. A
    report must never be lost to a bad label: it opens with the default."""
    with db.session() as s:
        receive(s, channel="sms", provider_id=f"SM-bad-{field}-{bad!r}", address="+959250000777", text="help")
        uuid = s.scalar(select(Contact.uuid).order_by(Contact.id.desc()).limit(1))
    resp = app.test_client().post(
        "/internal/cases", json={"contact": uuid, field: bad},
        headers={"Authorization": f"Bearer {config.internal_token}"},
    )
    assert resp.status_code in (200, 201), resp.get_data()
    with db.session() as s:
        case = s.get(Case, resp.get_json()["case_id"])
        assert (case.category, case.severity) == ("other", Case.URGENT)
