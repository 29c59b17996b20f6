"""How people join an audience: the bot's subscribe flow (JOIN) and CSV import.

CSV import (``lanpya campaign import FILE``)
    Columns: ``phone`` and ``consent`` are required; optional ``language``
    (en, my, kac, shn), ``state``, ``township``, ``roles`` (separated by ``;``
    or ``|``), ``joined_at`` (ISO date, UTC). A row is rejected, with its line
    number and reason, when consent is not yes, the number is not a valid
    number (:func:`lanpya.phone.normalise_phone`), it repeats an earlier row,
    or the number belongs to a contact who opted out (only they can re-join,
    by texting START / JOIN) or is already subscribed. By default one rejected
    row means nothing is imported; ``accept_valid=True`` imports the good rows.
    Either way the import is a single transaction: it never half-imports.
    Rejections name the line, never the number.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.engine import LANGUAGES, CampaignError
from lanpya import clock
from lanpya.crypto import lookup_hash
from lanpya.db import Database
from lanpya.models import Contact
from lanpya.phone import BadNumber, country_of, normalise_phone, timezone_of

logger = logging.getLogger(__name__)

CONSENT_YES = {"yes", "y", "true", "1", "agreed", "ok", "ဟုတ်", "ho", "mai"}
CONSENT_NO = {"no", "n", "false", "0", ""}
STATES = {"kachin": "Kachin", "northern shan": "Northern Shan", "shan": "Northern Shan", "shan (north)": "Northern Shan"}
TOWNSHIPS = {
    "Kachin": ["Myitkyina", "Bhamo", "Waingmaw", "Mohnyin", "Putao", "Hpakant", "Mogaung", "Momauk", "Shwegu",
               "Chipwi", "Tanai", "Mansi", "Machanbaw", "Sumprabum", "Injangyang", "Tsawlaw", "Kamaing"],
    "Northern Shan": ["Lashio", "Muse", "Kutkai", "Namhkam", "Hsipaw", "Kyaukme", "Namtu", "Hsenwi", "Kunlong",
                      "Laukkai", "Namhsan", "Mongmit", "Nawnghkio", "Tangyan", "Mabein", "Manton", "Kongyan"],
}
_TOWNSHIP_INDEX = {t.lower(): (t, st) for st, ts in TOWNSHIPS.items() for t in ts}
ROLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


def clean_township(value: str | None) -> tuple[str | None, str | None]:
    """(township, state) with known townships spelled the usual way."""
    if not value or not value.strip():
        return None, None
    value = value.strip()
    known = _TOWNSHIP_INDEX.get(value.lower())
    if known:
        return known
    if len(value) > 60:
        raise CampaignError("township is at most 60 characters")
    return value, None


def clean_state(value: str | None) -> str | None:
    if not value or not value.strip():
        return None
    state = STATES.get(value.strip().lower())
    if state is None:
        raise CampaignError(f"state must be Kachin or Northern Shan, got {value.strip()[:40]!r}")
    return state


def clean_roles(values) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = re.split(r"[;|,]", values)
    if not isinstance(values, list):
        raise CampaignError("roles must be a list")
    out = []
    for v in values:
        if not isinstance(v, str):
            raise CampaignError("roles must be strings")
        v = v.strip().lower()
        if not v:
            continue
        if not ROLE_RE.match(v):
            raise CampaignError(f"role {v[:20]!r}: lower-case letters, digits and _ only")
        out.append(v)
    return sorted(set(out))


def subscribe(session: Session, contact: Contact, *, township: str | None = None, state: str | None = None,
              roles=None) -> Contact:
    """The contact asked to join (JOIN keyword / the bot's subscribe form)."""
    town, town_state = clean_township(township)
    st = clean_state(state) or town_state
    contact.subscribed = True
    if contact.joined_at is None:
        contact.joined_at = clock.now()
    if town:
        contact.township = town
    if st:
        contact.state = st
    if roles is not None:
        contact.roles = sorted(set((contact.roles or []) + clean_roles(roles)))
    logger.info("contact %s subscribed", contact.id)
    return contact


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    committed: bool = False

    def lines(self) -> list[str]:
        out = [f"line {n}: {why}" for n, why in self.rejected]
        verdict = "imported" if self.committed else "NOT imported (nothing written)"
        out.append(f"{self.rows} row(s): {self.imported} new, {self.updated} re-subscribed, "
                   f"{len(self.rejected)} rejected — {verdict}")
        return out


def _consent(value: str | None) -> bool | None:
    v = (value or "").strip().lower()
    if v in CONSENT_YES:
        return True
    if v in CONSENT_NO:
        return False
    return None


def import_csv(db: Database, data: str | bytes, *, accept_valid: bool = False, channel: str = Contact.SMS,
               default_region: str = "MM") -> ImportReport:
    """Import contacts with consent from CSV text (see the module docstring)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(data))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "phone" not in header or "consent" not in header:
        raise CampaignError("the CSV needs a header with at least 'phone' and 'consent' columns")
    reader.fieldnames = header
    report = ImportReport()
    seen: set[str] = set()
    good: list[dict] = []
    for row in reader:
        line = reader.line_num
        report.rows += 1
        row = {k: (v or "").strip() for k, v in row.items() if k}
        consent = _consent(row.get("consent"))
        if consent is not True:
            report.rejected.append((line, "no consent" if consent is False else "consent must be yes or no"))
            continue
        try:
            phone = normalise_phone(row.get("phone", ""), default_region)
        except BadNumber:
            report.rejected.append((line, "not a valid phone number"))
            continue
        if phone in seen:
            report.rejected.append((line, "duplicate of an earlier row"))
            continue
        seen.add(phone)
        try:
            lang = row.get("language") or None
            if lang is not None and lang not in LANGUAGES:
                raise CampaignError(f"language must be one of {', '.join(LANGUAGES)}")
            town, town_state = clean_township(row.get("township"))
            state = clean_state(row.get("state")) or town_state
            roles = clean_roles(row.get("roles"))
            joined = datetime.fromisoformat(row["joined_at"]) if row.get("joined_at") else None
            if joined is not None and joined.tzinfo is not None:
                raise CampaignError("joined_at is UTC without a zone")
        except (CampaignError, ValueError) as exc:
            report.rejected.append((line, str(exc)[:120]))
            continue
        good.append(dict(line=line, phone=phone, language=lang, township=town, state=state, roles=roles,
                         joined_at=joined))
    if report.rejected and not accept_valid:
        return report
    now = clock.now()
    with db.session() as s:
        for g in good:
            h = lookup_hash(g["phone"])
            existing = s.scalar(select(Contact).where(Contact.channel == channel, Contact.address_hash == h))
            if existing is not None:
                if existing.opted_out:
                    report.rejected.append((g["line"], "this contact opted out; only they can re-join"))
                    continue
                if existing.subscribed:
                    report.rejected.append((g["line"], "already subscribed"))
                    continue
                contact = existing
                report.updated += 1
            else:
                contact = Contact(channel=channel, address_hash=h, address=g["phone"],
                                  country=country_of(g["phone"]), timezone=timezone_of(g["phone"]), created_at=now)
                s.add(contact)
                report.imported += 1
            contact.subscribed = True
            contact.joined_at = contact.joined_at or g["joined_at"] or now
            for key in ("language", "township", "state"):
                if g[key]:
                    setattr(contact, key, g[key])
            if g["roles"]:
                contact.roles = sorted(set((contact.roles or []) + g["roles"]))
        if report.rejected and not accept_valid:
            s.rollback()
            report.imported = report.updated = 0
            return report
        report.committed = True
    report.rejected.sort()
    logger.info("csv import: %d new, %d re-subscribed, %d rejected", report.imported, report.updated,
                len(report.rejected))
    return report
