"""Internal API about one contact, for Rasa's action server.

Every route needs the internal token (``webhook.ext.internal_only``). The
contact is named by its random ``uuid`` (what Rasa knows), never by number.

- ``POST /internal/contacts/<uuid>/language`` ``{"language"}`` → ``{"ok": true}``
  (conversation: the contact chose a language; detection no longer overrides it)
- ``POST /internal/contacts/<uuid>/subscribe`` ``{"township", "state", "roles": [...]}``
  → ``{"ok": true, "opted_out": bool}`` (campaigns: the contact joined the
  awareness messages; ``joined_at`` is set once, for sequences)
- ``POST /internal/contacts/<uuid>/erase`` ``{"confirm": true}`` → ``{"ok": true}``
  (data protection: the contact confirmed DELETE; see lanpya.retention.erase_contact)
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify, request
from sqlalchemy import select

from lanpya.models import Contact
from webhook.ext import config, db, internal_only

logger = logging.getLogger(__name__)

bp = Blueprint("internal_contacts", __name__, url_prefix="/internal")

LANGUAGES = ("en", "my", "kac", "shn")


def _contact(session, uuid: str) -> Contact:
    contact = session.scalar(select(Contact).where(Contact.uuid == uuid))
    if contact is None or contact.erased_at is not None:
        abort(404)
    return contact


def _json() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, "expected a JSON object")
    return data


@bp.post("/contacts/<uuid>/language")
@internal_only
def set_language(uuid: str):
    language = _json().get("language")
    if language not in LANGUAGES:
        return jsonify({"error": f"language must be one of {', '.join(LANGUAGES)}"}), 400
    with db().session() as s:
        contact = _contact(s, uuid)
        contact.language = language
        contact.language_chosen = True
        logger.info("contact %s chose language %s", contact.id, language)
    return jsonify({"ok": True})


@bp.post("/contacts/<uuid>/subscribe")
@internal_only
def subscribe(uuid: str):
    """campaigns: the contact joined (JOIN keyword or the bot's subscribe form)."""
    from campaigns.contacts import subscribe as do_subscribe
    from campaigns.engine import CampaignError

    data = _json()
    with db().session() as s:
        contact = _contact(s, uuid)
        try:
            do_subscribe(s, contact, township=data.get("township"), state=data.get("state"),
                         roles=data.get("roles"))
        except CampaignError as exc:
            return jsonify({"error": str(exc)}), 400
        opted_out = contact.opted_out
    # an opted-out contact stays opted out until START: JOIN alone does not override STOP
    return jsonify({"ok": True, "opted_out": opted_out})


@bp.post("/contacts/<uuid>/erase")
@internal_only
def erase(uuid: str):
    """The contact confirmed that their data should be deleted."""
    from lanpya.retention import erase_contact

    if _json().get("confirm") is not True:
        return jsonify({"error": "erasure needs {\"confirm\": true}"}), 400
    with db().session() as s:
        erase_contact(s, _contact(s, uuid), config())
    return jsonify({"ok": True})
