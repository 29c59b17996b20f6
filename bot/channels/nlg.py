"""Responses rendered by the web app, with the domain's text as a safety net.

Rasa's callback NLG (``/internal/nlg``: content/answers in the contact's
language) is used for every response. If the web app cannot answer
(down, timeout, unknown key, bad reply), Rasa's own callback generator
raises, Rasa logs it and drops the action's events: the person would get
silence, and a form would not even start. Here the domain's short English
text is sent instead and the failure is logged, so a reporter always hears
that help is coming.

For the worker's own channel (output channel ``lanpya``) nothing is rendered
here: the message carries the response key, the tracker's language and the
slots a placeholder may use (``custom.lanpya``), and the worker renders it
from the content files it already holds (conversations/handle.py). That
saves an HTTP call per response, which also sent the whole conversation
(``tracker.current_state``) and made Rasa validate the answer's JSON schema.
Rasa's other channels (its Twilio connector, ``rasa shell``) still get the
web app's text.

Configured by bot/serve.py: ``nlg: {type: channels.nlg.LanpyaNLG, url, token}``.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Text

from rasa.core.nlg.callback import CallbackNaturalLanguageGenerator
from rasa.core.nlg.generator import NaturalLanguageGenerator
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

#: the worker's output channel (bot/channels/lanpya_channel.py): it renders responses itself
DEFERRED_CHANNEL = "lanpya"
LANGUAGES = ("en", "my", "kac", "shn")
#: tracker slots that may fill a placeholder ({township} picks the MRC); as webhook/internal_content.py
SLOT_VARIABLES = ("township", "case_id")


def deferred(utter_action: Text, tracker: DialogueStateTracker, kwargs: Dict[Text, Any]) -> Dict[Text, Any]:
    """What the worker needs to render ``utter_action``: the key, the language the
    conversation is in at this point of the turn, and the placeholder values."""
    language = tracker.get_slot("language")
    if language not in LANGUAGES:
        metadata = (tracker.latest_message.metadata if tracker.latest_message else None) or {}
        language = metadata.get("language") if metadata.get("language") in LANGUAGES else None
    variables: Dict[Text, Any] = {}
    for name in SLOT_VARIABLES:
        value = tracker.get_slot(name)
        if value not in (None, "", "skipped") and isinstance(value, (str, int, float)):
            variables[name] = value
    for name, value in kwargs.items():
        if name not in ("response_id", "domain_responses") and isinstance(value, (str, int, float)):
            variables[name] = value
    return {"response": utter_action, "language": language, "variables": variables}


class LanpyaNLG(NaturalLanguageGenerator):
    def __init__(self, endpoint_config: EndpointConfig, domain: Optional[Domain] = None) -> None:
        self.remote = CallbackNaturalLanguageGenerator(endpoint_config)
        self.local = TemplatedNaturalLanguageGenerator((domain or Domain.empty()).responses)
        #: how many responses fell back to the domain text (for tests and logs)
        self.fallbacks = 0

    async def generate(
        self, utter_action: Text, tracker: DialogueStateTracker, output_channel: Text, **kwargs: Any
    ) -> Optional[Dict[Text, Any]]:
        if output_channel == DEFERRED_CHANNEL:
            return {"text": None, "custom": {"lanpya": deferred(utter_action, tracker, kwargs)}}
        try:
            return await self.remote.generate(utter_action, tracker, output_channel, **dict(kwargs))
        except Exception as exc:  # noqa: BLE001 - any failure: say something rather than nothing
            self.fallbacks += 1
            logger.error("NLG for %s failed (%s); sending the domain text", utter_action, type(exc).__name__)
            # Rasa passes the domain's responses with each call (the generator
            # may be created before the model, hence before the domain)
            responses = kwargs.pop("domain_responses", None)
            local = TemplatedNaturalLanguageGenerator(responses) if responses else self.local
            return await local.generate(utter_action, tracker, output_channel, **kwargs)
