"""``lanpya channels …``: the state of the channels, the spool and the outbox,
for operators. Listed in ``AREA_COMMANDS`` of ``lanpya/cli.py``."""

from __future__ import annotations

import sys

import click
from sqlalchemy import func, select, update

from lanpya import spool
from lanpya.bootstrap import load_config
from lanpya.channels.dispatch import dispatch_due, sender_for
from lanpya.channels.viber_sender import ViberSender
from lanpya.config import Config
from lanpya.db import Database
from lanpya.models import Outbox


def _setup(ctx: click.Context) -> tuple[Config, Database]:
    """Tests pass ``obj={"config": ..., "db": ...}``; the command line reads the environment."""
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    config = obj.get("config")
    if config is None:
        config = load_config("cli")
    return config, obj.get("db") or Database.from_config(config)


def status_lines(config: Config, db: Database) -> list[str]:
    lines = []
    for channel in ("sms", "viber"):
        lines.append(f"{channel}: {'configured' if sender_for(config, channel) else 'NOT configured (rows stay unsent)'}")
    with db.session() as s:
        counts = s.execute(
            select(Outbox.channel, Outbox.state, func.count()).group_by(Outbox.channel, Outbox.state)
        ).all()
    for channel, state, n in sorted(counts):
        lines.append(f"outbox {channel:5} {state:11} {n}")
    lines.append(f"spool: {len(spool.pending(config.spool_dir))} file(s) waiting in {config.spool_dir}")
    return lines


def requeue_unsent(db: Database, channel: str | None = None) -> int:
    from lanpya import clock

    with db.session() as s:
        q = update(Outbox).where(Outbox.state == Outbox.UNSENT)
        if channel:
            q = q.where(Outbox.channel == channel)
        return s.execute(q.values(state=Outbox.QUEUED, error=None, next_attempt_at=clock.now())).rowcount or 0


@click.group("channels")
def channels() -> None:
    """Twilio SMS and Viber: status, spool, outbox, webhook set-up."""


@channels.command("status")
@click.pass_context
def status_cmd(ctx: click.Context) -> None:
    """Which channels are configured, the outbox by state, the spool."""
    config, db = _setup(ctx)
    for line in status_lines(config, db):
        click.echo(line)


@channels.command("replay-spool")
@click.pass_context
def replay_cmd(ctx: click.Context) -> None:
    """Store what the web process spooled while the database was down."""
    config, db = _setup(ctx)
    click.echo(f"replayed {spool.replay(db, config)} record(s); {len(spool.pending(config.spool_dir))} left")


@channels.command("requeue-unsent")
@click.option("--channel", type=click.Choice(["sms", "viber"]), default=None)
@click.pass_context
def requeue_cmd(ctx: click.Context, channel: str | None) -> None:
    """After configuring credentials: queue the rows kept as unsent."""
    _config, db = _setup(ctx)
    click.echo(f"{requeue_unsent(db, channel)} row(s) queued again")


@channels.command("send")
@click.option("--limit", default=100, show_default=True)
@click.pass_context
def send_cmd(ctx: click.Context, limit: int) -> None:
    """Send what is due once (the worker does this continuously)."""
    config, db = _setup(ctx)
    click.echo(f"{dispatch_due(db, config, 'cli', limit)} row(s) handled")


@channels.command("viber-webhook")
@click.pass_context
def viber_webhook_cmd(ctx: click.Context) -> None:
    """Register PUBLIC_URL/viber as the Viber bot's webhook (the web process must be up)."""
    config, _db = _setup(ctx)
    if not ViberSender.configured(config):
        click.echo("VIBER_AUTH_TOKEN is not set", err=True)
        sys.exit(2)
    ok, detail = ViberSender(config).set_webhook(config.public_url + "/viber")
    click.echo(f"set_webhook {config.public_url}/viber: {detail}")
    if not ok:
        sys.exit(1)
