"""`lanpya staff add|token|list|deactivate` and `lanpya roster add|list|remove`."""

from __future__ import annotations

from datetime import time

from click.testing import CliRunner
from sqlalchemy import select
from werkzeug.security import check_password_hash

from lanpya.models import AuditLog, Shift, Staff
from lanpya.staff import hash_token, roster_cli, staff_cli


def run(group, db, *args: str, input: str | None = None):
    return CliRunner().invoke(group, list(args), obj={"db": db}, input=input, catch_exceptions=False)


def test_staff_add_token_and_roster(db):
    r = run(staff_cli, db, "add", "Agent@Example.org", "--role", "agent", "--phone", "09 250 000 111",
            "--password", "a long password")
    assert r.exit_code == 0, r.output
    assert run(staff_cli, db, "add", "agent@example.org", "--role", "agent", "--no-password").exit_code == 2
    assert run(staff_cli, db, "add", "sup@example.org", "--role", "supervisor", "--no-password").exit_code == 0
    assert run(staff_cli, db, "add", "x@example.org", "--role", "agent", "--password", "short").exit_code == 2
    with db.session() as s:
        agent = s.scalar(select(Staff).where(Staff.email == "agent@example.org"))
        assert agent.phone == "+959250000111" and check_password_hash(agent.password_hash, "a long password")
    listing = run(staff_cli, db, "list").output
    assert "agent@example.org" in listing and "+959250000111" not in listing  # numbers masked

    token = run(staff_cli, db, "token", "agent@example.org").output.strip()
    with db.session() as s:
        assert s.scalar(select(Staff.api_token_hash).where(Staff.email == "agent@example.org")) == hash_token(token)
    assert run(staff_cli, db, "token", "nobody@example.org").exit_code == 2

    r = run(roster_cli, db, "add", "agent@example.org", "--days", "mon-fri", "--start", "08:00", "--end", "17:30",
            "--rank", "1", "--supervisor", "sup@example.org")
    assert r.exit_code == 0, r.output
    run(roster_cli, db, "add", "sup@example.org", "--days", "sat,sun", "--start", "22:00", "--end", "06:00")
    with db.session() as s:
        shifts = s.scalars(select(Shift).order_by(Shift.id)).all()
        assert [x.weekday for x in shifts] == [0, 1, 2, 3, 4, 5, 6]
        assert (shifts[0].start, shifts[0].end, shifts[0].rank) == (time(8, 0), time(17, 30), 1)
        assert shifts[0].supervisor_id is not None and shifts[5].start == time(22, 0)
        first = shifts[0].id
    assert "mon 08:00-17:30 rank 1  agent@example.org  supervisor sup@example.org" in run(roster_cli, db, "list").output
    assert run(roster_cli, db, "add", "agent@example.org", "--days", "someday").exit_code == 2
    assert run(roster_cli, db, "remove", str(first)).exit_code == 0
    assert run(roster_cli, db, "remove", str(first)).exit_code == 2

    assert run(staff_cli, db, "deactivate", "agent@example.org").exit_code == 0
    with db.session() as s:
        agent = s.scalar(select(Staff).where(Staff.email == "agent@example.org"))
        assert agent.active is False and agent.api_token_hash is None
        actions = {a.action for a in s.scalars(select(AuditLog))}
    assert {"staff_added", "token_issued", "shift_added", "shift_removed", "staff_deactivated"} <= actions
