"""Staff accounts, API tokens and the on-call roster, and their CLI:
``lanpya staff add|token|list`` and ``lanpya roster add|list|remove``.

Staff phone numbers are encrypted (the model does it) and never printed in
full by these commands.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
from datetime import time

import click
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from lanpya.models import Shift, Staff
from lanpya.phone import BadNumber, masked, normalise_phone

TOKEN_PREFIX = "lpy_"  # noqa: S105 - a visible prefix, not a secret
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def hash_token(token: str) -> str:
    """What is stored for an API token: its sha256 (the token itself is shown once)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token(session: Session, staff: Staff) -> str:
    """Give ``staff`` a fresh API token (the old one stops working); return it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    staff.api_token_hash = hash_token(token)
    return token


def staff_by_token(session: Session, token: str) -> Staff | None:
    if not token:
        return None
    staff = session.scalar(select(Staff).where(Staff.api_token_hash == hash_token(token)))
    if staff is None or not staff.active:
        return None
    return staff


def add_staff(
    session: Session, email: str, role: str, *, name: str = "", password: str | None = None,
    phone: str | None = None, viber_id: str | None = None,
) -> Staff:
    email = email.strip().lower()
    if role not in Staff.ROLES:
        raise ValueError(f"role must be one of {', '.join(Staff.ROLES)}")
    if "@" not in email:
        raise ValueError("email must be an address")
    if session.scalar(select(Staff).where(Staff.email == email)) is not None:
        raise ValueError(f"{email} already exists")
    staff = Staff(
        email=email, name=name or email.split("@")[0], role=role,
        password_hash=generate_password_hash(password) if password else None,
        phone=normalise_phone(phone) if phone else None, viber_id=viber_id or None,
    )
    session.add(staff)
    session.flush()
    return staff


def parse_hhmm(value: str) -> time:
    try:
        hh, mm = value.strip().split(":")
        return time(int(hh), int(mm))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"expected HH:MM, got {value!r}") from exc


def parse_days(value: str) -> list[int]:
    """``mon-fri``, ``sat,sun``, ``daily``, ``0,2`` → weekday numbers (0 = Monday)."""
    value = value.strip().lower()
    if value in ("daily", "all", "*"):
        return list(range(7))
    days: list[int] = []
    for part in value.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (_day(p) for p in part.split("-", 1))
            days.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        elif part:
            days.append(_day(part))
    return sorted(set(days))


def _day(text: str) -> int:
    text = text.strip().lower()[:3]
    if text.isdigit() and 0 <= int(text) <= 6:
        return int(text)
    if text in WEEKDAYS:
        return WEEKDAYS.index(text)
    raise ValueError(f"unknown weekday {text!r} (mon..sun or 0..6)")


# --- CLI ------------------------------------------------------------------------
def _db():
    """The database: the click context's ``obj["db"]`` (tests), else from the configuration."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and ctx.obj.get("db") is not None:
            return ctx.obj["db"]
        ctx = ctx.parent
    from lanpya.bootstrap import database, load_config

    return database(load_config("cli"))


@click.group("staff")
def staff_cli() -> None:
    """Staff accounts and API tokens."""


@staff_cli.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(Staff.ROLES), required=True)
@click.option("--name", default="")
@click.option("--phone", default=None, help="E.164 number for on-call alerts")
@click.option("--viber-id", default=None, help="Viber user id for on-call alerts")
@click.option("--password", default=None, help="prompted for when not given")
@click.option("--no-password", is_flag=True, help="API/alerts only: cannot log in to the console")
def staff_add(email: str, role: str, name: str, phone: str | None, viber_id: str | None,
              password: str | None, no_password: bool) -> None:
    """Add a staff member."""
    if not no_password and password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if password is not None and len(password) < 10:
        raise click.BadParameter("use at least 10 characters", param_hint="--password")
    from lanpya import audit

    try:
        with _db().session() as s:
            staff = add_staff(s, email, role, name=name, password=password, phone=phone, viber_id=viber_id)
            audit.record(s, "staff_added", "staff", staff.id, actor="cli", detail={"role": role})
            click.echo(f"added staff #{staff.id} {staff.email} ({role})")
    except (ValueError, BadNumber) as exc:
        click.echo(f"lanpya: {exc}", err=True)
        sys.exit(2)


