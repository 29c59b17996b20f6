"""A small real HTTP server on 127.0.0.1 that speaks Viber's REST bot API.

``ViberSender`` is pointed at it (``VIBER_API_URL``). Served:
``POST /pa/send_message``, ``POST /pa/broadcast_message`` (at most 300
receivers, a ``failed_list`` for receivers that cannot get it),
``POST /pa/set_webhook`` and ``POST /pa/get_account_info``; every call needs
``X-Viber-Auth-Token``. Viber answers HTTP 200 with a ``status`` code in the
JSON; the fake does the same, and can be told to fail:

- ``fail_receiver(id, 5)``: that receiver is not registered (6: not subscribed);
- ``fail_next(n, http_status=500)`` or ``fail_next(n, status=12)`` (too many requests).
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from dataclasses import dataclass, field

from tests.fakes.keepalive import FakeRequest, FakeResponse, serve
from tests.support import LiveServer

STATUS_MESSAGES = {
    0: "ok",
    1: "invalidUrl",
    2: "invalidAuthToken",
    3: "badData",
    4: "missingData",
    5: "receiverNotRegistered",
    6: "receiverNotSubscribed",
    7: "publicAccountBlocked",
    8: "publicAccountNotFound",
    9: "publicAccountSuspended",
    10: "webhookNotSet",
    11: "receiverNoSuitableDevice",
    12: "tooManyRequests",
}
MAX_BROADCAST = 300


@dataclass
class Failure:
    http_status: int = 200
    status: int = 0
    delay: float = 0.0


@dataclass
class ViberSent:
    token: int
    receiver: str
    type: str
    text: str | None
    payload: dict = field(default_factory=dict)
    broadcast: bool = False


class FakeViber(LiveServer):
    def __init__(self, auth_token: str = "fake-viber-token"):
        self.auth_token = auth_token
        #: one entry per receiver that was sent a message (broadcasts expanded)
        self.messages: list[ViberSent] = []
        #: the receivers list of each broadcast_message call
        self.broadcasts: list[list[str]] = []
        self.webhooks: list[dict] = []
        self.requests: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._next_failures: list[Failure] = []
        self._receiver_failures: dict[str, int] = {}
        self._tokens = itertools.count(5_000_000_000_000_000_001)
        # connections stay alive between requests, as Viber's do (see keepalive.py)
        serve(self, self._serve)

    @property
    def url(self) -> str:
        """The API base, like https://chatapi.viber.com/pa"""
        return f"http://127.0.0.1:{self.port}/pa"

    def fail_next(self, n: int = 1, http_status: int = 200, status: int = 12, delay: float = 0.0) -> None:
        with self._lock:
            self._next_failures.extend(Failure(http_status, status, delay) for _ in range(n))

    def fail_receiver(self, receiver: str, status: int = 5) -> None:
        with self._lock:
            self._receiver_failures[receiver] = status

    def post_event(self, event: dict, url: str | None = None):
        """Do what Viber does: POST a signed callback to the webhook registered
        with set_webhook (or ``url``). Returns the response."""
        import requests

        from tests.fakes import viber_body, viber_signature

        target = url or self.webhooks[-1]["url"]
        raw = viber_body(event)
        return requests.post(target, data=raw, timeout=10, headers={
            "Content-Type": "application/json", "X-Viber-Content-Signature": viber_signature(self.auth_token, raw)})

    def sent_to(self, receiver: str) -> list[ViberSent]:
        with self._lock:
            return [m for m in self.messages if m.receiver == receiver]

    # --- the API -----------------------------------------------------------------
    @staticmethod
    def _json(payload: dict, http_status: int = 200) -> FakeResponse:
        return FakeResponse.json(payload, http_status)

    def _status(self, status: int, **extra) -> FakeResponse:
        return self._json({"status": status, "status_message": STATUS_MESSAGES.get(status, "generalError"), **extra})

    def _serve(self, request: FakeRequest) -> FakeResponse:
        response = self._handle(request)
        with self._lock:
            self.requests.append((request.path, response.status_code))
        return response

    def _handle(self, request: FakeRequest) -> FakeResponse:
        if request.method != "POST" or not request.path.startswith("/pa/"):
            return FakeResponse(b"not found", 404)
        token = request.headers.get("X-Viber-Auth-Token", "")
        if not secrets.compare_digest(token, self.auth_token):
            return self._status(2)
        with self._lock:
            failure = self._next_failures.pop(0) if self._next_failures else None
        if failure is not None:
            if failure.delay:
                threading.Event().wait(failure.delay)
            if failure.http_status != 200:
                return FakeResponse(b"upstream error", failure.http_status)
            return self._status(failure.status)
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            return self._status(3)
        op = request.path[len("/pa/") :]
        if op == "send_message":
            return self._send(body)
        if op == "broadcast_message":
            return self._broadcast(body)
        if op == "set_webhook":
            with self._lock:
                self.webhooks.append(body)
            return self._status(0, event_types=body.get("event_types") or ["delivered", "seen", "failed"])
        if op == "get_account_info":
            return self._status(0, id="pa:fake", name="Lanpya", uri="lanpya", webhook="", members=[])
        return self._status(3)

    def _check_message(self, body: dict) -> int:
        if not isinstance(body.get("sender"), dict) or not body["sender"].get("name"):
            return 4
        kind = body.get("type")
        if kind not in ("text", "picture", "video", "file", "location", "contact", "sticker", "url", "rich_media"):
            return 3
        if kind == "text" and not body.get("text"):
            return 4
        return 0

    def _send(self, body: dict) -> FakeResponse:
        receiver = body.get("receiver")
        if not receiver:
            return self._status(4)
        bad = self._check_message(body)
        if bad:
            return self._status(bad)
        with self._lock:
            failed = self._receiver_failures.get(receiver)
            if failed:
                return self._status(failed)
            token = next(self._tokens)
            self.messages.append(ViberSent(token, receiver, body["type"], body.get("text"), body))
        return self._status(0, message_token=token, chat_hostname="SN-CHAT-FAKE")

    def _broadcast(self, body: dict) -> FakeResponse:
        receivers = body.get("broadcast_list")
        if not isinstance(receivers, list) or not receivers:
            return self._status(4)
        if len(receivers) > MAX_BROADCAST:
            return self._status(3)
        bad = self._check_message(body)
        if bad:
            return self._status(bad)
        failed_list = []
        with self._lock:
            token = next(self._tokens)
            self.broadcasts.append(list(receivers))
            for r in receivers:
                status = self._receiver_failures.get(r)
                if status:
                    failed_list.append(
                        {"receiver": r, "status": status, "status_message": STATUS_MESSAGES.get(status, "error")}
                    )
                else:
                    self.messages.append(ViberSent(token, r, body["type"], body.get("text"), body, broadcast=True))
        return self._status(0, message_token=token, failed_list=failed_list)
