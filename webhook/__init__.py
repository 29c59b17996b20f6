"""The web process: channel webhooks, staff console, JSON and internal APIs.

It never calls Rasa or a provider inside a webhook request: it verifies,
persists and acknowledges.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask

from lanpya import crypto
from lanpya.config import Config
from lanpya.db import Database

logger = logging.getLogger(__name__)


def create_app(config: Config | None = None, db: Database | None = None) -> Flask:
    config = config or Config.from_env()
    config.validate("web")
    crypto.configure(config)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.public_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=config.session_lifetime_min),
        TESTING=config.env == "test",
    )
    app.extensions["lanpya_config"] = config
    app.extensions["lanpya_db"] = db or Database.from_config(config)

    for name in BLUEPRINTS:
        _register(app, name)
    return app


#: each area's module: it has ``init_app(app)`` or a blueprint ``bp``
BLUEPRINTS: list[str] = [
    "webhook.health",
    "webhook.spool",
    "webhook.twilio",
    "webhook.viber",
    "webhook.internal_contacts",
    "webhook.auth",
    "webhook.campaigns_console",
    "webhook.internal_cases",
    "webhook.console",
    "webhook.api",
    "webhook.internal_content",
    "webhook.insights",
]


def _register(app: Flask, module_path: str) -> None:
    import importlib

    module = importlib.import_module(module_path)
    init = getattr(module, "init_app", None)
    if init is not None:
        init(app)
    else:
        app.register_blueprint(module.bp)
