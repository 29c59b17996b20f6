"""Every route of the app, for every role: walks the URL map, so a route
added tomorrow is checked tomorrow without anyone remembering to.

- Public routes are an explicit list, each with its reason.
- Provider webhooks refuse a request without a valid signature.
- /internal/* refuses a request without the internal token.
- Everything else carries ``login_required(...)``: anonymous → sign-in
  (HTML) or 401 (API); a role not listed → 403; a listed role (and admin)
  gets through — and no request answers 500.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from lanpya import clock as clockmod
from lanpya.models import Staff

#: routes anyone may call, and why
PUBLIC = {
    "/healthz": "load balancers and `lanpya run` poll it; reports up/down only",
    "/login": "the sign-in form",
    "/logout": "ends the caller's own session",
    "/": "redirects to the console or sign-in",
    "/static/<path:filename>": "CSS and JavaScript",
}
#: provider webhooks: authenticated by the provider's signature
WEBHOOK_PREFIXES = ("/sms/", "/viber")

ROLES = Staff.ROLES


def concrete(app, rule) -> str:
    """A URL for ``rule`` with every argument filled in."""
    values = {}
    for arg, conv in rule._converters.items():
        name = conv.__class__.__name__
        if name in ("IntegerConverter", "NumberConverter", "FloatConverter"):
            values[arg] = 1
        elif hasattr(conv, "items"):
            values[arg] = sorted(conv.items)[0]
        else:
            values[arg] = "x"
    with app.test_request_context():
        return app.url_map.bind("localhost").build(rule.endpoint, values, method=next(iter(rule.methods)))


def app_routes(app) -> list[tuple[str, str, str, object]]:
    """(rule, method, url, view) for every route and method the app serves."""
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.rule, method, concrete(app, rule), app.view_functions[rule.endpoint]))
    return out


@pytest.fixture
def staff_by_role(db):
    from werkzeug.security import generate_password_hash

    ids = {}
    with db.session() as s:
        for role in ROLES:
            st = Staff(email=f"{role}@example.org", role=role, name=role, password_hash=generate_password_hash("pw-" + role))
            s.add(st)
            s.flush()
            ids[role] = st.id
    return ids


def signed_in(app, db, staff_id: int):
    """A test client with a signed-in session and a valid CSRF token header."""
    from webhook.auth import _fingerprint

    client = app.test_client()
    with db.session() as s:
        staff = s.get(Staff, staff_id)
    raw = hashlib.sha1(os.urandom(32)).hexdigest()  # noqa: S324 - the same shape Flask-WTF uses
    with client.session_transaction() as sess:
        sess["staff_id"] = staff_id
        sess["since"] = clockmod.now().isoformat()
        sess["fp"] = _fingerprint(staff)
        sess["csrf_token"] = raw
    token = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)
    client.environ_base["HTTP_X_CSRFTOKEN"] = token
    return client


def call(client, method: str, url: str, **kw):
    return client.open(url, method=method, **kw)


def test_every_route_is_public_webhook_internal_or_role_checked(app):
    unclassified = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if path in PUBLIC or path.startswith(WEBHOOK_PREFIXES) or path.startswith("/internal/"):
            continue
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "lanpya_roles"):
            unclassified.append(path)
    assert unclassified == [], f"routes with no access rule: {unclassified}"


def test_anonymous_is_refused_everywhere_but_public_routes(app):
    client = app.test_client()
    for path, method, url, view in app_routes(app):
        if path in PUBLIC:
            continue
        resp = call(client, method, url, data=b"{}", content_type="application/json")
        assert resp.status_code < 500, (method, url, resp.status_code)
        if path.startswith(WEBHOOK_PREFIXES):
            assert resp.status_code in (400, 403, 405, 415), (method, url, resp.status_code)
        elif path.startswith("/internal/"):
            assert resp.status_code == 401, (method, url, resp.status_code)
        else:
            # an unsafe request without a CSRF token is refused (400) before sign-in is checked
            refused = (302, 401) if method == "GET" else (302, 400, 401)
            assert resp.status_code in refused, (method, url, resp.status_code)
            if resp.status_code == 302:
                assert "/login" in resp.headers["Location"]


def test_internal_routes_refuse_a_wrong_token(app):
    client = app.test_client()
    for path, method, url, view in app_routes(app):
        if not path.startswith("/internal/"):
            continue
        resp = call(client, method, url, json={}, headers={"Authorization": "Bearer wrong-token"})
        assert resp.status_code == 401, (method, url)
        resp = call(client, method, url + "?token=wrong-token", json={})
        assert resp.status_code == 401, (method, url)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_routes(app, db, staff_by_role, role):
    client = signed_in(app, db, staff_by_role[role])
    checked = 0
    for path, method, url, view in app_routes(app):
        roles = getattr(view, "lanpya_roles", None)
        if roles is None:
            continue
        allowed = role == Staff.ADMIN or not roles or role in roles
        resp = call(client, method, url, json={})
        checked += 1
        assert resp.status_code < 500, (role, method, url, resp.status_code)
        if allowed:
            assert resp.status_code not in (401, 403), (role, method, url, resp.status_code)
        else:
            assert resp.status_code == 403, (role, method, url, resp.status_code)
    assert checked >= 10


def test_insights_role_cannot_reach_cases_contacts_or_messages(app, db, staff_by_role):
    client = signed_in(app, db, staff_by_role[Staff.INSIGHTS])
    reached = []
    for path, method, url, view in app_routes(app):
        if method != "GET" or not path.startswith(("/console", "/api/")):
            continue
        if "insights" in path or path in ("/console", "/console/"):
            continue
        if call(client, method, url).status_code not in (302, 401, 403, 404):
            reached.append(url)
    assert reached == []


def test_deactivated_staff_session_ends(app, db, staff_by_role):
    client = signed_in(app, db, staff_by_role[Staff.AGENT])
    with db.session() as s:
        s.scalar(select(Staff).where(Staff.id == staff_by_role[Staff.AGENT])).active = False
    resp = client.get("/console/cases")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
