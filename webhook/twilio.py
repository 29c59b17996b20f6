"""Twilio SMS webhooks: ``POST /sms/twilio`` (inbound) and
``POST /sms/twilio/status`` (status callbacks).

Courier order: size and content type → signature (the twilio library's
``RequestValidator`` against ``PUBLIC_URL`` + path, so it works behind a
proxy) → required fields → persist keyed by ``MessageSid`` (or spool) →
empty TwiML. Replies go out through the outbox, never in the answer; the
"text only" answer to a media-only message is the worker's (it knows the
contact's language and whether a hotline case is open).
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, abort, request
from twilio.request_validator import RequestValidator

from lanpya.channels.status import TWILIO_STATUSES
from lanpya.models import Contact
from lanpya.phone import BadNumber, normalise_phone
from webhook.channel_http import guard_body, install_error_handlers, persist
from webhook.ext import config

logger = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__)
install_error_handlers(bp)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
FORM = "application/x-www-form-urlencoded"
MAX_MEDIA = 10
_RAW_E164 = re.compile(r"\+[1-9]\d{6,14}")


def _twiml() -> Response:
    return Response(EMPTY_TWIML, status=200, mimetype="text/xml")


def _verified_form():
    cfg = config()
    if not cfg.twilio_auth_token:
        abort(403, description="Twilio is not configured")  # fail closed
    guard_body(FORM)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        abort(403, description="missing X-Twilio-Signature")
    url = cfg.public_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("utf-8", "replace")
    form = request.form
    if not RequestValidator(cfg.twilio_auth_token).validate(url, form, signature):
        logger.warning("twilio: signature mismatch on %s", request.path)
        abort(403, description="invalid X-Twilio-Signature")
    return form


def _require(form, *names: str) -> None:
    missing = [n for n in names if not (form.get(n) or "").strip()]
    if missing:
        abort(400, description="missing required field(s): " + ", ".join(missing))
    too_long = [n for n in names if len(form.get(n, "")) > 80]
    if too_long:
        abort(400, description="field(s) too long: " + ", ".join(too_long))


def _address(raw: str) -> str:
    try:
        return normalise_phone(raw)
    except BadNumber:
        # a number phonenumbers does not know yet (new ranges) is still a person:
        # keep a well-formed E.164 as Twilio gave it rather than lose the message
        raw = raw.strip()
        if _RAW_E164.fullmatch(raw):
            return raw
        abort(400, description="From is not a phone number")
    raise AssertionError("unreachable")


def _media(form) -> list[dict]:
    media = []
    for i in range(MAX_MEDIA):
        url = form.get(f"MediaUrl{i}")
        if url:
            media.append({"url": url[:2000], "type": (form.get(f"MediaContentType{i}") or "")[:100]})
    return media


@bp.post("/sms/twilio")
def inbound():
    form = _verified_form()
    _require(form, "MessageSid", "From", "To", "AccountSid")
    body = form.get("Body") or ""
    media = _media(form)
    kind = "media" if media and not body.strip() else "text"
    got = persist(
        "inbound",
        {
            "channel": Contact.SMS,
            "provider_id": form["MessageSid"].strip(),
            "address": _address(form["From"]),
            "text": body,
            "kind": kind,
            "media": {"items": media} if media else None,
        },
    )
    if got is None:
        logger.info("twilio: inbound spooled")
    elif not got.created:
        logger.info("twilio: repeat delivery of inbound %s ignored", got.inbound_id)
    return _twiml()


@bp.post("/sms/twilio/status")
def status():
    form = _verified_form()
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    _require(form, "MessageSid", "AccountSid")
    if not status:
        abort(400, description="missing required field(s): MessageStatus")
    if status not in TWILIO_STATUSES:
        abort(400, description=f"unknown MessageStatus {status[:20]!r}")
    error_code = (form.get("ErrorCode") or "").strip() or None
    if error_code is not None and not error_code.isdigit():
        abort(400, description="ErrorCode must be a number")
    ref = request.args.get("o", "")
    result = persist(
        "twilio_status",
        {"sid": form["MessageSid"].strip(), "status": status, "error_code": error_code,
         "ref": int(ref) if ref.isdigit() and len(ref) < 12 else None},
    )
    if result == "unknown":
        logger.info("twilio: status for an unknown message")
    return _twiml()