@staff_cli.command("token")
@click.argument("email")
def staff_token(email: str) -> None:
    """Print a new API token for EMAIL (shown once; the previous token stops working)."""
    from lanpya import audit

    with _db().session() as s:
        staff = s.scalar(select(Staff).where(Staff.email == email.strip().lower()))
        if staff is None or not staff.active:
            click.echo(f"lanpya: no active staff member {email}", err=True)
            sys.exit(2)
        token = new_api_token(s, staff)
        audit.record(s, "token_issued", "staff", staff.id, actor="cli")
    click.echo(token)


@staff_cli.command("list")
def staff_list() -> None:
    """List staff (numbers masked)."""
    with _db().session() as s:
        for st in s.scalars(select(Staff).order_by(Staff.id)):
            click.echo(f"#{st.id:<4} {st.role:10} {'active' if st.active else 'inactive':8} {st.email}"
                       f"  {masked(st.phone) if st.phone else '-'}{'  viber' if st.viber_id else ''}")


@staff_cli.command("deactivate")
@click.argument("email")
def staff_deactivate(email: str) -> None:
    """Stop a staff member logging in, using a token or being alerted."""
    from lanpya import audit

    with _db().session() as s:
        staff = s.scalar(select(Staff).where(Staff.email == email.strip().lower()))
        if staff is None:
            click.echo(f"lanpya: no staff member {email}", err=True)
            sys.exit(2)
        staff.active = False
        staff.api_token_hash = None
        audit.record(s, "staff_deactivated", "staff", staff.id, actor="cli")
    click.echo(f"deactivated {email}")


@click.group("roster")
def roster_cli() -> None:
    """The weekly on-call roster (times in Asia/Yangon)."""


@roster_cli.command("add")
@click.argument("email")
@click.option("--days", default="daily", show_default=True, help="mon-fri, sat,sun, daily, 0..6")
@click.option("--start", default="00:00", show_default=True, help="HH:MM Asia/Yangon")
@click.option("--end", default="24:00", show_default=True, help="HH:MM Asia/Yangon (24:00 = midnight)")
@click.option("--rank", default=1, show_default=True, help="1 = alerted first, 2 = next ...")
@click.option("--supervisor", default=None, help="email of the shift's supervisor")
def roster_add(email: str, days: str, start: str, end: str, rank: int, supervisor: str | None) -> None:
    """Put EMAIL on call."""
    from lanpya import audit

    try:
        weekdays = parse_days(days)
        t_start = parse_hhmm(start)
        t_end = time(23, 59, 59) if end.strip() == "24:00" else parse_hhmm(end)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    with _db().session() as s:
        staff = s.scalar(select(Staff).where(Staff.email == email.strip().lower()))
        if staff is None:
            click.echo(f"lanpya: no staff member {email}", err=True)
            sys.exit(2)
        sup_id = None
        if supervisor:
            sup = s.scalar(select(Staff).where(Staff.email == supervisor.strip().lower()))
            if sup is None:
                click.echo(f"lanpya: no staff member {supervisor}", err=True)
                sys.exit(2)
            sup_id = sup.id
        for day in weekdays:
            shift = Shift(staff_id=staff.id, weekday=day, start=t_start, end=t_end, rank=rank, supervisor_id=sup_id)
            s.add(shift)
            s.flush()
            audit.record(s, "shift_added", "shift", shift.id, actor="cli", detail={"staff": staff.id})
    click.echo(f"{email}: {len(weekdays)} shift(s) added")


@roster_cli.command("list")
def roster_list() -> None:
    """Show the roster."""
    with _db().session() as s:
        rows = s.execute(
            select(Shift, Staff).join(Staff, Staff.id == Shift.staff_id)
            .order_by(Shift.weekday, Shift.start, Shift.rank)
        ).all()
        names = {st.id: st.email for st in s.scalars(select(Staff))}
        for shift, st in rows:
            sup = names.get(shift.supervisor_id, "-")
            click.echo(f"#{shift.id:<4} {WEEKDAYS[shift.weekday]} {shift.start:%H:%M}-{shift.end:%H:%M} "
                       f"rank {shift.rank}  {st.email}  supervisor {sup}")
        if not rows:
            click.echo("(roster empty: nobody will be alerted)")


@roster_cli.command("remove")
@click.argument("shift_id", type=int)
def roster_remove(shift_id: int) -> None:
    """Remove one shift by its id (see `lanpya roster list`)."""
    from lanpya import audit

    with _db().session() as s:
        shift = s.get(Shift, shift_id)
        if shift is None:
            click.echo(f"lanpya: no shift #{shift_id}", err=True)
            sys.exit(2)
        s.delete(shift)
        audit.record(s, "shift_removed", "shift", shift_id, actor="cli")
    click.echo(f"removed shift #{shift_id}")
