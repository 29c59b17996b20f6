"""Logging to stdout with a filter that keeps phone numbers and message
bodies out of every log line.

Phone-shaped digit runs (ASCII or Burmese/Shan digits, with +, spaces, dashes,
dots or URL-encoded ``%2B``) are replaced by ``[phone]``. Fields named like
message content (``Body=``, ``"text":``) have their value replaced by
``[body]``. Code should never log those in the first place; this is the net.
"""

from __future__ import annotations

import logging
import re
import sys

_DIGIT = r"[0-9\u1040-\u1049\u1090-\u1099]"
_PHONE = re.compile(
    rf"(?:(?:\+|%2[Bb]|00)\s?)?{_DIGIT}(?:[\s\-.()]|%20)?(?:{_DIGIT}(?:[\s\-.()]|%20)?){{6,14}}{_DIGIT}"
)
_BODY_FIELDS = re.compile(
    r"""(?ix)
    (
      (?:\b(?:body|text|message|narrative|note|answer)s?\b["']?\s*[:=]\s*)   # key: / key=
    )
    (
      "(?:[^"\\]|\\.)*"        # "quoted"
      |'(?:[^'\\]|\\.)*'       # 'quoted'
      |[^&,\s}]+               # bare up to a separator
    )
    """
)


#: ISO dates and times are digit runs too; they are kept readable
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[+-]\d{2}:?\d{2}|Z)?)?"
    r"|\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:[+-]\d{2}:?\d{2})?"
)


def redact(message: str) -> str:
    message = _BODY_FIELDS.sub(lambda m: m.group(1) + "[body]", message)
    out, last = [], 0
    for m in _DATETIME.finditer(message):
        out.append(_PHONE.sub("[phone]", message[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_PHONE.sub("[phone]", message[last:]))
    return "".join(out)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not kill logging
            msg = str(record.msg)
        clean = redact(msg)
        record.msg = clean
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def setup(level: str = "INFO", name: str = "") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_lanpya", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stdout)
    handler._lanpya = True  # type: ignore[attr-defined]
    prefix = f"{name} " if name else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # libraries that log request bodies or URLs with numbers
    for noisy in ("twilio.http_client", "urllib3", "werkzeug"):
        logging.getLogger(noisy).addFilter(RedactingFilter())
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    # APScheduler logs every run of every interval job ("Running job ... executed successfully"
    # every 15 s): at INFO that buries what operators need to see; DEBUG keeps it.
    if root.level > logging.DEBUG:
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
