"""What the channel webhooks share: body limits, error answers that never
turn into a 500, and persisting through the spool."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify, request
from werkzeug.exceptions import HTTPException

from lanpya import spool
from webhook.ext import config, db

logger = logging.getLogger(__name__)


def guard_body(mimetype: str) -> None:
    """413 over MAX_BODY_BYTES, 415 for the wrong content type."""
    limit = config().max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        abort(413, description=f"body over {limit} bytes")
    if request.mimetype != mimetype:
        abort(415, description=f"expected {mimetype}")


def persist(op: str, payload: dict):
    """Apply or spool; 503 (the provider retries) only if the disk fails too."""
    try:
        result, _spooled = spool.persist(db(), config().spool_dir, op, payload)
    except spool.SpoolError:
        abort(503, description="storage unavailable, retry later")
    return result


def install_error_handlers(bp: Blueprint) -> None:
    @bp.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        logger.info("%s %s -> %s", request.method, request.path, exc.code)
        return jsonify({"error": exc.description or exc.name}), exc.code
