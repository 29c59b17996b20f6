"""Viber's REST bot API (``send_message``, ``broadcast_message``) at ``VIBER_API_URL``."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import requests

from lanpya.channels.errors import ProviderError, SendOutcome, classify_viber, transport_error
from lanpya.config import Config

logger = logging.getLogger(__name__)

#: Viber's limit for one broadcast_message call
BROADCAST_MAX = 300
#: keys of Outbox.extra passed through to Viber's message payload
PASS_THROUGH = ("keyboard", "tracking_data", "min_api_version", "media", "thumbnail", "rich_media", "type")


@dataclass
class BroadcastOutcome:
    provider_id: str | None = None
    #: the whole call failed (every receiver of the batch)
    error: ProviderError | None = None
    #: receivers Viber listed in failed_list
    failed: dict[str, ProviderError] = field(default_factory=dict)


class ViberSender:
    channel = "viber"

    def __init__(self, config: Config, timeout: float = 10.0):
        self.config = config
        self.timeout = timeout
        self._local = threading.local()  # one HTTP session per thread: requests.Session is not thread-safe

    @property
    def http(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"X-Viber-Auth-Token": self.config.viber_auth_token})
            self._local.session = session
        return session

    @staticmethod
    def configured(config: Config) -> bool:
        return bool(config.viber_auth_token)

    def payload(self, body: str, extra: dict | None = None) -> dict:
        data: dict = {"sender": {"name": self.config.viber_bot_name}, "type": "text", "text": body}
        for key in PASS_THROUGH:
            if extra and key in extra:
                data[key] = extra[key]
        if "keyboard" in data:
            data.setdefault("min_api_version", 3)
        return data

    def _post(self, op: str, data: dict) -> tuple[dict | None, ProviderError | None]:
        try:
            response = self.http.post(f"{self.config.viber_api_url}/{op}", json=data, timeout=self.timeout)
        except requests.RequestException as exc:
            return None, transport_error(exc)
        if response.status_code >= 500 or response.status_code == 429:
            return None, ProviderError("transient", f"http:{response.status_code}")
        if response.status_code != 200:
            return None, ProviderError("permanent", f"http:{response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            return None, ProviderError("transient", "viber:not-json")
        if not isinstance(answer, dict):
            return None, ProviderError("transient", "viber:not-json")
        status = answer.get("status")
        if status != 0:
            return answer, classify_viber(int(status) if isinstance(status, int) else -1,
                                          str(answer.get("status_message", "")))
        return answer, None

    def send(self, to: str, body: str, extra: dict | None = None, ref: int | None = None) -> SendOutcome:
        data = self.payload(body, extra)
        data["receiver"] = to
        answer, error = self._post("send_message", data)
        if error is not None:
            return SendOutcome(error=error)
        token = answer.get("message_token") if answer else None
        return SendOutcome(provider_id=str(token) if token is not None else None, provider_status="sent")

    def set_webhook(self, url: str) -> tuple[bool, str]:
        """Register ``url`` (PUBLIC_URL + /viber) as the bot's webhook. Viber
        calls it back with a signed ``webhook`` event before answering."""
        answer, error = self._post(
            "set_webhook",
            {"url": url, "event_types": ["delivered", "seen", "failed", "subscribed", "unsubscribed",
                                         "conversation_started"], "send_name": False, "send_photo": False},
        )
        if error is not None:
            return False, error.code
        return True, "ok"

    def broadcast(self, receivers: list[str], body: str, extra: dict | None = None) -> BroadcastOutcome:
        """One broadcast_message call; ``receivers`` must be at most 300."""
        if not 0 < len(receivers) <= BROADCAST_MAX:
            raise ValueError(f"a broadcast takes 1..{BROADCAST_MAX} receivers, got {len(receivers)}")
        data = self.payload(body, extra)
        data["broadcast_list"] = list(receivers)
        answer, error = self._post("broadcast_message", data)
        if error is not None:
            return BroadcastOutcome(error=error)
        failed: dict[str, ProviderError] = {}
        for item in (answer or {}).get("failed_list") or []:
            if isinstance(item, dict) and item.get("receiver"):
                status = item.get("status")
                failed[str(item["receiver"])] = classify_viber(
                    int(status) if isinstance(status, int) else -1, str(item.get("status_message", ""))
                )
        token = (answer or {}).get("message_token")
        return BroadcastOutcome(provider_id=str(token) if token is not None else None, failed=failed)
