"""The ``lanpya`` command: the composition root that starts and wires the wings.

This is the only module in ``lanpya/`` that imports ``webhook``,
``conversations`` or ``campaigns``; nothing in the core imports it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid as uuidlib

import click

from lanpya import crypto
from lanpya.bootstrap import database, load_config
from lanpya.config import ROOT


@click.group()
def cli() -> None:
    """Lanpya: SMS and Viber safe-migration assistant and hotline."""


# --- set-up -------------------------------------------------------------------
@cli.command()
@click.option("--force", is_flag=True, help="overwrite an existing .env")
def init(force: bool) -> None:
    """Write .env with freshly generated keys (embedded default: SQLite, no providers)."""
    from lanpya.config import generate_secret

    path = ROOT / ".env"
    if path.exists() and not force:
        click.echo(".env exists; keeping it")
        return
    example = (ROOT / ".env.example").read_text()
    values = {
        "LANPYA_SECRET_KEY": generate_secret(32),
        "LANPYA_DATA_KEY": crypto.new_key(),
        "LANPYA_LOOKUP_KEY": crypto.new_lookup_key(),
        "LANPYA_INTERNAL_TOKEN": generate_secret(24),
    }
    lines = []
    for line in example.splitlines():
        key = line.split("=", 1)[0]
        if key in values:
            line = f"{key}={values[key]}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    click.echo("wrote .env with new keys (keep it secret; back up LANPYA_DATA_KEY)")


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations (SQLite file by default, PostgreSQL via DATABASE_URL)."""
    from lanpya.db import upgrade

    config = load_config("cli", validate=False)
    upgrade(config.database_url, revision)
    click.echo("database at " + revision)


@cli.group()
def keys() -> None:
    """Encryption keys."""


@keys.command("new")
def keys_new() -> None:
    """Print a new data key (put it first in LANPYA_DATA_KEY to rotate)."""
    click.echo(crypto.new_key())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt everything under the first LANPYA_DATA_KEY; rehash lookups."""
    from lanpya.retention import count_under_old_keys, rotate_keys

    config = load_config("cli")
    dbase = database(config)
    for name, n in rotate_keys(dbase).items():
        click.echo(f"{n:>8}  {name}")
    left = count_under_old_keys(dbase)
    click.echo(f"values still under an older key: {left}")
    sys.exit(1 if left else 0)


@cli.command()
@click.option("--dry-run", is_flag=True, help="show what would go; change nothing")
def purge(dry_run: bool) -> None:
    """Apply the retention periods (runs nightly in the scheduler)."""
    from lanpya.retention import purge as do_purge

    config = load_config("cli")
    for line in do_purge(database(config), config, dry_run=dry_run).lines():
        click.echo(line)


@cli.group()
def contact() -> None:
    """One contact's data."""


