"""SMS through the real ``twilio`` client, pointed at ``TWILIO_API_URL``.

The client's resources, serialisation, authentication and error parsing run
as they are; only its transport is ours (:class:`KeepAliveHttpClient`, through
Twilio's documented ``http_client`` hook): the stock ``TwilioHttpClient`` is
not safe to share between threads (it returns the response through an
instance attribute another thread may have overwritten, so one send could be
recorded with another's message sid), and it spends most of a send's CPU in
``requests`` (re-reading the proxy environment on every call). Ours keeps
HTTP/1.1 connections alive (standard library ``http.client``), each used by
one send thread at a time, resolves proxy and CA settings once, as
``requests`` would, and never logs a request (numbers and bodies).
"""

from __future__ import annotations

import base64
import http.client
import logging
import os
import select
import ssl
import threading
import time
from functools import lru_cache
from urllib.parse import quote_plus, unquote, urlencode, urlsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from lanpya.channels.errors import SendOutcome, classify_twilio, transport_error
from lanpya.config import Config

logger = logging.getLogger(__name__)

#: the client's own request logger prints numbers and bodies at INFO: keep it quiet
_quiet = logging.getLogger("twilio.http_client.lanpya")
_quiet.setLevel(logging.WARNING)

STATUS_PATH = "/sms/twilio/status"
#: idle keep-alive connections kept per host (at least the dispatcher's send threads)
POOL_SIZE = 16
#: an idle connection older than this is closed rather than reused (servers drop
#: idle connections; a POST is never retried on a fresh one here)
IDLE_MAX = 30.0


@lru_cache(maxsize=64)
def _quoted(value: str) -> str:
    """A form value, percent-encoded. Campaign bodies repeat (one text per
    language), and quoting a Burmese body byte by byte is most of a form's cost."""
    return quote_plus(value)


def form_body(data: dict) -> bytes:
    """``data`` as ``application/x-www-form-urlencoded`` (lists repeat the key),
    the same bytes as ``urlencode(data, doseq=True)``."""
    parts = []
    for key, value in data.items():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            parts.append(_quoted(str(key)) + "=" + _quoted(str(item)))
    return "&".join(parts).encode("ascii")


class _OneWrite:
    """Headers and a bytes body in one ``send`` (``http.client`` writes them
    separately): one segment on the wire, one wake-up of the server, and the
    loopback/TCP work of one system call instead of two. What CPython's
    http.client did itself until 3.x."""

    def _send_output(self, message_body=None, encode_chunked=False):
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", message_body))
            msg = b"\r\n".join(self._buffer)
            del self._buffer[:]
            self.send(msg)
            return
        super()._send_output(message_body, encode_chunked=encode_chunked)


class _HTTPConnection(_OneWrite, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_OneWrite, http.client.HTTPSConnection):
    pass


