"""The web process and the disk spool: refuse to start when the spool
directory is not writable, and replay what is waiting in it at start."""

from __future__ import annotations

import logging

from flask import Flask

from lanpya import spool

logger = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    config = app.extensions["lanpya_config"]
    spool.check_writable(config.spool_dir)  # ConfigError: the app does not start
    try:
        spool.replay(app.extensions["lanpya_db"], config)
    except Exception as exc:  # noqa: BLE001 - the worker loop replays later
        logger.warning("spool replay at start failed (%s); the worker will retry", type(exc).__name__)
