"""``lanpya run``: every process on 127.0.0.1, logs interleaved and prefixed,
all stopped on Ctrl-C (honcho's process manager)."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys

from sqlalchemy import func, select

from lanpya.config import ROOT, Config, generate_secret
from lanpya.db import Database, upgrade
from lanpya.models import Staff
from lanpya.processes import PROCESSES

logger = logging.getLogger(__name__)


def child_env(config: Config) -> dict[str, str]:
    """The environment every child gets: ours (with .env loaded) plus paths."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("LANPYA_VAR_DIR", str(config.var_dir))
    env.setdefault("INTERNAL_URL", config.internal_url)
    env.setdefault("RASA_PORT", str(config.rasa_port))
    env.setdefault("ACTION_PORT", str(config.action_port))
    env.setdefault("WEB_PORT", str(config.web_port))
    return env


def ensure_admin(db: Database) -> tuple[str, str] | None:
    """On first run, create an admin and return (email, password) to print once."""
    from werkzeug.security import generate_password_hash

    with db.session() as s:
        if s.scalar(select(func.count()).select_from(Staff)):
            return None
        password = generate_secret(12)
        s.add(Staff(email="admin@localhost", name="Admin", role=Staff.ADMIN,
                    password_hash=generate_password_hash(password)))
    return "admin@localhost", password


def train_bot(env: dict[str, str]) -> int:
    python = ROOT / ".venv-rasa" / "bin" / "python"
    if not python.exists():
        print("the Rasa environment is missing: run `make setup` first", file=sys.stderr)
        return 2
    return subprocess.call([str(python), str(ROOT / "bot" / "serve.py"), "train"], cwd=ROOT, env=env)


def run(config: Config, train: bool = True) -> int:
    from honcho.manager import Manager
    from honcho.printer import Printer

    config.var_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.database_url)
    db = Database.from_config(config)
    created = ensure_admin(db)
    db.dispose()
    env = child_env(config)
    if train and train_bot(env) != 0:
        print("bot training failed", file=sys.stderr)
        return 1
    if created:
        print(f"\n  first run: staff console admin is {created[0]} with password {created[1]}"
              "\n  (shown once; change it after logging in)\n", flush=True)
    if not (config.twilio_enabled or config.viber_enabled):
        print("  no provider configured: replies stay in the outbox (see `lanpya outbox`)\n", flush=True)
    manager = Manager(Printer(sys.stdout))
    for proc in PROCESSES:
        manager.add_process(proc.name, shlex.join(proc.local_command()), env=env, cwd=str(ROOT))
    manager.loop()
    return manager.returncode or 0
