"""SMS through the real ``twilio`` client, pointed at ``TWILIO_API_URL``."""

from __future__ import annotations

import logging

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from lanpya.channels.errors import SendOutcome, classify_twilio, transport_error
from lanpya.config import Config

logger = logging.getLogger(__name__)

#: the client's own request logger prints numbers and bodies at INFO: keep it quiet
_quiet = logging.getLogger("twilio.http_client.lanpya")
_quiet.setLevel(logging.WARNING)

STATUS_PATH = "/sms/twilio/status"


class TwilioSender:
    channel = "sms"

    def __init__(self, config: Config, timeout: float = 10.0):
        self.config = config
        self.client = Client(
            config.twilio_account_sid,
            config.twilio_auth_token,
            http_client=TwilioHttpClient(timeout=timeout, logger=_quiet),
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
        except requests.RequestException as exc:
            return SendOutcome(error=transport_error(exc))
        except TwilioException as exc:  # e.g. an answer that is not JSON
            return SendOutcome(error=classify_twilio(None, None, type(exc).__name__))
        return SendOutcome(provider_id=message.sid, provider_status=message.status)
