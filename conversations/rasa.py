"""The worker's client for Rasa's custom ``lanpya`` input channel.

See docs/interfaces.md, "Worker → Rasa". The contact's random ``uuid`` is
the sender id: Rasa never sees a phone number.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import requests

logger = logging.getLogger(__name__)

CHANNEL_PATH = "/webhooks/lanpya/webhook"


class RasaUnavailable(Exception):
    """Rasa (or its action server) is down, slow or answered with an error.

    The message is retried later; nothing is lost."""


@dataclass
class RasaReply:
    messages: list[dict] = field(default_factory=list)
    intent: str | None = None
    confidence: float | None = None
    language: str | None = None
    case_id: int | None = None


class RasaClient:
    """Thread-safe: one ``requests.Session`` per thread."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 20.0,
        connect_timeout: float = 2.0,
        auth_token: str = "",
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.auth_token = auth_token
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            self._local.session = s
        return s

    def _params(self) -> dict:
        return {"token": self.auth_token} if self.auth_token else {}

    def send(
        self,
        sender: str,
        message: str,
        *,
        language: str,
        channel: str,
        risk: dict | None = None,
    ) -> RasaReply:
        payload = {
            "sender": sender,
            "message": message,
            "metadata": {"language": language, "channel": channel, "risk": risk},
        }
        try:
            resp = self._session().post(
                self.base_url + CHANNEL_PATH,
                json=payload,
                params=self._params(),
                timeout=(self.connect_timeout, self.timeout),
            )
        except requests.RequestException as exc:
            raise RasaUnavailable(type(exc).__name__) from exc
        if resp.status_code != 200:
            raise RasaUnavailable(f"HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise RasaUnavailable("reply is not JSON") from exc
        if isinstance(data, list):  # tolerate Rasa's REST-channel shape
            data = {"messages": data}
        if not isinstance(data, dict):
            raise RasaUnavailable("unexpected reply shape")
        messages = [m for m in data.get("messages") or [] if isinstance(m, dict)]
        confidence = data.get("confidence")
        case_id = data.get("case_id")
        return RasaReply(
            messages=messages,
            intent=data.get("intent"),
            confidence=float(confidence) if isinstance(confidence, int | float) else None,
            language=data.get("language"),
            case_id=int(case_id) if isinstance(case_id, int) else None,
        )

    def restart_session(self, sender: str) -> None:
        """Start the conversation afresh (after inactivity, or after a hand-off).

        Appends a ``restart`` event through Rasa's HTTP API; Rasa then runs
        ``action_session_start`` on the next message by itself (a tracker with
        no applied events starts a new session: rasa/core/processor.py)."""
        try:
            resp = self._session().post(
                f"{self.base_url}/conversations/{sender}/tracker/events",
                json=[{"event": "restart"}],
                params={**self._params(), "include_events": "NONE"},
                timeout=(self.connect_timeout, self.timeout),
            )
        except requests.RequestException as exc:
            raise RasaUnavailable(type(exc).__name__) from exc
        if resp.status_code != 200:
            raise RasaUnavailable(f"HTTP {resp.status_code} on restart")
