"""A small real HTTP server on 127.0.0.1 that speaks Twilio's Messages API.

The real ``twilio`` client is pointed at it (``TWILIO_API_URL``), so the code
that builds requests, authenticates and parses answers is the code that runs
in production. It records every message it accepts and can be told to fail:

- ``fail_next(n, status=500)`` / ``fail_next(n, status=400, code=30001)``:
  the next ``n`` requests fail that way (whatever the number);
- ``fail_number(to, status=400, code=21211)``: every request to ``to`` fails;
- ``fail_for(seconds, statuses=(500, 429))``: every send fails for that long,
  the statuses in turn (429 with Twilio's code 20429), as in a provider outage.

Only ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (and ``GET`` of one
message) are served; anything else is a Twilio-shaped 404.
"""

from __future__ import annotations

import base64
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.fakes.keepalive import FakeRequest, FakeResponse, serve
from tests.support import LiveServer

#: what each Twilio error code means (the ones the fakes and tests use)
ERROR_MESSAGES = {
    20003: "Authenticate",
    20429: "Too Many Requests",
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    30001: "Queue overflow",
}

_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages(?:/(?P<msid>[^/.]+))?\.json$")


@dataclass
class Failure:
    status: int
    code: int | None = None
    #: seconds to wait before answering (a timeout when longer than the client's)
    delay: float = 0.0


@dataclass
class SentMessage:
    sid: str
    to: str
    body: str
    from_: str | None
    messaging_service_sid: str | None
    status_callback: str | None
    form: dict = field(default_factory=dict)


class FakeTwilio(LiveServer):
    """``with FakeTwilio(account_sid, auth_token) as fake: ... fake.url``"""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "fake-twilio-token"):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[SentMessage] = []
        #: every request seen (method, path, status answered)
        self.requests: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._next_failures: list[Failure] = []
        self._number_failures: dict[str, Failure] = {}
        self._ids = itertools.count(1)
        self._fault_until = 0.0
        self._fault_statuses: tuple[int, ...] = ()
        self._fault_seq = itertools.count()
        # a LiveServer (url, start, stop, with) whose connections stay alive between
        # requests, as Twilio's do: werkzeug's server closes each one (see keepalive.py)
        serve(self, self._serve)

    # --- control ---------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500, code: int | None = None, delay: float = 0.0) -> None:
        with self._lock:
            self._next_failures.extend(Failure(status, code, delay) for _ in range(n))

    def fail_number(self, to: str, status: int = 400, code: int | None = 21211) -> None:
        with self._lock:
            self._number_failures[to] = Failure(status, code)

    def fail_for(self, seconds: float, statuses: tuple[int, ...] = (500, 429)) -> None:
        """Fail every send for ``seconds`` from now, cycling through ``statuses``."""
        with self._lock:
            self._fault_statuses = tuple(statuses)
            self._fault_until = time.monotonic() + seconds

    def clear_failures(self) -> None:
        with self._lock:
            self._next_failures.clear()
            self._number_failures.clear()
            self._fault_until = 0.0

    def callback(self, sid: str, status: str, error_code: int | None = None, url: str | None = None):
        """Do what Twilio does after a send: POST a signed status callback to
        the message's StatusCallback URL (or ``url``). Returns the response."""
        import requests

        from tests.fakes import twilio_signature

        with self._lock:
            message = next(m for m in self.messages if m.sid == sid)
        target = url or message.status_callback
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.account_sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": message.to,
            "From": message.from_ or "",
            "ApiVersion": "2010-04-01",
        }
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        return requests.post(
            target,
            data=form,
            timeout=10,
            headers={"X-Twilio-Signature": twilio_signature(self.auth_token, target, form)},
        )

    def sent_to(self, to: str) -> list[SentMessage]:
        with self._lock:
            return [m for m in self.messages if m.to == to]

    # --- the API -----------------------------------------------------------------
    def _error(self, status: int, code: int | None, message: str | None = None) -> FakeResponse:
        payload = {
            "code": code,
            "message": message or ERROR_MESSAGES.get(code or 0, "error"),
            "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None,
            "status": status,
        }
        return FakeResponse.json(payload, status)

    def _authorised(self, request: FakeRequest) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid and secrets.compare_digest(password, self.auth_token)

    def _serve(self, request: FakeRequest) -> FakeResponse:
        response = self._handle(request)
        with self._lock:
            self.requests.append((request.method, request.path, response.status_code))
        return response

    def _handle(self, request: FakeRequest) -> FakeResponse:
        match = _MESSAGES.match(request.path)
        if match is None:
            return self._error(404, 20404, "The requested resource was not found")
        if not self._authorised(request) or match["sid"] != self.account_sid:
            return self._error(401, 20003)
        if request.method == "GET" and match["msid"]:
            with self._lock:
                found = [m for m in self.messages if m.sid == match["msid"]]
            if not found:
                return self._error(404, 20404, "The requested resource was not found")
            return self._message_json(found[0], 200)
        if request.method != "POST" or match["msid"]:
            return self._error(405, 20004, "Method not allowed")

        form = request.form
        to = form.get("To", "")
        with self._lock:
            failure = self._next_failures.pop(0) if self._next_failures else self._number_failures.get(to)
            if failure is None and self._fault_statuses and time.monotonic() < self._fault_until:
                status = self._fault_statuses[next(self._fault_seq) % len(self._fault_statuses)]
                failure = Failure(status, 20429 if status == 429 else None)
        if failure is not None:
            if failure.delay:
                threading.Event().wait(failure.delay)
            return self._error(failure.status, failure.code)
        if not to:
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not form.get("Body") and not form.get("MediaUrl"):
            return self._error(400, 21602, "Message body is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return self._error(400, 21603, "A 'From' phone number is required.")
        message = SentMessage(
            sid=f"SM{next(self._ids):032x}",
            to=to,
            body=form.get("Body", ""),
            from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"),
            status_callback=form.get("StatusCallback"),
            form=form.to_dict(),
        )
        with self._lock:
            self.messages.append(message)
        return self._message_json(message, 201)

    def _message_json(self, m: SentMessage, status: int) -> FakeResponse:
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        payload = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": m.body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": m.from_,
            "messaging_service_sid": m.messaging_service_sid,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": m.sid,
            "status": "queued" if m.messaging_service_sid is None else "accepted",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{m.sid}/Media.json"
            },
            "to": m.to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{m.sid}.json",
        }
        return FakeResponse.json(payload, status)
