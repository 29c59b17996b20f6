"""Encryption at rest and keyed lookup hashes.

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a
:class:`~cryptography.fernet.MultiFernet`: the first key in
``LANPYA_DATA_KEY`` encrypts, every listed key decrypts, so keys rotate by
putting a new key first and running ``lanpya keys rotate``.

Phone numbers and Viber ids are found by a keyed hash (HMAC-SHA256 under
``LANPYA_LOOKUP_KEY``), never by the plain value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import LargeBinary, String
from sqlalchemy.types import TypeDecorator

from lanpya.config import Config, ConfigError


class Keyring:
    def __init__(self, data_keys: list[str], lookup_key: str):
        if not data_keys:
            raise ConfigError("missing required setting: LANPYA_DATA_KEY")
        if not lookup_key:
            raise ConfigError("missing required setting: LANPYA_LOOKUP_KEY")
        try:
            self.fernets = [Fernet(k.encode()) for k in data_keys]
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "LANPYA_DATA_KEY must be comma-separated Fernet keys "
                "(make one with: lanpya keys new)"
            ) from exc
        self.multi = MultiFernet(self.fernets)
        self._lookup = lookup_key.encode()

    def encrypt(self, plain: str) -> bytes:
        return self.multi.encrypt(plain.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        return self.multi.decrypt(bytes(token)).decode("utf-8")

    def rotate(self, token: bytes) -> bytes:
        return self.multi.rotate(bytes(token))

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self._lookup, value.encode("utf-8"), hashlib.sha256).hexdigest()


_keyring: Keyring | None = None


def configure(config: Config) -> Keyring:
    """Install the process-wide keyring. Called by every process at start."""
    global _keyring
    _keyring = Keyring(config.data_keys, config.lookup_key)
    return _keyring


def keyring() -> Keyring:
    if _keyring is None:
        raise RuntimeError("lanpya.crypto.configure(config) was not called")
    return _keyring


def lookup_hash(value: str) -> str:
    return keyring().lookup_hash(value)


def new_key() -> str:
    return Fernet.generate_key().decode()


def new_lookup_key() -> str:
    return base64.urlsafe_b64encode(Fernet.generate_key()[:32]).decode()


class EncryptedText(TypeDecorator):
    """A text column stored as a Fernet token."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> bytes | None:
        if value is None:
            return None
        return keyring().encrypt(value)

    def process_result_value(self, value: bytes | None, dialect) -> str | None:
        if value is None:
            return None
        try:
            return keyring().decrypt(value)
        except InvalidToken:
            # a row under a key no longer configured: say so, do not crash a page
            return "[undecryptable: key missing]"


class EncryptedJSON(TypeDecorator):
    """A JSON value stored as a Fernet token."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> bytes | None:
        if value is None:
            return None
        return keyring().encrypt(json.dumps(value, ensure_ascii=False, sort_keys=True))

    def process_result_value(self, value: bytes | None, dialect) -> Any:
        if value is None:
            return None
        try:
            return json.loads(keyring().decrypt(value))
        except InvalidToken:
            return {"error": "undecryptable: key missing"}


LookupHash = String(64)