@contact.command("erase")
@click.option("--phone", help="the contact's number (any local form)")
@click.option("--viber", "viber_id", help="the contact's Viber id")
@click.option("--by", "staff_email", required=True, help="the staff member acting on the request (audited)")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def contact_erase(phone: str | None, viber_id: str | None, staff_email: str, yes: bool) -> None:
    """Erase a contact on their request: messages, tracker, profile, identifiers."""
    from sqlalchemy import select

    from lanpya.crypto import lookup_hash
    from lanpya.models import Contact, Staff
    from lanpya.phone import BadNumber, normalise_phone
    from lanpya.retention import erase_contact

    config = load_config("cli")
    if bool(phone) == bool(viber_id):
        raise click.UsageError("give exactly one of --phone or --viber")
    channel, address = ("viber", viber_id) if viber_id else ("sms", phone)
    if phone:
        try:
            address = normalise_phone(phone)
        except BadNumber as exc:
            raise click.BadParameter(str(exc), param_hint="--phone") from exc
    with database(config).session() as s:
        staff = s.scalar(select(Staff).where(Staff.email == staff_email.lower(), Staff.active.is_(True)))
        if staff is None:
            raise click.BadParameter("no active staff member with that email", param_hint="--by")
        found = s.scalar(select(Contact).where(Contact.channel == channel, Contact.address_hash == lookup_hash(address)))
        if found is None:
            click.echo("no such contact (nothing stored for that address)")
            return
        if not yes:
            click.confirm(f"erase contact {found.id}? this cannot be undone", abort=True)
        counts = erase_contact(s, found, config, staff_id=staff.id)
    click.echo("erased: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


# --- processes ----------------------------------------------------------------
@cli.command()
@click.option("--no-train", is_flag=True, help="do not train the bot first")
def run(no_train: bool) -> None:
    """Start every process (rasa, actions, web, worker, scheduler) on 127.0.0.1."""
    from lanpya import runner

    config = load_config("runner")
    sys.exit(runner.run(config, train=not no_train))


@cli.command()
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
@click.option("--bind", default=None, help="host:port (default 127.0.0.1:WEB_PORT)")
def web(workers: int, bind: str | None) -> None:
    """The web process (gunicorn serving webhook:create_app())."""
    config = load_config("web")
    from lanpya.db import upgrade

    upgrade(config.database_url)
    bind = bind or f"{os.environ.get('WEB_HOST', '127.0.0.1')}:{config.web_port}"
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    args = [
        gunicorn, "--bind", bind, "--workers", str(workers), "--threads", "4",
        "--worker-class", "gthread", "--access-logfile", "-", "--access-logformat",
        '%(h)s "%(m)s %(U)s" %(s)s %(L)ss',  # path without query string: no numbers in logs
        "--timeout", "30", "--graceful-timeout", "10", "webhook:create_app()",
    ]
    os.execv(gunicorn, args)


@cli.command()
@click.option("--name", default=None, help="worker name (default host-pid)")
def worker(name: str | None) -> None:
    """The conversation worker: inbound → Rasa → outbox → providers."""
    config = load_config("worker")
    from conversations.worker import main

    main(config, database(config), name=name)


@cli.command()
@click.option("--name", default=None)
def scheduler(name: str | None) -> None:
    """The campaign engine and escalation chaser (one leader, others standby)."""
    config = load_config("scheduler")
    from campaigns.scheduler import main

    main(config, database(config), name=name)


def _rasa_python() -> str:
    return str(ROOT / ".venv-rasa" / "bin" / "python")


@cli.command()
def rasa() -> None:
    """The Rasa server (runs bot/serve.py in the Rasa environment)."""
    load_config("rasa")
    os.execv(_rasa_python(), [_rasa_python(), str(ROOT / "bot" / "serve.py"), "rasa"])


@cli.command()
def actions() -> None:
    """The Rasa action server."""
    load_config("actions")
    os.execv(_rasa_python(), [_rasa_python(), str(ROOT / "bot" / "serve.py"), "actions"])


@cli.command()
@click.option("--force", is_flag=True)
def train(force: bool) -> None:
    """Train the bot if bot/ changed since the last model."""
    load_config("train", validate=False)
    args = [_rasa_python(), str(ROOT / "bot" / "serve.py"), "train"] + (["--force"] if force else [])
    os.execv(args[0], args)


# --- talking to it --------------------------------------------------------------
@cli.command()
@click.option("--from", "sender", required=True, help="phone number (+959...) or Viber id")
@click.option("--text", required=True)
@click.option("--channel", type=click.Choice(["sms", "viber"]), default="sms")
@click.option("--json", "as_json", is_flag=True)
@click.option("--timeout", default=30.0, show_default=True, help="seconds to wait for replies")
def say(sender: str, text: str, channel: str, as_json: bool, timeout: float) -> None:
    """Send one message through the same path a provider webhook takes and
    print the replies, detected language, intent and any case opened."""
    from sqlalchemy import select

    from lanpya.ingest import receive
    from lanpya.models import Inbound, Outbox
    from lanpya.phone import BadNumber, normalise_phone

    config = load_config("cli")
    dbase = database(config)
    if channel == "sms":
        try:
            sender = normalise_phone(sender)
        except BadNumber as exc:
            raise click.BadParameter(str(exc), param_hint="--from") from exc
    with dbase.session() as s:
        got = receive(s, channel=channel, provider_id=f"say-{uuidlib.uuid4().hex}", address=sender, text=text)
    deadline = time.monotonic() + timeout
    result: dict = {}
    while time.monotonic() < deadline:
        with dbase.session() as s:
            msg = s.get(Inbound, got.inbound_id)
            if msg.state in (Inbound.DONE, Inbound.HANDOFF, Inbound.FAILED):
                replies = s.scalars(
                    select(Outbox).where(Outbox.inbound_id == msg.id).order_by(Outbox.seq, Outbox.id)
                ).all()
                result = {
                    "state": msg.state,
                    "language": msg.language,
                    "keyword": msg.keyword,
                    "intent": msg.intent,
                    "confidence": msg.confidence,
                    "case_id": msg.case_id,
                    "replies": [r.body for r in replies],
                }
                break
        time.sleep(0.2)
    if not result:
        click.echo("no answer in time: is `lanpya run` running?", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    for reply in result["replies"]:
        click.echo(f"< {reply}")
    click.echo(
        f"  language={result['language']} intent={result['intent'] or result['keyword']}"
        f" confidence={result['confidence']} case={result['case_id']} state={result['state']}"
    )


@cli.command()
@click.option("--all", "show_all", is_flag=True, help="not only unsent messages")
@click.option("--limit", default=20, show_default=True)
def outbox(show_all: bool, limit: int) -> None:
    """Show the outbox: what would be (or was) sent. Numbers are masked."""
    from sqlalchemy import select

    from lanpya.models import Contact, Outbox
    from lanpya.phone import masked

    config = load_config("cli")
    with database(config).session() as s:
        q = select(Outbox).order_by(Outbox.id.desc()).limit(limit)
        if not show_all:
            q = q.where(Outbox.state.in_([Outbox.UNSENT, Outbox.QUEUED]))
        rows = list(reversed(s.scalars(q).all()))
        for row in rows:
            to = "staff" if row.staff_id else "?"
            if row.contact_id:
                c = s.get(Contact, row.contact_id)
                to = masked(c.address) if c and c.address and c.channel == "sms" else f"{row.channel}:{c.uuid[:8] if c else '?'}"
            click.echo(f"#{row.id} {row.created_at:%Y-%m-%d %H:%M:%S} {row.kind:8} {row.channel:5} {row.state:9} "
                       f"{row.segments}x{row.encoding} to {to}")
            click.echo(f"    {row.body}")
        if not rows:
            click.echo("(outbox empty)")


# --- areas register their own command groups -------------------------------------
def _add_area_commands() -> None:
    import importlib

    for module_path, attr in AREA_COMMANDS:
        cli.add_command(getattr(importlib.import_module(module_path), attr))


#: (module, click command) of each area; listed here, wired here
AREA_COMMANDS: list[tuple[str, str]] = [
    ("lanpya.channels.cli", "channels"),
    ("lanpya.staff", "staff_cli"),
    ("lanpya.staff", "roster_cli"),
    ("campaigns.cli", "campaign"),
    ("lanpya.content_cli", "content_cli"),
    ("lanpya.insights", "insights_cli"),
]

_add_area_commands()


def main() -> None:
    cli(prog_name="lanpya")


if __name__ == "__main__":
    main()
