"""Campaign staff's console pages and the campaigns JSON API.

Every view needs a signed-in (or token-authenticated) staff member with the
``campaigner`` role (admin passes too), via ``webhook.auth.login_required``.
The work is done by :mod:`campaigns.engine`; these views only parse, call and
render. Every change is audited.

JSON API (``Authorization: Bearer <token>`` from ``lanpya staff token EMAIL``):

==========================================  ==============================================================
``POST /api/audiences``                      ``{"name", "filter": {languages, states, townships, roles, channels, countries}}`` → ``{"id", "size"}``
``POST /api/audiences/size``                 ``{"filter"}`` → ``{"size", "breakdown"}`` (the live size)
``POST /api/campaigns``                      ``{"name", "audience_id" | "audience": {...}, "schedule_kind", "run_at", "cron", "messages": [{"step", "offset_days", "language", "body"}], "quiet_start", "quiet_end"}`` → ``{"id", "status"}``
``GET /api/campaigns``                       list
``POST /api/campaigns/<id>/preview``         recipients by language and channel, segments, cost, time, warnings
``POST /api/campaigns/<id>/schedule``        ``{"run_at"?, "cron"?}`` → ``{"status"}`` (``awaiting_approval`` above the threshold)
``POST /api/campaigns/<id>/approve``         a second staff member
``POST /api/campaigns/<id>/pause|resume|cancel``
``GET /api/campaigns/<id>/report``           JSON; ``?format=csv`` for CSV
``POST /api/text/segments``                  ``{"body"}`` → encoding and segment count
==========================================  ==============================================================
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from campaigns import engine
from campaigns.engine import LANGUAGES, CampaignError
from lanpya import audit
from lanpya.models import Audience, Campaign, Contact, Staff
from webhook.auth import current_staff, login_required, nav_item
from webhook.ext import config, db

logger = logging.getLogger(__name__)

bp = Blueprint("campaigns", __name__, template_folder="campaigns_templates")
ROLE = Staff.CAMPAIGNER


# --- helpers --------------------------------------------------------------------------
def _json() -> dict:
    data = request.get_json(silent=True)
    if data is None:
        return {}
    if not isinstance(data, dict):
        abort(400, "expected a JSON object")
    return data


def _when(value) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise CampaignError("times are ISO 8601 strings (UTC)")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CampaignError(f"{value[:40]!r} is not an ISO 8601 time") from exc
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _staff_id() -> int | None:
    staff = current_staff()
    return staff.id if staff else None


def _campaign_json(c: Campaign) -> dict:
    return {"id": c.id, "name": c.name, "status": c.status, "schedule_kind": c.schedule_kind,
            "run_at": c.run_at.isoformat() if c.run_at else None, "cron": c.cron, "audience_id": c.audience_id,
            "quiet_start": c.quiet_start, "quiet_end": c.quiet_end, "approved_by": c.approved_by}


def _get(s, campaign_id: int) -> Campaign:
    c = s.get(Campaign, campaign_id)
    if c is None:
        abort(404)
    return c


#: JSON fields that must be text when present
TEXT_FIELDS = ("name", "cron", "quiet_start", "quiet_end", "schedule_kind", "run_at")


def _text_fields(data: dict) -> dict:
    """Refuse (400) a non-text value where text belongs, naming the field."""
    for key in TEXT_FIELDS:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise CampaignError(f"{key} must be text")
    return data


def _error(exc: Exception, status: int = 400):
    return jsonify({"error": str(exc)}), status


# --- JSON API -------------------------------------------------------------------------
@bp.post("/api/audiences")
@login_required(ROLE)
def api_audience_create():
    data = _json()
    try:
        _text_fields(data)
        with db().session() as s:
            a = engine.create_audience(s, data.get("name", ""), data.get("filter"), _staff_id())
            audit.record(s, "audience_created", "audience", a.id, staff_id=_staff_id())
            size = engine.audience_size(s, a.filter, config())
            out = {"id": a.id, "name": a.name, "filter": a.filter, "size": size}
    except CampaignError as exc:
        return _error(exc)
    return jsonify(out), 201


@bp.get("/api/audiences")
@login_required(ROLE)
def api_audiences():
    with db().session() as s:
        return jsonify([{"id": a.id, "name": a.name, "filter": a.filter,
                         "size": engine.audience_size(s, a.filter or {}, config())}
                        for a in s.scalars(select(Audience).order_by(Audience.id))])


@bp.post("/api/audiences/size")
@login_required(ROLE)
def api_audience_size():
    try:
        flt = engine.clean_filter(_json().get("filter"))
    except CampaignError as exc:
        return _error(exc)
    with db().session() as s:
        breakdown = engine.audience_breakdown(s, flt, config())
    return jsonify({"size": sum(b["count"] for b in breakdown), "breakdown": breakdown})


@bp.post("/api/text/segments")
@login_required(ROLE)
def api_segments():
    body = _json().get("body") or ""
    if not isinstance(body, str):
        return _error(CampaignError("body must be text"))
    return jsonify(engine.text_preview(body))


@bp.post("/api/campaigns")
@login_required(ROLE)
def api_campaign_create():
    data = _json()
    try:
        _text_fields(data)
        if isinstance(data.get("audience"), dict):
            _text_fields(data["audience"])
        with db().session() as s:
            audience_id = data.get("audience_id")
            if audience_id is None and isinstance(data.get("audience"), dict):
                a = engine.create_audience(s, data["audience"].get("name", ""), data["audience"].get("filter"),
                                           _staff_id())
                audience_id = a.id
            if not isinstance(audience_id, int):
                raise CampaignError("audience_id (a number) or audience {name, filter} is required")
            messages = data.get("messages") or []
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise CampaignError("messages must be a list of {step, offset_days, language, body}")
            c = engine.create_campaign(
                s, config(), name=data.get("name", ""), audience_id=audience_id,
                schedule_kind=data.get("schedule_kind", Campaign.ONCE), run_at=_when(data.get("run_at")),
                cron=data.get("cron"), messages=messages, quiet_start=data.get("quiet_start"),
                quiet_end=data.get("quiet_end"), staff_id=_staff_id(),
            )
            audit.record(s, "campaign_created", "campaign", c.id, staff_id=_staff_id())
            out = _campaign_json(c)
    except CampaignError as exc:
        return _error(exc)
    return jsonify(out), 201


@bp.get("/api/campaigns")
@login_required(ROLE)
def api_campaigns():
    with db().session() as s:
        return jsonify([_campaign_json(c) for c in s.scalars(select(Campaign).order_by(Campaign.id.desc()))])


@bp.get("/api/campaigns/<int:campaign_id>")
@login_required(ROLE)
def api_campaign(campaign_id: int):
    with db().session() as s:
        c = _get(s, campaign_id)
        return jsonify(_campaign_json(c) | {"steps": engine.steps_of(s, c.id)})


@bp.post("/api/campaigns/<int:campaign_id>/preview")
@login_required(ROLE)
def api_preview(campaign_id: int):
    with db().session() as s:
        return jsonify(engine.preview(s, config(), _get(s, campaign_id)))


@bp.post("/api/campaigns/<int:campaign_id>/schedule")
@login_required(ROLE)
def api_schedule(campaign_id: int):
    data = _json()
    try:
        _text_fields(data)
        with db().session() as s:
            c = _get(s, campaign_id)
            engine.schedule(s, config(), c, staff_id=_staff_id(), run_at=_when(data.get("run_at")),
                            cron=data.get("cron"))
            audit.record(s, "campaign_scheduled", "campaign", c.id, staff_id=_staff_id(), detail={"status": c.status})
            out = _campaign_json(c)
    except CampaignError as exc:
        return _error(exc, 409)
    return jsonify(out)


@bp.post("/api/campaigns/<int:campaign_id>/approve")
@login_required(ROLE)
def api_approve(campaign_id: int):
    try:
        with db().session() as s:
            c = _get(s, campaign_id)
            engine.approve(s, config(), c, _staff_id())
            audit.record(s, "campaign_approved", "campaign", c.id, staff_id=_staff_id())
            out = _campaign_json(c)
    except CampaignError as exc:
        return _error(exc, 409)
    return jsonify(out)


def _switch(campaign_id: int, action: str) -> dict:
    with db().session() as s:
        _get(s, campaign_id)
        n = getattr(engine, action)(s, campaign_id)
        audit.record(s, f"campaign_{action}d" if action != "cancel" else "campaign_cancelled", "campaign",
                     campaign_id, staff_id=_staff_id(), detail={"rows": n})
        return {"id": campaign_id, "status": s.get(Campaign, campaign_id).status, "rows": n}


@bp.post("/api/campaigns/<int:campaign_id>/<any(pause, resume, cancel):action>")
@login_required(ROLE)
def api_switch(campaign_id: int, action: str):
    try:
        return jsonify(_switch(campaign_id, action))
    except CampaignError as exc:
        return _error(exc, 409)


@bp.get("/api/campaigns/<int:campaign_id>/report")
@login_required(ROLE)
def api_report(campaign_id: int):
    with db().session() as s:
        _get(s, campaign_id)
        rep = engine.report(s, config(), campaign_id)
    if request.args.get("format") == "csv":
        return Response(engine.report_csv(rep), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=campaign-{campaign_id}-report.csv"})
    return jsonify(rep)


# --- console pages ------------------------------------------------------------------------
def _filter_from_form() -> dict:
    f = request.form
    return {
        "languages": f.getlist("languages"),
        "channels": f.getlist("channels"),
        "states": f.getlist("states"),
        "townships": f.get("townships", ""),
        "roles": f.get("roles", ""),
    }


@bp.get("/console/campaigns")
@login_required(ROLE)
def index():
    with db().session() as s:
        campaigns = list(s.scalars(select(Campaign).order_by(Campaign.id.desc())))
        audiences = [(a, engine.audience_size(s, a.filter or {}, config()))
                     for a in s.scalars(select(Audience).order_by(Audience.id.desc()))]
    return render_template("campaigns/index.html", campaigns=campaigns, audiences=audiences)


@bp.route("/console/campaigns/audiences/new", methods=["GET", "POST"])
@login_required(ROLE)
def audience_new():
    error = None
    if request.method == "POST":
        try:
            with db().session() as s:
                a = engine.create_audience(s, request.form.get("name", ""), _filter_from_form(), _staff_id())
                audit.record(s, "audience_created", "audience", a.id, staff_id=_staff_id())
                size = engine.audience_size(s, a.filter, config())
            flash(f"Audience “{a.name}” saved: {size} contact(s) now.")
            return redirect(url_for("campaigns.campaign_new", audience_id=a.id))
        except CampaignError as exc:
            error = str(exc)
    return render_template("campaigns/audience_new.html", error=error, languages=LANGUAGES,
                           channels=Contact.CHANNELS, states=("Kachin", "Northern Shan")), (400 if error else 200)


@bp.route("/console/campaigns/new", methods=["GET", "POST"])
@login_required(ROLE)
def campaign_new():
    error = None
    if request.method == "POST":
        f = request.form
        try:
            messages = [{"language": lg, "body": f.get(f"text_{lg}", "")} for lg in LANGUAGES
                        if f.get(f"text_{lg}", "").strip()]
            with db().session() as s:
                c = engine.create_campaign(
                    s, config(), name=f.get("name", ""), audience_id=int(f.get("audience_id") or 0),
                    schedule_kind=f.get("schedule_kind", Campaign.ONCE), run_at=_when(f.get("run_at")),
                    cron=f.get("cron") or None, messages=messages, quiet_start=f.get("quiet_start") or None,
                    quiet_end=f.get("quiet_end") or None, staff_id=_staff_id(),
                )
                audit.record(s, "campaign_created", "campaign", c.id, staff_id=_staff_id())
            return redirect(url_for("campaigns.detail", campaign_id=c.id))
        except (CampaignError, ValueError) as exc:
            error = str(exc)
    with db().session() as s:
        audiences = list(s.scalars(select(Audience).order_by(Audience.id.desc())))
    return render_template("campaigns/campaign_new.html", error=error, audiences=audiences, languages=LANGUAGES,
                           selected=request.values.get("audience_id", type=int), form=request.form,
                           cfg=config()), (400 if error else 200)


@bp.get("/console/campaigns/<int:campaign_id>")
@login_required(ROLE)
def detail(campaign_id: int):
    with db().session() as s:
        c = _get(s, campaign_id)
        audience = s.get(Audience, c.audience_id)
        p = engine.preview(s, config(), c)
        rep = engine.report(s, config(), campaign_id)
        steps = engine.steps_of(s, c.id)
    return render_template("campaigns/detail.html", c=c, audience=audience, p=p, rep=rep, steps=steps,
                           states=engine.REPORT_STATES, me=_staff_id())


@bp.post("/console/campaigns/<int:campaign_id>/<any(schedule, approve, pause, resume, cancel):action>")
@login_required(ROLE)
def act(campaign_id: int, action: str):
    try:
        if action == "schedule":
            with db().session() as s:
                c = _get(s, campaign_id)
                engine.schedule(s, config(), c, staff_id=_staff_id())
                audit.record(s, "campaign_scheduled", "campaign", c.id, staff_id=_staff_id(),
                             detail={"status": c.status})
                status = c.status
            flash("Scheduled." if status == Campaign.SCHEDULED else
                  "Waiting for a second staff member to approve (large audience).")
        elif action == "approve":
            with db().session() as s:
                c = _get(s, campaign_id)
                engine.approve(s, config(), c, _staff_id())
                audit.record(s, "campaign_approved", "campaign", c.id, staff_id=_staff_id())
            flash("Approved and scheduled.")
        else:
            out = _switch(campaign_id, action)
            flash(f"Campaign {out['status']}: {out['rows']} queued message(s) affected.")
    except CampaignError as exc:
        flash(f"Refused: {exc}")
    return redirect(url_for("campaigns.detail", campaign_id=campaign_id))


@bp.get("/console/campaigns/<int:campaign_id>/report.csv")
@login_required(ROLE)
def report_csv(campaign_id: int):
    with db().session() as s:
        _get(s, campaign_id)
        rep = engine.report(s, config(), campaign_id)
    return Response(engine.report_csv(rep), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename=campaign-{campaign_id}-report.csv"})


nav_item("Campaigns", "campaigns.index", (ROLE,))
