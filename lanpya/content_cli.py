"""``lanpya content …``: check and try the content files (content/README.md).
Listed in ``AREA_COMMANDS`` of ``lanpya/cli.py``. Needs no database and no
secrets: staff can run it on a laptop with just the content folder."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lanpya.config import Config
from lanpya.content import LANGUAGES, Content, ContentError
from lanpya.text import segments_for


def _config(ctx: click.Context) -> Config:
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    return obj.get("config") or Config.from_env()


def _load(ctx: click.Context, directory: str | None) -> Content:
    config = _config(ctx)
    try:
        return Content(Path(directory or config.content_dir), config.hotline_number,
                       include_samples=not config.is_production)
    except ContentError as exc:
        click.echo(f"content: {exc}", err=True)
        sys.exit(1)


@click.group("content")
def content_cli() -> None:
    """Check and try the answers, referrals, risk words, keywords and agency list."""


@content_cli.command("check")
@click.option("--dir", "directory", default=None, help="content folder (default: LANPYA_CONTENT_DIR or content/)")
@click.pass_context
def check(ctx: click.Context, directory: str | None) -> None:
    """Validate every file; show SMS sizes over the limit and review status."""
    content = _load(ctx, directory)
    problems = 0
    for key in content.keys:
        for lang in LANGUAGES:
            text = content.answer(key, lang, case_id=123456, severity="emergency",
                                  url="https://example.org/console/cases/123456")
            seg = segments_for(text)
            if seg.segments > 3:
                problems += 1
                click.echo(f"TOO LONG {key} [{lang}]: {seg.segments} segments ({seg.encoding}, {seg.units} units)")
    click.echo(f"{len(content.keys)} answers, {len(LANGUAGES)} languages")
    for lang in LANGUAGES:
        reviewed = sum(content.entry(k, lang).review.get("status") == "reviewed" for k in content.keys)
        click.echo(f"  {lang}: {reviewed}/{len(content.keys)} reviewed")
    enabled = [r for r in content.referrals() if r.enabled]
    click.echo(f"referrals: {len(enabled)} enabled of {len(content.referrals())}")
    if not content.hotline:
        click.echo("warning: HOTLINE_NUMBER is not set; answers show [HOTLINE NUMBER NOT SET]")
    if problems:
        sys.exit(1)
    click.echo("ok")


@content_cli.command("show")
@click.argument("key")
@click.argument("language", type=click.Choice(LANGUAGES))
@click.option("--viber", is_flag=True, help="the Viber text")
@click.option("--township", default=None)
@click.option("--dir", "directory", default=None)
@click.pass_context
def show(ctx: click.Context, key: str, language: str, viber: bool, township: str | None,
         directory: str | None) -> None:
    """Print one answer as people get it."""
    content = _load(ctx, directory)
    try:
        text = content.answer(key, language, channel="viber" if viber else "sms", township=township)
    except KeyError:
        click.echo(f"no answer {key!r}", err=True)
        sys.exit(1)
    seg = segments_for(text)
    click.echo(text)
    click.echo(f"-- {seg.segments} SMS segment(s), {seg.encoding}, {seg.units} units", err=True)


@content_cli.command("agency")
@click.argument("query")
@click.option("--dir", "directory", default=None)
@click.pass_context
def agency(ctx: click.Context, query: str, directory: str | None) -> None:
    """Look an agency up as the bot does."""
    result = _load(ctx, directory).agency_check(query)
    click.echo(result.status)
    for m in result.matches:
        click.echo(f"  {m.score:.2f}  {m.licence_no}  {m.name}  {m.name_my}  [{m.status}]")


@content_cli.command("risk")
@click.argument("text")
@click.option("--language", type=click.Choice(LANGUAGES), default="my")
@click.option("--dir", "directory", default=None)
@click.pass_context
def risk(ctx: click.Context, text: str, language: str, directory: str | None) -> None:
    """Would this message open a case? (prints the matched term)"""
    hit = _load(ctx, directory).lexicon_match(text, language)
    if hit is None:
        click.echo("no match")
        sys.exit(1)
    click.echo(f"{hit.category} {hit.severity}  (term: {hit.term!r}, {hit.language} lexicon)")
