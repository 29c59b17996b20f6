"""GET /healthz: each component up or down; 503 if any is down."""

from __future__ import annotations

from datetime import timedelta

import requests
from flask import Blueprint, jsonify
from sqlalchemy import select, text

from lanpya import clock
from lanpya.models import Heartbeat
from webhook.ext import config, db

bp = Blueprint("health", __name__)

#: a worker or scheduler that has not beaten for this long is down
STALE = timedelta(seconds=30)


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@bp.get("/healthz")
def healthz():
    cfg = config()
    components: dict[str, str] = {}
    beats: list[Heartbeat] = []
    try:
        with db().session() as s:
            s.execute(text("SELECT 1"))
            beats = list(s.scalars(select(Heartbeat)))
        components["database"] = "up"
    except Exception:  # noqa: BLE001 - health reports, never raises
        components["database"] = "down"
    # every Rasa replica (RASA_URL may list several): one away is reported, although
    # the worker fails its contacts over to the others
    components["rasa"] = (
        "up" if all(_http_ok(u + "/status") or _http_ok(u) for u in cfg.rasa_urls) else "down"
    )
    action_base = cfg.action_server_url.rsplit("/webhook", 1)[0]
    components["actions"] = "up" if _http_ok(action_base + "/health") else "down"
    fresh = clock.now() - STALE
    for kind in ("worker", "scheduler"):
        alive = [b for b in beats if b.kind == kind and b.beat_at >= fresh]
        components[kind] = "up" if alive else "down"
    ok = all(v == "up" for v in components.values())
    return jsonify({"status": "ok" if ok else "degraded", "components": components}), (200 if ok else 503)
