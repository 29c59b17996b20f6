"""``lanpya campaign ...``: audiences, campaigns, preview, schedule, pause,
reports and CSV import, for scripting. Every command prints text, or JSON
with ``--json``."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy import select

from campaigns import contacts, engine
from campaigns.engine import CampaignError
from lanpya.bootstrap import load_config
from lanpya.config import Config
from lanpya.db import Database
from lanpya.models import Audience, Campaign


def _setup() -> tuple[Config, Database]:
    config = load_config("cli")
    return config, Database.from_config(config)


def _fail(exc: Exception) -> None:
    click.echo(f"refused: {exc}", err=True)
    sys.exit(1)


def _dt(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO date-time (UTC), e.g. 2026-03-02T03:00") from exc
    if when.tzinfo is not None:
        from datetime import UTC

        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _out(obj, as_json: bool, text: str) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str) if as_json else text)


@click.group("campaign")
def campaign() -> None:
    """Awareness campaigns: audiences, content, schedules, reports."""


# --- audiences ------------------------------------------------------------------------
@campaign.command("audience")
@click.argument("name")
@click.option("--language", "languages", multiple=True)
@click.option("--state", "states", multiple=True)
@click.option("--township", "townships", multiple=True)
@click.option("--role", "roles", multiple=True)
@click.option("--channel", "channels", multiple=True)
@click.option("--country", "countries", multiple=True)
@click.option("--json", "as_json", is_flag=True)
def audience_create(name, languages, states, townships, roles, channels, countries, as_json) -> None:
    """Save an audience (a filter over contacts) and show its size now."""
    config, db = _setup()
    flt = {k: list(v) for k, v in dict(languages=languages, states=states, townships=townships, roles=roles,
                                       channels=channels, countries=countries).items() if v}
    try:
        with db.session() as s:
            a = engine.create_audience(s, name, flt)
            size = engine.audience_size(s, a.filter, config)
            out = {"id": a.id, "name": a.name, "filter": a.filter, "size": size}
    except CampaignError as exc:
        _fail(exc)
    _out(out, as_json, f"audience #{out['id']} {out['name']}: {size} contact(s) now")


@campaign.command("audiences")
def audience_list() -> None:
    """Saved audiences with their live size."""
    config, db = _setup()
    with db.session() as s:
        for a in s.scalars(select(Audience).order_by(Audience.id)):
            click.echo(f"#{a.id} {a.name}: {engine.audience_size(s, a.filter or {}, config)} — "
                       f"{json.dumps(a.filter, ensure_ascii=False)}")


# --- campaigns --------------------------------------------------------------------------
@campaign.command("create")
@click.option("--name", required=True)
@click.option("--audience", "audience_id", type=int, required=True)
@click.option("--kind", type=click.Choice([Campaign.ONCE, Campaign.CRON, Campaign.SEQUENCE]), default=Campaign.ONCE)
@click.option("--run-at", help="UTC ISO time (once), or start of a cron/sequence")
@click.option("--cron", help="cron expression read in Asia/Yangon, e.g. '0 9 * * mon'")
@click.option("--text", "texts", multiple=True, help="LANG=TEXT, or STEP:DAYS:LANG=TEXT for sequences")
@click.option("--text-file", "text_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="LANG=PATH (UTF-8 file), or STEP:DAYS:LANG=PATH")
@click.option("--quiet", help="quiet hours START-END local time (default from QUIET_START/QUIET_END)")
@click.option("--json", "as_json", is_flag=True)
def create(name, audience_id, kind, run_at, cron, texts, text_files, quiet, as_json) -> None:
    """Create a draft campaign with its per-language texts."""
    config, db = _setup()
    messages = []
    for spec, read in [(t, False) for t in texts] + [(t, True) for t in text_files]:
        head, sep, value = spec.partition("=")
        if not sep:
            raise click.BadParameter(f"{spec!r}: expected LANG=TEXT")
        parts = head.split(":")
        step, days, lang = (0, None, parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]), parts[2])
        body = Path(value).read_text(encoding="utf-8") if read else value
        messages.append({"step": step, "offset_days": days, "language": lang, "body": body})
    qs, _, qe = (quiet or "").partition("-")
    try:
        with db.session() as s:
            c = engine.create_campaign(s, config, name=name, audience_id=audience_id, schedule_kind=kind,
                                       run_at=_dt(run_at), cron=cron, messages=messages,
                                       quiet_start=qs or None, quiet_end=qe or None)
            out = {"id": c.id, "status": c.status}
    except CampaignError as exc:
        _fail(exc)
    _out(out, as_json, f"campaign #{out['id']} created ({out['status']})")


@campaign.command("list")
def list_campaigns() -> None:
    _config, db = _setup()
    with db.session() as s:
        for c in s.scalars(select(Campaign).order_by(Campaign.id)):
            when = c.cron or (c.run_at.isoformat() if c.run_at else "-")
            click.echo(f"#{c.id} {c.status:18} {c.schedule_kind:8} {when:20} audience #{c.audience_id} {c.name}")


@campaign.command("preview")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def preview_cmd(campaign_id: int, as_json: bool) -> None:
    """Recipients by language and channel, segments, cost, time to deliver, warnings."""
    config, db = _setup()
    with db.session() as s:
        c = s.get(Campaign, campaign_id)
        if c is None:
            _fail(CampaignError(f"no campaign {campaign_id}"))
        p = engine.preview(s, config, c)
    if as_json:
        _out(p, True, "")
        return
    click.echo(f"campaign #{campaign_id}: {p['recipients']} recipient(s)")
    click.echo("  by language: " + ", ".join(f"{k} {v}" for k, v in sorted(p["by_language"].items())))
    click.echo("  by channel:  " + ", ".join(f"{k} {v}" for k, v in sorted(p["by_channel"].items())))
    for t in p["texts"]:
        click.echo(f"  step {t['step']} {t['language']:3} {t['encoding']} {t['segments']} segment(s), "
                   f"{t['remaining']} characters left")
    click.echo(f"  SMS segments: {p['segments']}; estimated cost {p['estimated_cost']:.2f} {p['currency']}")
    for ch, secs in p["seconds_to_deliver"].items():
        click.echo(f"  time to deliver ({ch}): {secs / 60:.1f} min")
    if p["needs_approval"]:
        click.echo(f"  needs a second staff member's approval (over {p['approval_threshold']} recipients)")
    for w in p["warnings"]:
        click.echo(f"  WARNING: {w}")


def _transition(campaign_id: int, action: str, **kw) -> None:
    config, db = _setup()
    try:
        with db.session() as s:
            if action == "schedule":
                c = s.get(Campaign, campaign_id)
                if c is None:
                    raise CampaignError(f"no campaign {campaign_id}")
                engine.schedule(s, config, c, run_at=kw.get("run_at"), cron=kw.get("cron"))
                click.echo(f"campaign #{campaign_id} {c.status}")
            elif action == "approve":
                c = s.get(Campaign, campaign_id)
                if c is None:
                    raise CampaignError(f"no campaign {campaign_id}")
                engine.approve(s, config, c, kw["staff_id"])
                click.echo(f"campaign #{campaign_id} approved: {c.status}")
            else:
                n = getattr(engine, action)(s, campaign_id)
                click.echo(f"campaign #{campaign_id} {action}: {n} outbox row(s) affected")
    except CampaignError as exc:
        _fail(exc)


@campaign.command("schedule")
@click.argument("campaign_id", type=int)
@click.option("--run-at")
@click.option("--cron")
def schedule_cmd(campaign_id: int, run_at: str | None, cron: str | None) -> None:
    """Schedule a draft (large audiences wait for a second staff member's approval)."""
    _transition(campaign_id, "schedule", run_at=_dt(run_at), cron=cron)


@campaign.command("approve")
@click.argument("campaign_id", type=int)
@click.option("--staff", "staff_id", type=int, required=True, help="id of the approving staff member")
def approve_cmd(campaign_id: int, staff_id: int) -> None:
    _transition(campaign_id, "approve", staff_id=staff_id)


@campaign.command("pause")
@click.argument("campaign_id", type=int)
def pause_cmd(campaign_id: int) -> None:
    """Stop sending now (queued messages are held)."""
    _transition(campaign_id, "pause")


@campaign.command("resume")
@click.argument("campaign_id", type=int)
def resume_cmd(campaign_id: int) -> None:
    _transition(campaign_id, "resume")


@campaign.command("cancel")
@click.argument("campaign_id", type=int)
def cancel_cmd(campaign_id: int) -> None:
    """Cancel: nothing more of this campaign is sent."""
    _transition(campaign_id, "cancel")


@campaign.command("report")
@click.argument("campaign_id", type=int)
@click.option("--csv", "as_csv", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def report_cmd(campaign_id: int, as_csv: bool, as_json: bool) -> None:
    """Queued, sent, delivered, failed (by error code), opted out afterwards."""
    config, db = _setup()
    try:
        with db.session() as s:
            rep = engine.report(s, config, campaign_id)
    except CampaignError as exc:
        _fail(exc)
    if as_csv:
        click.echo(engine.report_csv(rep), nl=False)
        return
    if as_json:
        _out(rep, True, "")
        return
    t = rep["totals"]
    click.echo(f"campaign #{campaign_id} {rep['name']} ({rep['status']})")
    click.echo("  " + ", ".join(f"{k} {t[k]}" for k in engine.REPORT_STATES) + f", opted out after {t['opted_out_after']}")
    if t["failed_by_code"]:
        click.echo("  failed by code: " + ", ".join(f"{k} {v}" for k, v in sorted(t["failed_by_code"].items())))
    for f in rep["fires"]:
        click.echo(f"  fire #{f['fire_id']} {f['scheduled_for']} step {f['step']} {f['state']}: "
                   f"{f['total']} row(s), sent {f['sent']}, delivered {f['delivered']}, failed {f['failed']}"
                   + (f" ({f['note']})" if f["note"] else ""))


@campaign.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--accept-valid", is_flag=True, help="import the good rows even if some are rejected")
def import_cmd(file: str, accept_valid: bool) -> None:
    """Import contacts from CSV (phone, consent, language, state, township, roles, joined_at)."""
    _config, db = _setup()
    try:
        rep = contacts.import_csv(db, Path(file).read_bytes(), accept_valid=accept_valid)
    except CampaignError as exc:
        _fail(exc)
    for line in rep.lines():
        click.echo(line)
    sys.exit(0 if rep.committed else 1)
