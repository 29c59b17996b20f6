"""Start-up of every command and process: read the configuration, check it
for the process's role (fail closed, naming the key), configure encryption
and the redacting logs. One function, used by ``lanpya/cli.py`` and by every
area's commands (``campaigns/cli.py``, ``lanpya/channels/cli.py``, staff,
insights), so they cannot drift apart.
"""

from __future__ import annotations

import sys

import click

from lanpya import crypto, logs
from lanpya.config import Config, ConfigError


def load_config(role: str = "cli", validate: bool = True) -> Config:
    """The validated configuration for ``role``; exits 2 with the reason if it is unusable."""
    try:
        config = Config.from_env()
        if validate:
            config.validate(role)
        crypto.configure(config)
    except ConfigError as exc:
        click.echo(f"lanpya: {exc}", err=True)
        sys.exit(2)
    logs.setup(config.log_level, role)
    return config


def database(config: Config):
    from lanpya.db import Database

    return Database.from_config(config)
