"""Viber REST bot callbacks: ``POST /viber``.

Courier order: size and content type → ``X-Viber-Content-Signature``
(HMAC-SHA256 of the raw body with the bot token, compared in constant time)
→ JSON → the event → persist (or spool) → 200.

Events: ``webhook`` (set-up handshake), ``conversation_started`` (answered in
the response body with the welcome and a language keyboard — the one reply
Viber allows before a user subscribes; nothing is stored), ``subscribed``,
``unsubscribed`` (the contact left: opted out, unreachable), ``message``
(text; stickers, pictures, locations ... are stored with their kind and
answered by the worker), ``delivered`` / ``seen`` / ``failed`` (the outbox row
by message token). Unknown events are acknowledged and logged. Messages are
deduplicated by ``message_token``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from flask import Blueprint, abort, jsonify, request

from lanpya.models import Contact
from webhook.channel_http import guard_body, install_error_handlers, persist
from webhook.ext import config

logger = logging.getLogger(__name__)

bp = Blueprint("viber", __name__)
install_error_handlers(bp)

#: Viber message type → Inbound.kind when there is no text to read
KINDS = {
    "picture": "media",
    "video": "media",
    "file": "media",
    "url": "media",
    "rich_media": "media",
    "sticker": "sticker",
    "location": "location",
    "contact": "contact",
}
#: language buttons of the welcome keyboard: what each button sends back
LANGUAGE_BUTTONS = (("my", "မြန်မာ"), ("kac", "Jinghpaw"), ("shn", "တႆး"), ("en", "English"))
LANGUAGES = {code for code, _ in LANGUAGE_BUTTONS}


def _ok(**extra):
    return jsonify({"status": 0, "status_message": "ok", **extra})


def _verified_event() -> dict:
    cfg = config()
    if not cfg.viber_auth_token:
        abort(403, description="Viber is not configured")  # fail closed
    guard_body("application/json")
    raw = request.get_data(cache=True)
    if request.content_length is None and len(raw) >= cfg.max_body_bytes:
        abort(413, description=f"body over {cfg.max_body_bytes} bytes")  # chunked, cut at the limit
    given = request.headers.get("X-Viber-Content-Signature", "").strip().lower()
    if not given:
        abort(403, description="missing X-Viber-Content-Signature")
    expected = hmac.new(cfg.viber_auth_token.encode(), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        logger.warning("viber: signature mismatch")
        abort(403, description="invalid X-Viber-Content-Signature")
    try:
        event = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        abort(400, description="malformed JSON")
    if not isinstance(event, dict):
        abort(400, description="expected a JSON object")
    return event


def _str_field(obj: dict, name: str, where: str, max_len: int = 200) -> str:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        abort(400, description=f"missing required field: {where}{name}")
    value = str(value).strip()
    if len(value) > max_len:
        abort(400, description=f"field too long: {where}{name}")
    return value


def _dict_field(obj: dict, name: str) -> dict:
    value = obj.get(name)
    if not isinstance(value, dict):
        abort(400, description=f"missing required field: {name}")
    return value


@bp.post("/viber")
def callback():
    event = _verified_event()
    kind = event.get("event")
    if not isinstance(kind, str) or not kind:
        abort(400, description="missing required field: event")
    handler = HANDLERS.get(kind)
    if handler is None:
        logger.info("viber: unknown event type %r acknowledged", kind[:40])
        return _ok()
    return handler(event)


def _webhook(event: dict):
    logger.info("viber: webhook set-up handshake")
    return _ok()


def _message(event: dict):
    token = _str_field(event, "message_token", "", 80)
    sender = _dict_field(event, "sender")
    user_id = _str_field(sender, "id", "sender.")
    message = _dict_field(event, "message")
    mtype = _str_field(message, "type", "message.", 40)
    text = message.get("text") if isinstance(message.get("text"), str) else ""
    if mtype == "text":
        kind, media = "text", None
    else:
        media = {"type": mtype}
        for key in ("media", "thumbnail", "file_name", "size", "sticker_id", "location", "contact", "duration"):
            if key in message:
                media[key] = message[key]
        # a picture with a caption is a message to read; without one, the worker answers
        kind = "text" if text.strip() else KINDS.get(mtype, "media")
    got = persist(
        "inbound",
        {"channel": Contact.VIBER, "provider_id": token, "address": user_id, "text": text,
         "kind": kind, "media": media},
    )
    if got is not None and not got.created:
        logger.info("viber: repeat delivery of inbound %s ignored", got.inbound_id)
    return _ok()


def _status(event: dict):
    token = _str_field(event, "message_token", "", 80)
    user_id = event.get("user_id") if isinstance(event.get("user_id"), str) else None
    persist("viber_status", {"token": token, "event": event["event"], "user_id": user_id})
    return _ok()


def _subscribed(event: dict):
    user = _dict_field(event, "user")
    persist("viber_subscription", {"user_id": _str_field(user, "id", "user."), "subscribed": True})
    return _ok()


def _unsubscribed(event: dict):
    persist("viber_subscription", {"user_id": _str_field(event, "user_id", ""), "subscribed": False})
    return _ok()


def welcome(language: str | None) -> dict | None:
    """The conversation_started answer: the welcome text and a language keyboard."""
    cfg = config()
    language = language if language in LANGUAGES else cfg.default_language
    try:
        from lanpya.content import Content  # cached per process, reloaded when files change

        text = Content.load(cfg.content_dir, cfg).answer("welcome", language, channel="viber")
    except Exception as exc:  # noqa: BLE001 - no welcome is better than a 500
        logger.error("viber: no welcome text (%s: %s)", type(exc).__name__, str(exc)[:200])
        return None
    buttons = [
        {"Columns": 3, "Rows": 1, "ActionType": "reply", "ActionBody": label, "Text": label}
        for _code, label in LANGUAGE_BUTTONS
    ]
    return {
        "sender": {"name": cfg.viber_bot_name},
        "type": "text",
        "text": text,
        "min_api_version": 3,
        "keyboard": {"Type": "keyboard", "DefaultHeight": False, "Buttons": buttons},
    }


def _conversation_started(event: dict):
    user = _dict_field(event, "user")
    _str_field(user, "id", "user.")
    lang = user.get("language") if isinstance(user.get("language"), str) else None
    lang = (lang or "").split("-")[0].lower() or None
    reply = welcome(lang)
    return jsonify(reply) if reply else _ok()


HANDLERS = {
    "webhook": _webhook,
    "message": _message,
    "delivered": _status,
    "seen": _status,
    "failed": _status,
    "subscribed": _subscribed,
    "unsubscribed": _unsubscribed,
    "conversation_started": _conversation_started,
}
