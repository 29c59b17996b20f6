"""The redacting log filter: phone numbers in every format, and bodies."""

from __future__ import annotations

import logging

import pytest

from lanpya.logs import RedactingFilter, redact


@pytest.mark.parametrize(
    "line, secret",
    [
        ("from +959420123456 ok", "420123456"),
        ("from 09420123456 ok", "420123456"),
        ("from 09-420-123-456 ok", "420"),
        ("from +95 9 420 123 456", "123 456"),
        ("From=%2B959420123456&To=%2B15005550006", "959420123456"),
        ("From=%2B95%20942%200123456", "0123456"),
        ("from ၀၉၄၂၀၁၂၃၄၅၆", "၄၂၀၁၂၃၄၅၆"),
        ("thai +66812345678 number", "812345678"),
        ("at 2026-11-25 15:20:48 from +959420123456", "420123456"),
        ("2026-11-25 09420123456", "420123456"),
        ("china 008613812345678", "13812345678"),
        ("Body=my+sister+is+gone&From=x", "sister"),
        ('{"text": "my sister is locked in", "sender": "a1"}', "locked"),
        ("message='they took her passport'", "passport"),
    ],
)
def test_redact_removes_numbers_and_bodies(line, secret):
    assert secret not in redact(line)


@pytest.mark.parametrize(
    "line",
    [
        "case #123 urgent",
        "outbox 42 sent in 3 segments",
        "GET /healthz 200",
        "next run at: 2026-11-25 15:20:48 UTC (scheduled at 2026-11-25 15:20:48.389004+00:00)",
        "deadline 2026-11-25T15:20:48Z",
    ],
)
def test_redact_keeps_ordinary_lines(line):
    assert redact(line) == line


def test_filter_redacts_arguments_and_tracebacks(caplog):
    logger = logging.getLogger("lanpya.test")
    f = RedactingFilter()
    record = logger.makeRecord("x", logging.INFO, __file__, 1, "from %s", ("+959420123456",), None)
    f.filter(record)
    assert "420123456" not in record.getMessage()
    try:
        raise ValueError("bad number +959420123456")
    except ValueError:
        import sys

        record = logger.makeRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    f.filter(record)
    assert "420123456" not in record.exc_text
