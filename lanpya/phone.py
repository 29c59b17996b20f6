"""Phone numbers to E.164 with ``phonenumbers``.

Myanmar numbers arrive in every local form (09..., 959..., +95 9..., with
Burmese digits); migrants abroad text from Thai, Chinese and Malaysian
numbers. A number that is not valid is refused, never guessed.
"""

from __future__ import annotations

import re

import phonenumbers

from lanpya.text import ascii_digits

#: where a number's owner lives, for quiet hours
TIMEZONES = {
    "MM": "Asia/Yangon",
    "TH": "Asia/Bangkok",
    "CN": "Asia/Shanghai",
    "MY": "Asia/Kuala_Lumpur",
}
DEFAULT_TIMEZONE = "Asia/Yangon"


class BadNumber(ValueError):
    pass


def normalise_phone(raw: str, default_region: str = "MM") -> str:
    """E.164 (``+959...``) or :class:`BadNumber`."""
    if raw is None:
        raise BadNumber("no number")
    text = ascii_digits(str(raw)).strip()
    text = re.sub(r"[\s\-().]", "", text)
    if text.startswith("00"):
        text = "+" + text[2:]
    # "959..." without the plus is a common Myanmar spelling
    if re.fullmatch(r"959\d{7,9}", text):
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise BadNumber(str(exc)) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise BadNumber("not a valid number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def country_of(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def timezone_of(e164: str) -> str:
    return TIMEZONES.get(country_of(e164) or "", DEFAULT_TIMEZONE)


def masked(e164: str) -> str:
    """For staff screens: +95 9•••••1234."""
    if not e164 or len(e164) < 6:
        return "•••"
    return e164[:4] + "•" * (len(e164) - 8) + e164[-4:]
