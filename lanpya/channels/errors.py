"""Provider outcomes and how errors are classified.

- *transient*: timeouts, connection errors, HTTP 5xx and 429, Twilio 30001
  (queue overflow) and 20429, Viber tooManyRequests, account-level problems an
  operator can fix (bad credentials, webhook not set): retried with
  exponential backoff up to a cap, then the message fails;
- *permanent*: the message can never go as it is: Twilio 21211 (invalid
  number), 21610 (recipient opted out), 21614 (not a mobile number), Viber
  receiverNotRegistered / receiverNotSubscribed / no suitable device, bad
  data. The message fails at once; ``contact_flag`` says what to record on
  the contact (``opted_out`` or ``unreachable``) when the recipient is the
  cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

TRANSIENT = "transient"
PERMANENT = "permanent"

OPTED_OUT = "opted_out"
UNREACHABLE = "unreachable"

#: Twilio error codes → (kind, contact flag)
TWILIO_CODES: dict[int, tuple[str, str | None]] = {
    21211: (PERMANENT, UNREACHABLE),  # invalid 'To' number
    21214: (PERMANENT, UNREACHABLE),  # 'To' number cannot be reached
    21610: (PERMANENT, OPTED_OUT),  # recipient replied STOP
    21612: (PERMANENT, UNREACHABLE),  # cannot route to this number
    21614: (PERMANENT, UNREACHABLE),  # not a mobile number
    21408: (PERMANENT, None),  # region not enabled on the account: not the contact's fault
    21602: (PERMANENT, None),  # body required
    21617: (PERMANENT, None),  # body too long
    30001: (TRANSIENT, None),  # queue overflow
    20429: (TRANSIENT, None),  # too many requests
    20003: (TRANSIENT, None),  # authentication: an operator can fix it
    # delivery errors reported by status callbacks
    30003: (TRANSIENT, None),  # handset off or out of coverage: not the contact's choice
    30004: (PERMANENT, None),  # blocked (carrier filter or recipient): not proof of an opt-out
    30005: (PERMANENT, UNREACHABLE),  # unknown destination handset
    30006: (PERMANENT, UNREACHABLE),  # landline or unreachable carrier
}

#: Viber status codes → (kind, contact flag)
VIBER_CODES: dict[int, tuple[str, str | None]] = {
    1: (PERMANENT, None),  # invalidUrl
    2: (TRANSIENT, None),  # invalidAuthToken: an operator can fix it
    3: (PERMANENT, None),  # badData
    4: (PERMANENT, None),  # missingData
    5: (PERMANENT, UNREACHABLE),  # receiverNotRegistered
    6: (PERMANENT, OPTED_OUT),  # receiverNotSubscribed: they left the bot
    7: (TRANSIENT, None),  # publicAccountBlocked
    8: (TRANSIENT, None),  # publicAccountNotFound
    9: (TRANSIENT, None),  # publicAccountSuspended
    10: (TRANSIENT, None),  # webhookNotSet
    11: (PERMANENT, UNREACHABLE),  # receiverNoSuitableDevice
    12: (TRANSIENT, None),  # tooManyRequests
}

#: attempts before a transiently failing message is given up
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=15)
BACKOFF_CAP = timedelta(minutes=30)


@dataclass(frozen=True)
class ProviderError:
    kind: str  # TRANSIENT | PERMANENT
    code: str  # "twilio:21211", "viber:5", "http:503", "timeout" ...
    message: str = ""
    contact_flag: str | None = None

    @property
    def transient(self) -> bool:
        return self.kind == TRANSIENT


@dataclass(frozen=True)
class SendOutcome:
    provider_id: str | None = None
    provider_status: str | None = None
    error: ProviderError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def classify_twilio(http_status: int | None, code: int | None, message: str = "") -> ProviderError:
    if code is not None and code in TWILIO_CODES:
        kind, flag = TWILIO_CODES[code]
        return ProviderError(kind, f"twilio:{code}", message[:200], flag)
    if http_status is not None and (http_status >= 500 or http_status == 429):
        return ProviderError(TRANSIENT, f"http:{http_status}" if code is None else f"twilio:{code}", message[:200])
    if http_status in (401, 403):
        return ProviderError(TRANSIENT, f"http:{http_status}", message[:200])
    label = f"twilio:{code}" if code is not None else f"http:{http_status}"
    return ProviderError(PERMANENT, label, message[:200])


def classify_viber(status: int, message: str = "") -> ProviderError:
    kind, flag = VIBER_CODES.get(status, (TRANSIENT, None))  # "generalError" and unknown: retry
    return ProviderError(kind, f"viber:{status}", message[:200], flag)


def transport_error(exc: BaseException) -> ProviderError:
    """A timeout or a connection that failed: always worth another try."""
    name = type(exc).__name__
    code = "timeout" if "Timeout" in name else "connection"
    return ProviderError(TRANSIENT, code, name)


def backoff(attempts: int) -> timedelta:
    """Delay before attempt ``attempts + 1``: 15 s, 30 s, 1 min … capped at 30 min."""
    delay = BACKOFF_BASE * (2 ** max(0, attempts - 1))
    return min(delay, BACKOFF_CAP)
