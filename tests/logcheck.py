"""A pytest plugin: the whole suite runs with DEBUG logging captured through
the production redacting filter, and the session fails if any captured line
contains a phone number or a message body that passed through the system.

Every address and text handed to ``lanpya.ingest.receive`` or
``lanpya.ingest.store`` (the webhooks' one-statement way in) during the run is
remembered (bodies of 8+ characters, so "hi" does not match by chance)."""

from __future__ import annotations

import logging

import pytest

from lanpya.logs import RedactingFilter

_sensitive: set[str] = set()
_lines: list[str] = []


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_text:
                text += "\n" + record.exc_text
            _lines.append(text)
        except Exception:  # noqa: BLE001
            pass


def remember(*values: str | None) -> None:
    for v in values:
        if v and len(v.strip()) >= 8:
            _sensitive.add(v.strip())
            if v.startswith("+"):
                _sensitive.add(v[1:])


def pytest_configure(config):
    handler = _Capture(level=logging.DEBUG)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    config._lanpya_capture = handler

    import lanpya.ingest as ingest

    original_receive, original_store = ingest.receive, ingest.store

    def receive(session, **kwargs):
        remember(kwargs.get("address"), kwargs.get("text"))
        return original_receive(session, **kwargs)

    def store(db, **kwargs):
        remember(kwargs.get("address"), kwargs.get("text"))
        return original_store(db, **kwargs)

    ingest.receive = receive
    ingest.store = store


def pytest_sessionfinish(session, exitstatus):
    leaks = []
    for line in _lines:
        for value in _sensitive:
            if value in line:
                leaks.append((value, line))
                break
    if leaks:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        if tr:
            tr.write_line(f"LOG LEAK: {len(leaks)} log line(s) contain a phone number or message body:", red=True)
            for value, line in leaks[:20]:
                tr.write_line(f"  [{value[:4]}…] {line[:200]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif session.config.pluginmanager.get_plugin("terminalreporter"):
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"log check: {len(_lines)} captured log lines, {len(_sensitive)} sensitive values, no leak"
        )
