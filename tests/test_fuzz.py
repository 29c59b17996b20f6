"""Property-based fuzzing of every route: generated methods, query strings,
JSON, form and raw bodies, as an anonymous caller, a signed-in admin (so the
view's own parsing runs) and with the internal token. No request may answer
500, and a refusal never stores a message.

10,000 generated requests by default (LANPYA_FUZZ_EXAMPLES changes it)."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from lanpya.models import Inbound, Staff
from tests.conftest import TEST_KEYS, make_config
from tests.test_access import app_routes, signed_in

EXAMPLES = int(os.environ.get("LANPYA_FUZZ_EXAMPLES", "10000"))

nasty_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from([
        "<script>alert(1)</script>", "'; DROP TABLE contact; --", "\x00", "၀၉၄၂၀၁၂၃၄၅၆", "%2B959",
        "../../etc/passwd", "{{7*7}}", "A" * 5000, "null", "-1", "99999999999999999999", "ဧ" * 300,
    ]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), nasty_text)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4), max_leaves=12)
FIELDS = ["text", "body", "name", "email", "password", "status", "language", "township", "q", "field", "value",
          "contact", "category", "severity", "audience_id", "run_at", "cron", "filter", "note", "outcome", "role",
          "event", "message_token", "MessageSid", "From", "To", "Body", "AccountSid", "MessageStatus", "ErrorCode"]
bodies = st.one_of(
    st.tuples(st.just("json"), st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)),
    st.tuples(st.just("json"), json_values),
    st.tuples(st.just("form"), st.dictionaries(st.sampled_from(FIELDS), nasty_text, max_size=6)),
    st.tuples(st.just("raw"), st.binary(max_size=300)),
)


def test_no_generated_request_answers_500(tmp_path, sqlite_url):
    from lanpya.db import Database
    from webhook import create_app

    config = make_config(tmp_path, sqlite_url)
    db = Database(config.database_url)
    app = create_app(config, db)
    from werkzeug.security import generate_password_hash

    with db.session() as s:
        admin = Staff(email="admin@example.org", role=Staff.ADMIN, password_hash=generate_password_hash("x" * 12))
        s.add(admin)
        s.flush()
        admin_id = admin.id
    routes = [(path, method, url) for path, method, url, _ in app_routes(app) if not path.startswith("/static") and path != "/healthz"]  # healthz reads no input
    clients = {
        "anonymous": app.test_client(),
        "admin": signed_in(app, db, admin_id),
        "internal": app.test_client(),
    }
    clients["internal"].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TEST_KEYS['internal']}"
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(
        route=st.sampled_from(routes),
        who=st.sampled_from(list(clients)),
        body=bodies,
        query=st.dictionaries(st.sampled_from(FIELDS), nasty_text, max_size=3),
        signature=st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)),
    )
    def one(route, who, body, query, signature):
        _, method, url = route
        kind, payload = body
        headers = {}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
            headers["X-Viber-Content-Signature"] = signature
        kw: dict = {"query_string": query, "headers": headers}
        if kind == "json":
            kw["data"] = json.dumps(payload, allow_nan=True)
            kw["content_type"] = "application/json"
        elif kind == "form":
            kw["data"] = payload
        else:
            kw["data"] = payload
            kw["content_type"] = "application/octet-stream"
        resp = clients[who].open(url, method=method, **kw)
        seen[resp.status_code] = seen.get(resp.status_code, 0) + 1
        assert resp.status_code < 500, (who, method, url, kind, resp.status_code, resp.get_data()[:300])

    one()
    # nothing unsigned was stored as a received message
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Inbound)) == 0
    assert sum(seen.values()) == EXAMPLES
    db.dispose()
