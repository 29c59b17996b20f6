"""The worker's client for Rasa's custom ``lanpya`` input channel.

See docs/interfaces.md, "Worker → Rasa". The contact's random ``uuid`` is
the sender id: Rasa never sees a phone number.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests

from lanpya import clock

logger = logging.getLogger(__name__)

CHANNEL_PATH = "/webhooks/lanpya/webhook"


class RasaUnavailable(Exception):
    """Rasa (or its action server) is down, slow or answered with an error.

    The message is retried later; nothing is lost."""


class RasaUnreachable(RasaUnavailable):
    """No connection to this replica (refused, reset, connect timeout) or its
    circuit is open: the request did not run there, so another replica may
    take it at once (:class:`RasaReplicas`)."""


class RasaRejected(Exception):
    """Rasa refused this request itself (400, 413, 422): retrying cannot help."""


#: the lanpya channel refuses longer messages (bot/channels/lanpya_channel.py)
MAX_MESSAGE_CHARS = 2000


@dataclass
class RasaReply:
    messages: list[dict] = field(default_factory=list)
    intent: str | None = None
    confidence: float | None = None
    language: str | None = None
    case_id: int | None = None


class RasaClient:
    """Thread-safe: one ``requests.Session`` per thread.

    A small circuit breaker: after a failure, calls fail at once (no waiting
    on a dead or hanging Rasa) until a pause of 1, 2, 4 … 15 seconds has
    passed; then calls go through again and the first success closes it.
    So while Rasa is away every waiting contact is looked at every few
    seconds (holding replies go out on time) without piling up timeouts.
    """

    MAX_PAUSE = timedelta(seconds=15)
    SLOW_PAUSE = timedelta(seconds=2)

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
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until: datetime | None = None

    # --- circuit -----------------------------------------------------------
    def _check_circuit(self) -> None:
        with self._lock:
            if self._open_until is not None and clock.now() < self._open_until:
                raise RasaUnreachable("circuit open")

    def _failed(self, slow: bool = False) -> None:
        """``slow``: Rasa did not answer in time (it is busy, or hanging): a short,
        flat pause sheds our load without stopping the conversation for long.
        Otherwise (refused connection, 5xx) the pause grows 1, 2, 4 … 15 s."""
        with self._lock:
            self._failures += 1
            if slow:
                pause = self.SLOW_PAUSE
            else:
                pause = min(timedelta(seconds=2 ** min(self._failures - 1, 10)), self.MAX_PAUSE)
            self._open_until = clock.now() + pause

    def _succeeded(self) -> None:
        with self._lock:
            if self._failures:
                logger.info("Rasa answers again after %d failed call(s)", self._failures)
            self._failures = 0
            self._open_until = None

    @property
    def available(self) -> bool:
        with self._lock:
            return self._open_until is None or clock.now() >= self._open_until

    def _post(self, url: str, **kwargs) -> requests.Response:
        self._check_circuit()
        try:
            resp = self._session().post(url, timeout=(self.connect_timeout, self.timeout), **kwargs)
        except requests.ConnectionError as exc:
            # refused, reset or no connection in time: Rasa is away (also a replica
            # killed mid-request: retrying it elsewhere is what a retry here would do)
            self._failed()
            raise RasaUnreachable(type(exc).__name__) from exc
        except requests.RequestException as exc:
            self._failed(slow=isinstance(exc, requests.ReadTimeout))
            raise RasaUnavailable(type(exc).__name__) from exc
        if resp.status_code >= 500:
            self._failed()
            raise RasaUnavailable(f"HTTP {resp.status_code}")
        if resp.status_code in (400, 413, 422):
            raise RasaRejected(f"HTTP {resp.status_code}")
        if resp.status_code != 200:
            # 401/403/404/429: misconfigured or busy, not away; retry without tripping
            raise RasaUnavailable(f"HTTP {resp.status_code}")
        self._succeeded()
        return resp

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            # Rasa is reached directly: no proxy or netrc from the environment (and
            # not reading them costs a scan of os.environ per request)
            s.trust_env = False
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
        reassured: bool = False,
    ) -> RasaReply:
        metadata = {"language": language, "channel": channel, "risk": risk}
        if reassured:  # no risk word, and "she is fine / back": bot/components/metadata.py RiskRouter
            metadata["reassured"] = True
        payload = {"sender": sender, "message": message[:MAX_MESSAGE_CHARS], "metadata": metadata}
        resp = self._post(self.base_url + CHANNEL_PATH, json=payload, params=self._params())
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
        self._post(
            f"{self.base_url}/conversations/{sender}/tracker/events",
            json=[{"event": "restart"}],
            params={**self._params(), "include_events": "NONE"},
        )


def replica_index(sender: str, replicas: int) -> int:
    """The replica a contact is pinned to: a stable hash of its random id (the
    same on every worker process and across restarts, unlike ``hash()``)."""
    digest = hashlib.sha256(sender.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % replicas


class RasaReplicas:
    """Several Rasa servers behind one worker (``RASA_URL`` a comma-separated list).

    Each contact is pinned to one replica by :func:`replica_index` of its
    random id, so its turns go to the same server (warm tracker cache, one
    lock holder). Per-contact order does not depend on it: the worker never
    has two messages of one contact in flight (conversations.claim), and the
    replicas share the SQL tracker store and the Redis lock store.

    Failover: when the contact's replica cannot be reached (connection
    refused or reset, or its circuit is open after such a failure), the call
    goes to the next replica in the ring, at once, within the same attempt.
    A timeout or a 5xx is *not* failed over within the attempt (the request
    may have run there); the message goes back to the queue with its backoff,
    exactly as with one Rasa, and the retry finds that replica's circuit open
    and takes the next one. So nothing is lost, one answer is stored per
    message (the outbox rows come from the one reply that succeeded), and the
    holding reply follows the same rule as with one server: it goes out when
    no replica has answered for ``holding_reply_after_s``.
    """

    def __init__(self, clients: list[RasaClient]):
        if not clients:
            raise ValueError("at least one Rasa URL")
        self.clients = list(clients)

    @property
    def base_url(self) -> str:
        return ",".join(c.base_url for c in self.clients)

    @property
    def available(self) -> bool:
        return any(c.available for c in self.clients)

    def ring(self, sender: str) -> list[RasaClient]:
        """The replicas in the order this contact tries them."""
        start = replica_index(sender, len(self.clients))
        return self.clients[start:] + self.clients[:start]

    def _call(self, sender: str, call):
        last: RasaUnreachable | None = None
        for n, client in enumerate(self.ring(sender)):
            try:
                result = call(client)
            except RasaUnreachable as exc:
                last = exc
                continue
            if n:
                logger.info(
                    "Rasa replica %d of %d unreachable; a contact's turn went to the next one",
                    replica_index(sender, len(self.clients)) + 1,
                    len(self.clients),
                )
            return result
        assert last is not None
        raise RasaUnreachable(f"no replica reachable ({last})")

    def send(self, sender: str, message: str, **kwargs) -> RasaReply:
        return self._call(sender, lambda c: c.send(sender, message, **kwargs))

    def restart_session(self, sender: str) -> None:
        self._call(sender, lambda c: c.restart_session(sender))


def rasa_for(urls: list[str], **kwargs) -> RasaClient | RasaReplicas:
    """One client for one URL; :class:`RasaReplicas` for several."""
    if len(urls) == 1:
        return RasaClient(urls[0], **kwargs)
    return RasaReplicas([RasaClient(u, **kwargs) for u in urls])
