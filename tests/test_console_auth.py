"""Staff sign-in: hashed passwords, lockout, session expiry, roles on every
route, CSRF on forms, API tokens, no open redirect."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Blueprint, jsonify
from sqlalchemy import select

from lanpya.models import AuditLog, Staff
from lanpya.staff import add_staff, new_api_token
from webhook.auth import login_required, safe_next

PASSWORD = "correct horse battery"


def make_staff(db, email: str, role: str, password: str = PASSWORD) -> int:
    with db.session() as s:
        return add_staff(s, email, role, password=password).id


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "form has no CSRF token"
    return m.group(1)


def login(client, email: str, password: str = PASSWORD, next_: str | None = None):
    page = client.get("/login")
    data = {"email": email, "password": password, "csrf_token": csrf_from(page.get_data(as_text=True))}
    if next_ is not None:
        data["next"] = next_
    return client.post("/login", data=data)


@pytest.fixture
def app_with_probe(config, db):
    """The app plus probe routes guarded like console and API views."""
    from webhook import create_app

    app = create_app(config, db)
    probe = Blueprint("probe", __name__)

    @probe.get("/console/probe/agent")
    @login_required(Staff.AGENT, Staff.SUPERVISOR)
    def agent_page():
        return "agent page"

    @probe.post("/console/probe/form")
    @login_required()
    def form_post():
        return "posted"

    @probe.get("/api/probe")
    @login_required(Staff.AGENT)
    def api_probe():
        return jsonify(ok=True)

    @probe.post("/api/probe")
    @login_required(Staff.AGENT)
    def api_probe_post():
        return jsonify(ok=True)

    app.register_blueprint(probe)
    return app


def test_password_is_stored_as_scrypt_hash(db):
    make_staff(db, "a@example.org", Staff.AGENT)
    with db.session() as s:
        h = s.scalar(select(Staff.password_hash))
    assert h.startswith("scrypt:") and PASSWORD not in h


def test_login_then_role_enforced(app_with_probe, db, clock):
    make_staff(db, "agent@example.org", Staff.AGENT)
    make_staff(db, "camp@example.org", Staff.CAMPAIGNER)
    make_staff(db, "admin@example.org", Staff.ADMIN)
    c = app_with_probe.test_client()
    assert c.get("/console/probe/agent").status_code == 302  # not signed in
    r = login(c, "agent@example.org")
    assert r.status_code == 302
    assert c.get("/console/probe/agent").get_data(as_text=True) == "agent page"

    camp = app_with_probe.test_client()
    login(camp, "camp@example.org")
    assert camp.get("/console/probe/agent").status_code == 403

    admin = app_with_probe.test_client()
    login(admin, "admin@example.org")
    assert admin.get("/console/probe/agent").status_code == 200


def test_wrong_password_refused_and_audited(client, db, clock):
    sid = make_staff(db, "a@example.org", Staff.AGENT)
    r = login(client, "a@example.org", "wrong password!")
    assert r.status_code == 401
    assert client.get("/console/").status_code == 302
    with db.session() as s:
        assert s.get(Staff, sid).failed_logins == 1
        assert [a.action for a in s.scalars(select(AuditLog))] == ["login_failed"]


def test_lockout_after_max_failures_even_with_right_password(client, db, config, clock):
    sid = make_staff(db, "a@example.org", Staff.AGENT)
    for _ in range(config.login_max_failures):
        assert login(client, "a@example.org", "nope nope nope").status_code == 401
    with db.session() as s:
        locked_until = s.get(Staff, sid).locked_until
    assert locked_until == clock.now() + timedelta(minutes=config.login_lockout_min)
    assert login(client, "a@example.org").status_code == 401  # locked: right password refused
    clock.advance(minutes=config.login_lockout_min, seconds=1)
    assert login(client, "a@example.org").status_code == 302


def test_session_expires(client, db, config, clock):
    make_staff(db, "a@example.org", Staff.AGENT)
    login(client, "a@example.org")
    assert client.get("/console/").status_code == 200
    clock.advance(minutes=config.session_lifetime_min - 1)
    assert client.get("/console/").status_code == 200
    clock.advance(minutes=2)
    r = client.get("/console/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_password_change_ends_sessions(client, db, clock):
    from werkzeug.security import generate_password_hash

    sid = make_staff(db, "a@example.org", Staff.AGENT)
    login(client, "a@example.org")
    with db.session() as s:
        s.get(Staff, sid).password_hash = generate_password_hash("another password")
    assert client.get("/console/").status_code == 302


def test_csrf_required_on_forms(app_with_probe, db, clock):
    make_staff(db, "a@example.org", Staff.AGENT)
    c = app_with_probe.test_client()
    login(c, "a@example.org")
    assert c.post("/console/probe/form", data={}).status_code == 400
    assert c.post("/console/probe/form", data={"csrf_token": "forged"}).status_code == 400
    token = csrf_from(c.get("/console/").get_data(as_text=True))
    assert c.post("/console/probe/form", data={"csrf_token": token}).get_data(as_text=True) == "posted"
    # the sign-in form itself is protected
    fresh = app_with_probe.test_client()
    assert fresh.post("/login", data={"email": "a@example.org", "password": PASSWORD}).status_code == 400


def test_api_token(app_with_probe, db, clock):
    sid = make_staff(db, "a@example.org", Staff.AGENT)
    with db.session() as s:
        token = new_api_token(s, s.get(Staff, sid))
        stored = s.get(Staff, sid).api_token_hash
    assert token not in stored and len(stored) == 64
    c = app_with_probe.test_client()
    assert c.get("/api/probe").status_code == 401
    assert c.get("/api/probe", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = c.get("/api/probe", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json == {"ok": True}
    # a token request needs no CSRF token; a cookie-session POST does
    assert c.post("/api/probe", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    login(c, "a@example.org")
    assert c.post("/api/probe").status_code == 400


def test_no_open_redirect(client, db, app, clock):
    make_staff(db, "a@example.org", Staff.AGENT)
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/evil", " //evil"):
        r = login(app.test_client(), "a@example.org", next_=evil)
        assert r.status_code == 302
        assert r.headers["Location"] in ("/console/", "http://localhost/console/"), evil
    r = login(client, "a@example.org", next_="/console/?x=1")
    assert r.headers["Location"].endswith("/console/?x=1")
    with app.test_request_context():
        assert safe_next("/console/cases/3") == "/console/cases/3"


def test_cookie_flags_and_headers(client, db, clock):
    make_staff(db, "a@example.org", Staff.AGENT)
    r = login(client, "a@example.org")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/console/")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"


def test_secure_cookie_on_https(tmp_path, db_url, clock):
    from lanpya.db import Database
    from tests.conftest import make_config
    from webhook import create_app

    cfg = make_config(tmp_path, db_url, public_url="https://lanpya.example")
    database = Database(cfg.database_url)
    try:
        make_staff(database, "a@example.org", Staff.AGENT)
        c = create_app(cfg, database).test_client()
        r = login(c, "a@example.org")
        assert "Secure" in r.headers["Set-Cookie"]
    finally:
        database.dispose()


def test_logout_needs_post_and_ends_session(client, db, clock):
    make_staff(db, "a@example.org", Staff.AGENT)
    login(client, "a@example.org")
    page = client.get("/console/").get_data(as_text=True)
    assert client.get("/logout").status_code == 405
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert client.get("/console/").status_code == 302


def test_inactive_staff_cannot_sign_in(client, db, clock):
    sid = make_staff(db, "a@example.org", Staff.AGENT)
    with db.session() as s:
        s.get(Staff, sid).active = False
    assert login(client, "a@example.org").status_code == 401


def test_api_token_does_not_open_console_pages(app_with_probe, db, clock):
    sid = make_staff(db, "a@example.org", Staff.AGENT)
    with db.session() as s:
        token = new_api_token(s, s.get(Staff, sid))
    c = app_with_probe.test_client()
    r = c.get("/console/probe/agent", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 302 and "/login" in r.headers["Location"]
