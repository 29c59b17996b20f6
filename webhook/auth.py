"""Staff sign-in, roles, API tokens, CSRF and the console's base layout.

- Passwords: werkzeug's scrypt hashes (``generate_password_hash``).
- Sessions: signed cookie (HttpOnly, SameSite=Lax, Secure on https), expire
  ``SESSION_LIFETIME_MIN`` after sign-in; a password change or deactivation
  ends them.
- Failed sign-ins: after ``LOGIN_MAX_FAILURES`` the account is locked for
  ``LOGIN_LOCKOUT_MIN``; each address is also limited per process.
- ``login_required(*roles)`` on every console and API view (admin passes
  everywhere). ``/api/*`` also accepts ``Authorization: Bearer <token>``
  (``lanpya staff token EMAIL``).
- CSRF (Flask-WTF) on every unsafe request except provider webhooks,
  ``/internal/*`` (token) and token-authenticated ``/api/*``. Forms include
  ``<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">``;
  scripts send the ``X-CSRFToken`` header (the token is in
  ``<meta name="csrf-token">`` of base.html).
- Content-Security-Policy forbids inline scripts: put JavaScript in
  ``webhook/static/`` files.

Other areas add their navigation with ``nav_item(label, endpoint, roles)``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from lanpya import audit, clock
from lanpya.models import Staff
from lanpya.staff import staff_by_token
from webhook.ext import config, db

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()

#: unsafe requests under these paths are not CSRF-checked (they carry their own proof)
CSRF_EXEMPT_PREFIXES: list[str] = ["/sms/", "/viber", "/internal/", "/webhooks/"]
#: failed sign-ins from one address per window, per process (the account lockout is in the database)
ADDRESS_MAX_FAILURES = 20
ADDRESS_WINDOW = timedelta(minutes=15)

_DUMMY_HASH = generate_password_hash("not-a-real-password-" + "x" * 8)


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    roles: tuple[str, ...]


NAV: list[NavItem] = []


def nav_item(label: str, endpoint: str, roles: tuple[str, ...] | list[str]) -> None:
    """Show a link to ``endpoint`` in the top bar for ``roles`` (and admin)."""
    item = NavItem(label, endpoint, tuple(roles))
    if item not in NAV:
        NAV.append(item)


# --- who is asking ----------------------------------------------------------------
def current_staff() -> Staff | None:
    """The signed-in (or token-authenticated) staff member, or None."""
    if "lanpya_staff" not in g:
        g.lanpya_staff = _load_staff()
    return g.lanpya_staff


def _fingerprint(staff: Staff) -> str:
    """Changes when the password changes: old sessions end."""
    return hashlib.sha256((staff.password_hash or "").encode()).hexdigest()[:16]


def _load_staff() -> Staff | None:
    token = _bearer()
    if token is not None:
        g.lanpya_via_token = True
        with db().session() as s:
            return staff_by_token(s, token)
    staff_id = session.get("staff_id")
    if staff_id is None:
        return None
    try:
        since = datetime.fromisoformat(session.get("since", ""))
    except ValueError:
        session.clear()
        return None
    if clock.now() - since > timedelta(minutes=config().session_lifetime_min):
        session.clear()
        g.lanpya_expired = True
        return None
    with db().session() as s:
        staff = s.get(Staff, staff_id)
    if staff is None or not staff.active or not hmac.compare_digest(session.get("fp", ""), _fingerprint(staff)):
        session.clear()
        return None
    return staff


def _bearer() -> str | None:
    """The API token, on /api/* only (console pages need a signed-in session)."""
    if not request.path.startswith("/api/"):
        return None
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip()
    return None


def via_token() -> bool:
    current_staff()
    return bool(g.get("lanpya_via_token"))


def has_role(staff: Staff | None, *roles: str) -> bool:
    if staff is None:
        return False
    return staff.role == Staff.ADMIN or not roles or staff.role in roles


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def login_required(*roles: str):
    """Signed-in staff with one of ``roles`` (admin always); no roles = any staff.

    Not signed in: HTML → redirect to the sign-in page; API → 401. Wrong
    role → 403. Every console and API view must carry it."""
    for role in roles:
        if role not in Staff.ROLES:
            raise ValueError(f"unknown role {role!r}")

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            staff = current_staff()
            if staff is None:
                if _wants_json():
                    return jsonify(error="authentication required"), 401
                if g.get("lanpya_expired"):
                    flash("Your session expired. Please sign in again.")
                return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
            if not has_role(staff, *roles):
                logger.info("staff %s (%s) refused %s", staff.id, staff.role, request.endpoint)
                if _wants_json():
                    return jsonify(error="forbidden"), 403
                abort(403)
            return view(*args, **kwargs)

        wrapper.lanpya_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (no open redirect)."""
    fallback = url_for("auth.home")
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return fallback
    return target


# --- per-address failure window (per process; the account lockout is the real guard) ----
_failures: dict[str, deque] = {}
_failures_lock = threading.Lock()


def _address_blocked(addr: str) -> bool:
    now = clock.now()
    with _failures_lock:
        q = _failures.get(addr)
        if not q:
            return False
        while q and now - q[0] > ADDRESS_WINDOW:
            q.popleft()
        return len(q) >= ADDRESS_MAX_FAILURES


def _address_failed(addr: str) -> None:
    with _failures_lock:
        _failures.setdefault(addr, deque()).append(clock.now())
        if len(_failures) > 10000:  # bounded memory
            _failures.pop(next(iter(_failures)))


# --- views ------------------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if current_staff() is not None and not via_token():
            return redirect(safe_next(request.args.get("next")))
        return render_template("login.html", next=safe_next(request.args.get("next"))), 200
    cfg = config()
    email = (request.form.get("email") or "").strip().lower()[:200]
    password = request.form.get("password") or ""
    target = safe_next(request.form.get("next") or request.args.get("next"))
    addr = request.remote_addr or "?"
    generic = "Email or password is wrong, or the account is locked. Try again later."
    if _address_blocked(addr):
        return render_template("login.html", next=target, error="Too many failed sign-ins. Try again later.",
                               email=email), 429
    now = clock.now()
    with db().session() as s:
        staff = s.scalar(select(Staff).where(Staff.email == email)) if email else None
        if staff is None or not staff.active or not staff.password_hash:
            check_password_hash(_DUMMY_HASH, password)  # same work whether or not the account exists
            _address_failed(addr)
            audit.record(s, "login_failed", "staff", staff.id if staff else None, actor="anonymous")
            return render_template("login.html", next=target, error=generic, email=email), 401
        if staff.locked_until is not None and staff.locked_until > now:
            check_password_hash(_DUMMY_HASH, password)
            _address_failed(addr)
            audit.record(s, "login_refused_locked", "staff", staff.id, actor="anonymous")
            return render_template("login.html", next=target, error=generic, email=email), 401
        if not check_password_hash(staff.password_hash, password):
            _address_failed(addr)
            staff.failed_logins = (staff.failed_logins or 0) + 1
            detail = {"failures": staff.failed_logins}
            if staff.failed_logins >= cfg.login_max_failures:
                staff.locked_until = now + timedelta(minutes=cfg.login_lockout_min)
                staff.failed_logins = 0
                detail["locked_min"] = cfg.login_lockout_min
                logger.warning("staff %s locked after %s failed sign-ins", staff.id, cfg.login_max_failures)
            audit.record(s, "login_failed", "staff", staff.id, actor="anonymous", detail=detail)
            return render_template("login.html", next=target, error=generic, email=email), 401
        staff.failed_logins = 0
        staff.locked_until = None
        audit.record(s, "login", "staff", staff.id, staff_id=staff.id)
        fp, staff_id = _fingerprint(staff), staff.id
    session.clear()  # no session fixation: a fresh cookie
    session.permanent = True
    session["staff_id"] = staff_id
    session["since"] = now.isoformat()
    session["fp"] = fp
    return redirect(target)


@bp.post("/logout")
def logout():
    staff = current_staff()
    if staff is not None and not via_token():
        with db().session() as s:
            audit.record(s, "logout", "staff", staff.id, staff_id=staff.id)
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/")
def index():
    return redirect(url_for("auth.home"))


@bp.get("/console/")
@login_required()
def home():
    staff = current_staff()
    links = [item for item in NAV if has_role(staff, *item.roles)]
    return render_template("home.html", links=links)


# --- wiring ---------------------------------------------------------------------
def _csrf_check() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return
    path = request.path
    if any(path.startswith(p) for p in CSRF_EXEMPT_PREFIXES):
        return
    if path.startswith("/api/") and _bearer() is not None:
        return  # a token is not sent by a browser on its own
    csrf.protect()


def _security_headers(response):
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        h.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        )
    if request.path.startswith(("/console", "/api/", "/login")):
        h["Cache-Control"] = "no-store"
    return response


def _template_globals() -> dict:
    staff = current_staff() if request else None
    return {
        "staff": staff,
        "nav": [item for item in NAV if has_role(staff, *item.roles)] if staff else [],
        "has_role": lambda *roles: has_role(staff, *roles),
    }


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # _csrf_check decides
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # bound by the session's own lifetime
    app.config.setdefault("WTF_CSRF_SSL_STRICT", True)
    csrf.init_app(app)
    app.before_request(_csrf_check)
    app.after_request(_security_headers)
    app.context_processor(_template_globals)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc):
        logger.info("CSRF refused on %s: %s", request.endpoint, exc.description)
        if _wants_json():
            return jsonify(error="CSRF token missing or invalid"), 400
        return render_template("error.html", code=400, message="The form expired or was not sent from this site. "
                               "Go back, reload the page and try again."), 400

    @app.errorhandler(403)
    def _forbidden(exc):
        if not request.path.startswith(("/console", "/api/", "/login")):
            return exc  # other areas' 403s keep their own text
        if _wants_json():
            return jsonify(error="forbidden"), 403
        return render_template("error.html", code=403, message="Your role does not allow this page."), 403

    app.register_blueprint(bp)
