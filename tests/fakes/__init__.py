"""Fake providers at the network edge: real HTTP servers on 127.0.0.1 that
speak Twilio's Messages API and Viber's REST bot API, plus helpers that sign
webhooks the way Twilio and Viber do.

Registered as a pytest plugin (``pytest_plugins`` in tests/conftest.py), so
every test can ask for:

- ``fake_twilio`` / ``fake_viber``: a running :class:`FakeTwilio` / :class:`FakeViber`;
- ``provider_config``: the ``config`` of the test (same database) with Twilio
  and Viber credentials pointing at the two fakes;
- ``twilio_signature(token, url, params)``, ``viber_signature(token, body)``,
  ``twilio_form(...)``, ``viber_message(...)`` to build signed webhooks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import replace

import pytest

from tests.fakes.twilio_server import FakeTwilio
from tests.fakes.viber_server import FakeViber

__all__ = [
    "FakeTwilio",
    "FakeViber",
    "twilio_form",
    "twilio_signature",
    "viber_message",
    "viber_signature",
]

TWILIO_SID = "AC" + "f" * 32
TWILIO_TOKEN = "fake-twilio-auth-token-0123456789"
TWILIO_FROM = "+15005550006"
VIBER_TOKEN = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f"

_ids = itertools.count(1)


def twilio_signature(auth_token: str, url: str, params: dict) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by the sorted
    form fields (written out here, not taken from the library under test)."""
    s = url + "".join(k + str(params[k]) for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), s.encode(), hashlib.sha1).digest()).decode()


def viber_signature(auth_token: str, body: bytes) -> str:
    """X-Viber-Content-Signature: hex HMAC-SHA256 of the raw body with the bot token."""
    return hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()


def twilio_form(
    from_: str = "+959791234567", body: str = "hello", sid: str | None = None, to: str = TWILIO_FROM, **extra
) -> dict:
    """An inbound SMS as Twilio posts it."""
    form = {
        "MessageSid": sid or f"SM{next(_ids):032x}",
        "SmsSid": "",
        "AccountSid": TWILIO_SID,
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    form["SmsSid"] = form["MessageSid"]
    form.update(extra)
    return form


def viber_message(
    sender: str = "01234567890A=", text: str | None = "hello", token: int | None = None, **message
) -> dict:
    """An inbound Viber "message" callback."""
    msg = {"type": "text", "text": text} if text is not None else {}
    msg.update(message)
    return {
        "event": "message",
        "timestamp": int(time.time() * 1000),
        "chat_hostname": "SN-376_",
        "message_token": token or 4912661846655238145 + next(_ids),
        "sender": {"id": sender, "name": "Test", "avatar": "", "country": "MM", "language": "my", "api_version": 10},
        "message": msg,
        "silent": False,
    }


def viber_body(event: dict) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


@pytest.fixture
def fake_twilio():
    with FakeTwilio(TWILIO_SID, TWILIO_TOKEN) as fake:
        yield fake


@pytest.fixture
def fake_viber():
    with FakeViber(VIBER_TOKEN) as fake:
        yield fake


@pytest.fixture
def provider_config(config, fake_twilio, fake_viber):
    """The test's config with both providers configured against the fakes."""
    return replace(
        config,
        twilio_account_sid=TWILIO_SID,
        twilio_auth_token=TWILIO_TOKEN,
        twilio_from_number=TWILIO_FROM,
        twilio_api_url=fake_twilio.url,
        twilio_rate=1000.0,
        viber_auth_token=VIBER_TOKEN,
        viber_api_url=fake_viber.url,
        viber_rate=1000.0,
    )
