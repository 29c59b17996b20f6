"""A small client for the web app's internal API (docs/interfaces.md,
"Rasa → web app"). The bot never imports the app: it talks HTTP.

Settings from the environment (the action server's only settings):
INTERNAL_URL (default http://127.0.0.1:8000) and LANPYA_INTERNAL_TOKEN.
Every call has a short timeout; failures raise :class:`InternalAPIError`
and each action decides what the person still hears.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import requests

logger = logging.getLogger(__name__)

#: (connect, read) seconds: the worker waits on Rasa, which waits on us
TIMEOUT = (2.0, 5.0)


class InternalAPIError(Exception):
    """The internal API could not be reached or refused the request."""


class InternalAPI:
    def __init__(self, base_url: Optional[str] = None, token: Optional[str] = None,
                 session: Optional[requests.Session] = None) -> None:
        self.base_url = (base_url or os.environ.get("INTERNAL_URL") or "http://127.0.0.1:8000").rstrip("/")
        self.token = token if token is not None else os.environ.get("LANPYA_INTERNAL_TOKEN", "")
        self.session = session or requests.Session()

    def _request(self, method: str, path: str, **kwargs: Any) -> Dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            resp = self.session.request(method, self.base_url + path, headers=headers, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise InternalAPIError(f"{method} {path.split('?')[0]}: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            raise InternalAPIError(f"{method} {path.split('?')[0]}: HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise InternalAPIError(f"{method} {path.split('?')[0]}: reply is not JSON") from exc
        if not isinstance(data, dict):
            raise InternalAPIError(f"{method} {path.split('?')[0]}: unexpected reply")
        return data

    @staticmethod
    def _contact(uuid: str) -> str:
        return "/internal/contacts/" + quote(uuid, safe="")

    # --- cases -------------------------------------------------------------------
    def open_case(self, contact: str, *, category: str, severity: str, intent: str) -> Dict[str, Any]:
        """{"case_id", "created"}; idempotent per open case."""
        return self._request("POST", "/internal/cases", json={
            "contact": contact, "category": category, "severity": severity,
            "source": "bot", "intent": intent,
        })

    def add_answer(self, case_id: int, field: str, value: str) -> None:
        self._request("POST", f"/internal/cases/{int(case_id)}/answers", json={"field": field, "value": value})

    # --- contacts ----------------------------------------------------------------
    def handoff(self, contact: str, reason: str) -> Dict[str, Any]:
        return self._request("POST", self._contact(contact) + "/handoff", json={"reason": reason})

    def set_language(self, contact: str, language: str) -> None:
        self._request("POST", self._contact(contact) + "/language", json={"language": language})

    def subscribe(self, contact: str, *, township: Optional[str], state: Optional[str], roles: List[str]) -> None:
        self._request("POST", self._contact(contact) + "/subscribe",
                      json={"township": township, "state": state, "roles": roles})

    def erase(self, contact: str) -> None:
        self._request("POST", self._contact(contact) + "/erase", json={"confirm": True})

    # --- agencies ----------------------------------------------------------------
    def check_agency(self, query: str) -> Dict[str, Any]:
        """{"status": "licensed"|"not_found"|"revoked", "matches": [...]}"""
        return self._request("GET", "/internal/agencies", params={"q": query})
