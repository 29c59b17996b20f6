"""Helpers the campaign tests and benchmarks share: contacts in bulk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert

from lanpya import crypto
from lanpya.db import Database
from lanpya.models import Contact
from lanpya.phone import TIMEZONES, country_of

#: a valid mobile number prefix per country (E.164 without the last digits)
PREFIX = {"MM": "+95925", "TH": "+668", "CN": "+86138", "MY": "+6012"}
DIGITS = {"MM": 7, "TH": 8, "CN": 8, "MY": 7}


def number(country: str, n: int) -> str:
    return PREFIX[country] + str(n).zfill(DIGITS[country])


def add_contacts(db: Database, count: int, *, start: int = 0, country: str = "MM", channel: str = "sms",
                 language: str | None = "my", township: str | None = "Myitkyina", state: str | None = "Kachin",
                 roles: list | None = None, subscribed: bool = True, joined_at: datetime | None = None,
                 batch: int = 5000, **extra) -> list[int]:
    """Insert ``count`` subscribed contacts in bulk; returns their ids."""
    ids: list[int] = []
    keyring = crypto.keyring()
    for lo in range(start, start + count, batch):
        rows = []
        for n in range(lo, min(start + count, lo + batch)):
            addr = number(country, n) if channel == "sms" else f"viber-user-{country}-{n}"
            rows.append(dict(
                uuid=f"{country}{channel[0]}{n:029d}", channel=channel, address_hash=keyring.lookup_hash(addr),
                address=addr, country=country, timezone=TIMEZONES[country], language=language,
                language_chosen=False, encoding="unicode", state=state, township=township, roles=roles or [],
                subscribed=subscribed, joined_at=joined_at, opted_out=False, unreachable=False,
                created_at=joined_at or datetime(2026, 1, 1), **extra,
            ))
        with db.session() as s:
            result = s.execute(insert(Contact).returning(Contact.id), rows)
            ids.extend(result.scalars().all())
    return ids


__all__ = ["add_contacts", "country_of", "number"]