def _readable(sock) -> bool:
    """An idle keep-alive socket with something to read was closed by the
    server (EOF) or is out of step: it must not carry the next request."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class KeepAliveHttpClient(HttpClient):
    """A ``twilio.http.HttpClient`` over keep-alive ``http.client`` connections.

    Thread-safe: each request takes an idle connection (or opens one), uses it
    alone, and puts it back afterwards; the response is returned, never kept on
    the instance. No retries and no redirects: a POST that may have reached
    Twilio is not repeated here (the outbox decides, with its backoff). A
    connection that the server closed while idle is noticed before it is
    reused. Transport failures raise ``OSError`` (``TimeoutError`` for
    timeouts) or ``http.client.HTTPException``."""

    def __init__(self, base_url: str, timeout: float = 10.0, pool_size: int = POOL_SIZE):
        super().__init__(_quiet, False, timeout)
        self.pool_size = pool_size
        # what requests would take from the environment (HTTPS_PROXY, NO_PROXY,
        # REQUESTS_CA_BUNDLE ...), read once here instead of on every call
        settings = requests.Session().merge_environment_settings(base_url, {}, None, None, None)
        self.proxy = settings["proxies"].get(urlsplit(base_url).scheme)
        if self.proxy and "://" not in self.proxy:
            self.proxy = "http://" + self.proxy  # as requests reads "proxy:3128"
        if self.proxy and urlsplit(self.proxy).scheme != "http":
            # http.client speaks to a proxy in plain HTTP (CONNECT for https targets)
            raise ValueError("only an http:// proxy is supported for the Twilio API")
        verify = settings["verify"]
        if verify is False:  # REQUESTS_CA_BUNDLE-style opt-out: the operator asked for it
            self.tls = ssl.create_default_context()
            self.tls.check_hostname = False
            self.tls.verify_mode = ssl.CERT_NONE
        else:
            bundle = verify if isinstance(verify, str) else requests.certs.where()
            self.tls = (
                ssl.create_default_context(capath=bundle)
                if os.path.isdir(bundle)
                else ssl.create_default_context(cafile=bundle)
            )
        self._idle: dict[tuple[str, str, int], list[tuple[float, http.client.HTTPConnection]]] = {}
        self._lock = threading.Lock()
        self._auth: dict[tuple[str, str], str] = {}

    # --- connections -----------------------------------------------------------
    def _open(self, scheme: str, host: str, port: int, timeout: float) -> http.client.HTTPConnection:
        if not self.proxy:
            if scheme == "https":
                return _HTTPSConnection(host, port, timeout=timeout, context=self.tls)
            return _HTTPConnection(host, port, timeout=timeout)
        proxy = urlsplit(self.proxy)
        headers = {}
        if proxy.username:
            creds = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
            headers["Proxy-Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode("ascii")
        if scheme == "https":  # CONNECT through the proxy, then TLS to the API host
            conn = _HTTPSConnection(proxy.hostname, proxy.port or 80, timeout=timeout, context=self.tls)
            conn.set_tunnel(host, port, headers=headers)
        else:  # plain HTTP: absolute-form requests to the proxy
            conn = _HTTPConnection(proxy.hostname, proxy.port or 80, timeout=timeout)
            conn.lanpya_proxy_headers = headers
        return conn

    def _take(self, key: tuple[str, str, int], timeout: float) -> http.client.HTTPConnection:
        now = time.monotonic()
        while True:
            with self._lock:
                idle = self._idle.get(key)
                since, conn = idle.pop() if idle else (0.0, None)
            if conn is None:
                return self._open(*key, timeout)
            sock = conn.sock
            # closed by the server while idle (readable at EOF), or idle too long
            if sock is None or now - since > IDLE_MAX or _readable(sock):
                conn.close()
                continue
            sock.settimeout(timeout)
            conn.timeout = timeout
            return conn

    def _give_back(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.pool_size:
                idle.append((time.monotonic(), conn))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for _since, conn in conns:
                conn.close()

    # --- the hook ----------------------------------------------------------------
    def _authorization(self, auth: tuple[str, str]) -> str:
        header = self._auth.get(auth)
        if header is None:
            user, password = auth
            header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._auth[auth] = header
        return header

    def request(
        self,
        method,
        url,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects=False,
    ) -> Response:
        method = method.upper()
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = self._authorization(tuple(auth))
        if params:
            url = url + ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        body = None
        if data is not None and method not in ("GET", "DELETE"):
            body = form_body(data)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        parts = urlsplit(url)
        scheme = parts.scheme or "https"
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname or "", port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        timeout = timeout or self.timeout
        conn = self._take(key, timeout)
        proxy_headers = getattr(conn, "lanpya_proxy_headers", None)
        if proxy_headers is not None:  # plain HTTP through a proxy: absolute-form target
            target = url
            headers.update(proxy_headers)
        try:
            conn.request(method, target, body=body, headers=headers)
            answer = conn.getresponse()
            content = answer.read()
        except BaseException:
            conn.close()
            raise
        if answer.will_close:
            conn.close()
        else:
            self._give_back(key, conn)
        return Response(answer.status, content.decode("utf-8", "replace"), dict(answer.getheaders()))


class TwilioSender:
    channel = "sms"

    def __init__(self, config: Config, timeout: float = 10.0):
        self.config = config
        self.client = Client(
            config.twilio_account_sid,
            config.twilio_auth_token,
            http_client=KeepAliveHttpClient(config.twilio_api_url, timeout=timeout),
            # settings come from Config only: a non-empty mapping without TWILIO_* keys
            # stops the client from reading TWILIO_EDGE / TWILIO_REGION from os.environ
            environment={"LANPYA": "config"},
        )
        # every call of the Api domain (Messages included) goes to this base URL;
        # production leaves it at https://api.twilio.com, tests point it at the fake
        self.client.api.base_url = config.twilio_api_url
        self.status_callback = config.public_url + STATUS_PATH

    @staticmethod
    def configured(config: Config) -> bool:
        return bool(
            config.twilio_account_sid
            and config.twilio_auth_token
            and (config.twilio_from_number or config.twilio_messaging_service_sid)
        )

    def send(self, to: str, body: str, extra: dict | None = None, ref: int | None = None) -> SendOutcome:
        """``ref`` (the outbox id) goes into the StatusCallback URL, so a callback
        that overtakes our own commit of the message sid still finds its row."""
        callback = self.status_callback + (f"?o={ref}" if ref is not None else "")
        kwargs: dict = {"to": to, "body": body, "status_callback": callback}
        if self.config.twilio_messaging_service_sid:
            kwargs["messaging_service_sid"] = self.config.twilio_messaging_service_sid
        else:
            kwargs["from_"] = self.config.twilio_from_number
        if self.config.twilio_discard_content:
            # provider-side minimisation: Twilio keeps no body and no full number
            kwargs["content_retention"] = "discard"
            kwargs["address_retention"] = "obfuscate"
        media = (extra or {}).get("media_url")
        if media:
            kwargs["media_url"] = media if isinstance(media, list) else [media]
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            return SendOutcome(error=classify_twilio(exc.status, exc.code, exc.msg or ""))
        except (http.client.HTTPException, OSError) as exc:
            return SendOutcome(error=transport_error(exc))
        except TwilioException as exc:  # e.g. an answer that is not JSON
            return SendOutcome(error=classify_twilio(None, None, type(exc).__name__))
        return SendOutcome(provider_id=message.sid, provider_status=message.status)
