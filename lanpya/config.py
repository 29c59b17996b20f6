"""The one place settings are read.

Every setting comes from the environment (after ``load_dotenv()`` reads an
optional ``.env``). Modules receive a :class:`Config`; none reads
``os.environ`` itself.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent

#: the value .env.example ships; refused in production
DEFAULT_SECRET = "change-me"  # noqa: S105 - the placeholder we refuse


class ConfigError(RuntimeError):
    """A required setting is missing or wrong; the message names the key."""


#: USD, indicative list prices; set SEGMENT_PRICES for the operator's real ones
DEFAULT_SEGMENT_PRICES = {"sms:MM": 0.2, "sms:TH": 0.03, "sms:CN": 0.04, "sms:MY": 0.05, "sms:*": 0.1, "viber:*": 0.0}


def _prices(env: dict, key: str) -> dict:
    """``sms:MM=0.2,sms:*=0.1,viber:*=0`` → {"sms:MM": 0.2, ...}"""
    raw = env.get(key)
    if not raw:
        return dict(DEFAULT_SEGMENT_PRICES)
    out = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if ":" not in name:
            raise ConfigError(f"{key}: expected channel:COUNTRY=price, got {part!r}")
        try:
            out[name] = float(value)
        except ValueError as exc:
            raise ConfigError(f"{key}: price for {name} must be a number, got {value!r}") from exc
    return out


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: dict, key: str, default: int) -> int:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a whole number, got {raw!r}") from exc


def _float(env: dict, key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from exc


@dataclass
class Config:
    """Typed settings. Build with :meth:`from_env`; tests build it directly."""

    env: str = "development"  # development | production | test
    database_url: str = ""
    redis_url: str = ""
    rasa_tracker_url: str = ""
    rasa_url: str = "http://127.0.0.1:5005"
    action_server_url: str = "http://127.0.0.1:5055/webhook"
    public_url: str = "http://127.0.0.1:8000"
    internal_url: str = "http://127.0.0.1:8000"
    secret_key: str = DEFAULT_SECRET
    data_keys: list[str] = field(default_factory=list)
    lookup_key: str = ""
    internal_token: str = ""

    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_url: str = "https://api.twilio.com"
    twilio_rate: float = 10.0  # messages per second, across all workers
    #: ask Twilio to discard bodies and obfuscate numbers on its side (account feature)
    twilio_discard_content: bool = False

    viber_auth_token: str = ""
    viber_api_url: str = "https://chatapi.viber.com/pa"
    viber_bot_name: str = "Lanpya"
    viber_rate: float = 50.0

    web_port: int = 8000
    rasa_port: int = 5005
    action_port: int = 5055

    var_dir: Path = ROOT / "var"
    spool_dir: Path = ROOT / "var" / "spool"
    content_dir: Path = ROOT / "content"
    bot_dir: Path = ROOT / "bot"

    hotline_number: str = ""
    default_language: str = "my"
    holding_reply_after_s: int = 60
    rasa_timeout_s: float = 20.0
    rasa_auth_token: str = ""
    worker_threads: int = 16
    #: niceness the worker and the Rasa side lower themselves to, so the web process's
    #: webhook acknowledgements go first when the CPU is busy (0 = leave it)
    background_nice: int = 10
    session_timeout_min: int = 60
    sender_limit_per_min: int = 20
    new_sender_limit_per_min: int = 200
    max_body_bytes: int = 64 * 1024

    deadline_emergency_min: int = 5
    deadline_urgent_min: int = 15
    deadline_normal_min: int = 60

    quiet_start: str = "20:00"
    quiet_end: str = "08:00"
    approval_threshold: int = 5000
    #: a campaign fire missed while the scheduler was down still runs (once) this late
    campaign_misfire_grace_s: int = 3600
    #: price of one SMS segment / one Viber message, by "channel:COUNTRY" ("channel:*" = any)
    segment_prices: dict = field(default_factory=lambda: dict(DEFAULT_SEGMENT_PRICES))
    segment_price_currency: str = "USD"

    retention_message_days: int = 90
    retention_closed_case_days: int = 365
    retention_tracker_days: int = 30
    retention_audit_days: int = 730

    session_lifetime_min: int = 480
    login_max_failures: int = 5
    login_lockout_min: int = 15
    insights_min_cell: int = 5

    log_level: str = "INFO"

    @property
    def rasa_urls(self) -> list[str]:
        """``RASA_URL`` may name several Rasa replicas, comma-separated (the
        worker pins each contact to one: conversations.rasa.RasaReplicas)."""
        urls = [u.strip().rstrip("/") for u in self.rasa_url.split(",") if u.strip()]
        return urls or ["http://127.0.0.1:5005"]

    # ------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: dict | None = None, *, dotenv: bool = True) -> Config:
        if dotenv and environ is None:
            load_dotenv(ROOT / ".env", override=False)
        env = dict(os.environ if environ is None else environ)
        var_dir = Path(env.get("LANPYA_VAR_DIR") or ROOT / "var")
        keys = [k.strip() for k in (env.get("LANPYA_DATA_KEY") or "").split(",") if k.strip()]
        return cls(
            env=env.get("LANPYA_ENV", "development"),
            database_url=env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'lanpya.db'}",
            redis_url=env.get("REDIS_URL", ""),
            rasa_tracker_url=env.get("RASA_TRACKER_URL", ""),
            rasa_url=env.get("RASA_URL") or f"http://127.0.0.1:{_int(env, 'RASA_PORT', 5005)}",
            action_server_url=env.get("ACTION_SERVER_URL")
            or f"http://127.0.0.1:{_int(env, 'ACTION_PORT', 5055)}/webhook",
            public_url=(env.get("PUBLIC_URL") or f"http://127.0.0.1:{_int(env, 'WEB_PORT', 8000)}").rstrip("/"),
            internal_url=(env.get("INTERNAL_URL") or f"http://127.0.0.1:{_int(env, 'WEB_PORT', 8000)}").rstrip("/"),
            secret_key=env.get("LANPYA_SECRET_KEY", DEFAULT_SECRET),
            data_keys=keys,
            lookup_key=env.get("LANPYA_LOOKUP_KEY", ""),
            internal_token=env.get("LANPYA_INTERNAL_TOKEN", ""),
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            twilio_from_number=env.get("TWILIO_FROM_NUMBER", ""),
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", ""),
            twilio_api_url=(env.get("TWILIO_API_URL") or "https://api.twilio.com").rstrip("/"),
            twilio_rate=_float(env, "TWILIO_RATE", 10.0),
            twilio_discard_content=_bool(env.get("TWILIO_DISCARD_CONTENT")),
            viber_auth_token=env.get("VIBER_AUTH_TOKEN", ""),
            viber_api_url=(env.get("VIBER_API_URL") or "https://chatapi.viber.com/pa").rstrip("/"),
            viber_bot_name=env.get("VIBER_BOT_NAME", "Lanpya"),
            viber_rate=_float(env, "VIBER_RATE", 50.0),
            web_port=_int(env, "WEB_PORT", 8000),
            rasa_port=_int(env, "RASA_PORT", 5005),
            action_port=_int(env, "ACTION_PORT", 5055),
            var_dir=var_dir,
            spool_dir=Path(env.get("LANPYA_SPOOL_DIR") or var_dir / "spool"),
            content_dir=Path(env.get("LANPYA_CONTENT_DIR") or ROOT / "content"),
            hotline_number=env.get("HOTLINE_NUMBER", ""),
            default_language=env.get("DEFAULT_LANGUAGE", "my"),
            holding_reply_after_s=_int(env, "HOLDING_REPLY_AFTER_S", 60),
            rasa_timeout_s=_float(env, "RASA_TIMEOUT_S", 20.0),
            rasa_auth_token=env.get("RASA_AUTH_TOKEN", ""),
            worker_threads=_int(env, "WORKER_THREADS", 16),
            session_timeout_min=_int(env, "SESSION_TIMEOUT_MIN", 60),
            background_nice=_int(env, "BACKGROUND_NICE", 10),
            sender_limit_per_min=_int(env, "SENDER_LIMIT_PER_MIN", 20),
            new_sender_limit_per_min=_int(env, "NEW_SENDER_LIMIT_PER_MIN", 200),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 64 * 1024),
            deadline_emergency_min=_int(env, "DEADLINE_EMERGENCY_MIN", 5),
            deadline_urgent_min=_int(env, "DEADLINE_URGENT_MIN", 15),
            deadline_normal_min=_int(env, "DEADLINE_NORMAL_MIN", 60),
            quiet_start=env.get("QUIET_START", "20:00"),
            quiet_end=env.get("QUIET_END", "08:00"),
            approval_threshold=_int(env, "CAMPAIGN_APPROVAL_THRESHOLD", 5000),
            campaign_misfire_grace_s=_int(env, "CAMPAIGN_MISFIRE_GRACE_S", 3600),
            segment_prices=_prices(env, "SEGMENT_PRICES"),
            segment_price_currency=env.get("SEGMENT_PRICE_CURRENCY", "USD"),
            retention_message_days=_int(env, "RETENTION_MESSAGE_DAYS", 90),
            retention_closed_case_days=_int(env, "RETENTION_CLOSED_CASE_DAYS", 365),
            retention_tracker_days=_int(env, "RETENTION_TRACKER_DAYS", 30),
            retention_audit_days=_int(env, "RETENTION_AUDIT_DAYS", 730),
            session_lifetime_min=_int(env, "SESSION_LIFETIME_MIN", 480),
            login_max_failures=_int(env, "LOGIN_MAX_FAILURES", 5),
            login_lockout_min=_int(env, "LOGIN_LOCKOUT_MIN", 15),
            insights_min_cell=_int(env, "INSIGHTS_MIN_CELL", 5),
            log_level=env.get("LOG_LEVEL", "INFO"),
        )

    # ------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid or self.twilio_auth_token)

    @property
    def viber_enabled(self) -> bool:
        return bool(self.viber_auth_token)

    def deadline_minutes(self, severity: str) -> int:
        return {
            "emergency": self.deadline_emergency_min,
            "urgent": self.deadline_urgent_min,
        }.get(severity, self.deadline_normal_min)

    def validate(self, role: str = "web") -> None:
        """Fail closed: refuse to start when a required key is missing.

        ``role`` is the process being started (web, worker, scheduler, cli).
        """
        missing: list[str] = []
        if self.twilio_enabled:
            for key, value in (
                ("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                ("TWILIO_AUTH_TOKEN", self.twilio_auth_token),
            ):
                if not value:
                    missing.append(key)
            if not (self.twilio_from_number or self.twilio_messaging_service_sid):
                missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if not self.data_keys:
            missing.append("LANPYA_DATA_KEY")
        if not self.lookup_key:
            missing.append("LANPYA_LOOKUP_KEY")
        if not self.internal_token:
            missing.append("LANPYA_INTERNAL_TOKEN")
        if missing:
            raise ConfigError(
                "missing required setting(s): " + ", ".join(missing) + " (see .env.example)"
            )
        if self.is_production:
            if self.secret_key in ("", DEFAULT_SECRET) or len(self.secret_key) < 32:
                raise ConfigError(
                    "LANPYA_SECRET_KEY is the default or too short; production needs 32+ random characters"
                )
            if self.public_url.startswith("http://"):
                raise ConfigError("PUBLIC_URL must be https in production (Viber requires it)")

    def as_safe_dict(self) -> dict:
        """For display: secrets masked."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if any(s in f.name for s in ("token", "secret", "key", "auth")) and value:
                value = "***"
            out[f.name] = str(value)
        return out


def generate_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
