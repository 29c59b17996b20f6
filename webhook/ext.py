"""Access to the app's services from inside a request."""

from __future__ import annotations

import hmac
from functools import wraps

from flask import abort, current_app, request

from lanpya.config import Config
from lanpya.db import Database


def config() -> Config:
    return current_app.extensions["lanpya_config"]


def db() -> Database:
    return current_app.extensions["lanpya_db"]


def internal_only(view):
    """For /internal/...: the action server and the NLG caller present the
    internal token (``Authorization: Bearer`` or ``?token=``)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        expected = config().internal_token
        auth = request.headers.get("Authorization", "")
        given = auth[7:] if auth.startswith("Bearer ") else request.args.get("token", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            abort(401)
        return view(*args, **kwargs)

    return wrapper
