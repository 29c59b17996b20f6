"""SMS through the real ``twilio`` client, pointed at ``TWILIO_API_URL``.

The client's resources, serialisation, authentication and error parsing run
as they are; only its transport is ours (:class:`PooledHttpClient`, through
Twilio's documented ``http_client`` hook): the stock ``TwilioHttpClient`` is
not safe to share between threads (it returns the response through an
instance attribute another thread may have overwritten, so one send could be
recorded with another's message sid), and it spends most of a send's CPU in
``requests`` (re-reading the proxy environment on every call). Ours keeps
connections alive in a thread-safe urllib3 pool sized for the dispatcher's
threads, resolves proxy and CA settings once, as ``requests`` would, and
never logs a request (numbers and bodies).
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
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
#: connections kept alive to the API (at least the dispatcher's send threads)
POOL_SIZE = 16


class PooledHttpClient(HttpClient):
    """A ``twilio.http.HttpClient`` over one thread-safe, keep-alive urllib3 pool.

    No retries and no redirects: a POST that may have reached Twilio is not
    repeated here (the outbox decides, with its backoff). Transport failures
    raise urllib3's exceptions (``...TimeoutError`` for timeouts)."""

    def __init__(self, base_url: str, timeout: float = 10.0, pool_size: int = POOL_SIZE):
        super().__init__(_quiet, False, timeout)
        # what requests would take from the environment (HTTPS_PROXY, NO_PROXY,
        # REQUESTS_CA_BUNDLE ...), read once here instead of on every call
        settings = requests.Session().merge_environment_settings(base_url, {}, None, None, None)
        proxy = settings["proxies"].get(urlsplit(base_url).scheme)
        verify = settings["verify"]
        tls: dict = (
            {"cert_reqs": "CERT_NONE"}
            if verify is False
            else {
                "cert_reqs": "CERT_REQUIRED",
                "ca_certs": verify if isinstance(verify, str) else requests.certs.where(),
            }
        )
        kw = dict(num_pools=4, maxsize=pool_size, block=False, retries=False, **tls)
        self.pool = urllib3.ProxyManager(proxy, **kw) if proxy else urllib3.PoolManager(**kw)

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
        headers = dict(headers or {})
        if auth is not None:
            user, password = auth
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(
                "ascii"
            )
        if params:
            url = url + ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        body = None
        if data is not None and method.upper() not in ("GET", "DELETE"):
            body = urlencode(data, doseq=True).encode("utf-8")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        answer = self.pool.request(
            method.upper(),
            url,
            body=body,
            headers=headers,
            redirect=allow_redirects,
            timeout=timeout or self.timeout,
            retries=False,
            preload_content=True,
        )
        return Response(answer.status, answer.data.decode("utf-8", "replace"), dict(answer.headers))


class TwilioSender:
    channel = "sms"

    def __init__(self, config: Config, timeout: float = 10.0):
        self.config = config
        self.client = Client(
            config.twilio_account_sid,
            config.twilio_auth_token,
            http_client=PooledHttpClient(config.twilio_api_url, timeout=timeout),
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
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            return SendOutcome(error=transport_error(exc))
        except TwilioException as exc:  # e.g. an answer that is not JSON
            return SendOutcome(error=classify_twilio(None, None, type(exc).__name__))
        return SendOutcome(provider_id=message.sid, provider_status=message.status)
