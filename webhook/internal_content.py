"""Internal content API for Rasa and the action server.

- ``POST /internal/nlg``: Rasa's callback NLG (rasa/core/nlg/callback.py sends
  ``{"response", "id", "arguments", "tracker", "channel": {"name"}}``). The
  answer is ``{"text": ...}`` in the tracker's ``language`` slot, else
  ``latest_message.metadata.language``, else DEFAULT_LANGUAGE; the Viber text
  when ``latest_message.metadata.channel`` is viber.
- ``GET /internal/agencies?q=``: the agency check.

Both need the internal token (webhook.ext.internal_only). Neither logs what
people wrote.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, jsonify, request

from lanpya.content import LANGUAGES, SLOT_VARIABLES, Content, ContentError, viber_buttons
from webhook.ext import config, internal_only

logger = logging.getLogger(__name__)

bp = Blueprint("internal_content", __name__, url_prefix="/internal")

def _content() -> Content:
    """The process's content, loaded on first use. Content re-reads its files by
    itself when one changes (each lookup checks), so the instance is kept:
    ``Content.load`` on every call checked the files twice per NLG request."""
    ext = current_app.extensions
    content = ext.get("lanpya_content")
    if content is None:
        cfg = config()
        content = ext["lanpya_content"] = Content.load(cfg.content_dir, cfg)
    return content


def _language(tracker: dict) -> str:
    slots = tracker.get("slots") or {}
    latest = tracker.get("latest_message") or {}
    metadata = latest.get("metadata") or {}
    for value in (slots.get("language"), metadata.get("language")):
        if isinstance(value, str) and value in LANGUAGES:
            return value
    return config().default_language


def _channel(tracker: dict, body: dict) -> str:
    metadata = (tracker.get("latest_message") or {}).get("metadata") or {}
    channel = metadata.get("channel")
    if channel in ("sms", "viber"):
        return channel
    name = ((body.get("channel") or {}).get("name") or "").lower()
    return "viber" if name == "viber" else "sms"


@bp.post("/nlg")
@internal_only
def nlg():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("response"), str):
        return jsonify({"error": "expected Rasa's NLG request: {response, tracker, ...}"}), 400
    key = body["response"]
    tracker = body.get("tracker") if isinstance(body.get("tracker"), dict) else {}
    arguments = body.get("arguments") if isinstance(body.get("arguments"), dict) else {}
    language = _language(tracker)
    channel = _channel(tracker, body)
    slots = tracker.get("slots") or {}
    variables = {name: slots[name] for name in SLOT_VARIABLES if slots.get(name) not in (None, "", "skipped")}
    variables.update({k: v for k, v in arguments.items() if isinstance(v, (str, int, float))})
    try:
        content = _content()
        text = content.answer(key, language, channel=channel, **variables)
    except KeyError:
        logger.error("nlg: no content for %s; sent utter_default", key)
        try:
            text = _content().answer("utter_default", language, channel=channel)
        except (KeyError, ContentError):
            abort(500)
    except ContentError:
        logger.exception("nlg: content failed to load")
        abort(500)
    out: dict = {"text": text}
    buttons = viber_buttons(key, language) if channel == "viber" else []
    if buttons:
        out["buttons"] = buttons
    return jsonify(out)


@bp.get("/agencies")
@internal_only
def agencies():
    query = (request.args.get("q") or "").strip()
    if not query:
        return jsonify({"error": "q (agency name or licence number) is required"}), 400
    if len(query) > 200:
        return jsonify({"error": "q is too long"}), 400
    result = _content().agency_check(query)
    return jsonify(result.as_dict())


def init_app(app) -> None:
    app.register_blueprint(bp)
