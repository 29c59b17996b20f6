"""The worker's way into Rasa: ``POST /webhooks/lanpya/webhook``.

Request (docs/interfaces.md, "Worker → Rasa")::

    {"sender": "<contact uuid>", "message": "<normalised text>",
     "metadata": {"language": "my", "channel": "sms", "risk": null | {...}}}

Reply::

    {"messages": [{"response": "utter_greet", "language": "my",
                   "variables": {"township": "Lashio"}}, {"text": ...}, ...],
     "intent": "report_concern", "confidence": 0.93, "language": "my", "case_id": 12}

A response from the domain comes as its key, the conversation's language at
that point of the turn and its placeholder values: the worker renders it
from the content files (bot/channels/nlg.py). A literal text (none today)
comes as ``text``. ``intent``/``confidence`` are the latest user message's,
``language`` and ``case_id`` the tracker's slots after the turn (the tracker
the turn saved: bot/channels/tracker_store.py; read back from the store
only if that is not at hand). The sender is a random contact id, never a
phone number.

A lone menu digit (1-9, Burmese ၁-၉, Shan ႑-႙) outside a form is the menu
choice in bot/menu.yml, in every language: it is rewritten to ``/<intent>``.
Inside a form the digit is an answer and passes unchanged.

Errors answer 4xx/5xx (never an empty 200), so the worker keeps the message
and retries or sends its holding reply. When RASA_AUTH_TOKEN is set, the
same token is required here (``?token=`` or ``Authorization: Bearer``), as
Rasa requires it on its own HTTP API.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import unicodedata
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Text

import yaml
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import speedups  # noqa: F401 - applied when Rasa loads this channel
from channels.tracker_store import unwrap

logger = logging.getLogger(__name__)

MENU_FILE = Path(__file__).resolve().parent.parent / "menu.yml"
_DIGITS = str.maketrans({chr(0x1040 + i): str(i) for i in range(10)} | {chr(0x1090 + i): str(i) for i in range(10)})
_LONE_DIGIT = re.compile(r"^\s*#?\s*([0-9])\s*[.)\u104b\u104a]?\s*$")
MAX_MESSAGE_CHARS = 2000


def load_menu(path: Path = MENU_FILE) -> Dict[int, str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {int(k): str(v) for k, v in (data.get("menu") or {}).items()}


def menu_choice(text: str, menu: Dict[int, str]) -> Optional[str]:
    """The menu intent for a lone digit in any of the scripts, else None."""
    match = _LONE_DIGIT.match(unicodedata.normalize("NFC", text).translate(_DIGITS))
    if not match:
        return None
    return menu.get(int(match.group(1)))


class LanpyaOutput(CollectingOutputChannel):
    """Collects the turn's messages; a deferred response (bot/channels/nlg.py)
    is kept as its key, language and variables for the worker to render."""

    @classmethod
    def name(cls) -> Text:
        return "lanpya"

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("lanpya"), dict):
            deferred = custom["lanpya"]
            out: Dict[Text, Any] = {"response": deferred.get("response")}
            if deferred.get("language"):
                out["language"] = deferred["language"]
            if deferred.get("variables"):
                out["variables"] = deferred["variables"]
            await self._persist_message(out)
            return
        await super().send_response(recipient_id, message)


def _saved_tracker(agent: Any, sender: str) -> Any:
    take = getattr(unwrap(agent.tracker_store), "take_saved", None)
    return take(sender) if take is not None else None


class LanpyaInput(InputChannel):
    """The custom input channel the conversation worker calls."""

    @classmethod
    def name(cls) -> Text:
        return "lanpya"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "LanpyaInput":
        return cls()

    def __init__(self, menu: Optional[Dict[int, str]] = None, token: Optional[str] = None) -> None:
        self.menu = menu if menu is not None else load_menu()
        self.token = token if token is not None else os.environ.get("RASA_AUTH_TOKEN", "")

    def _authorised(self, request: Request) -> bool:
        if not self.token:
            return True
        given = request.args.get("token") or ""
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("lanpya_webhook", __name__)

        @bp.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "unauthorised"}, status=401)
            body = request.json if isinstance(request.json, dict) else None
            sender = body.get("sender") if body else None
            text = body.get("message") if body else None
            metadata = body.get("metadata") if body else None
            if not isinstance(sender, str) or not sender.strip() or len(sender) > 64:
                return response.json({"error": "sender (the contact's uuid) is required"}, status=400)
            if not isinstance(text, str) or len(text) > MAX_MESSAGE_CHARS:
                return response.json({"error": "message must be a string"}, status=400)
            if metadata is not None and not isinstance(metadata, dict):
                return response.json({"error": "metadata must be an object"}, status=400)

            agent = request.app.ctx.agent
            if agent is None or not agent.is_ready():
                return response.json({"error": "no model loaded"}, status=503)

            # the tracker is read first only for a lone menu digit (is a form asking?):
            # a retrieval replays every event of the conversation, so not for each message
            intent = menu_choice(text, self.menu)
            if intent:
                before = await agent.tracker_store.retrieve(sender)
                if before is None or before.active_loop_name is None:
                    text = f"/{intent}"

            collector = LanpyaOutput()
            try:
                await on_new_message(UserMessage(
                    text, collector, sender, input_channel=self.name(), metadata=metadata or {},
                ))
            except Exception:  # noqa: BLE001 - the worker must retry, not lose the message
                logger.exception("handling a message failed")
                return response.json({"error": "message not handled"}, status=500)

            tracker = _saved_tracker(agent, sender) or await agent.tracker_store.retrieve(sender)
            latest = (tracker.latest_message.intent if tracker and tracker.latest_message else {}) or {}
            messages = [
                {k: v for k, v in m.items() if k != "recipient_id" and v is not None}
                for m in collector.messages
            ]
            return response.json({
                "messages": messages,
                "intent": latest.get("name"),
                "confidence": latest.get("confidence"),
                "language": tracker.get_slot("language") if tracker else None,
                "case_id": tracker.get_slot("case_id") if tracker else None,
            })

        return bp
