"""Answers that depend on what was said: destination, language, agency."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.api import InternalAPI, InternalAPIError
from actions.words import fold, is_skip

logger = logging.getLogger(__name__)

DESTINATIONS = ("thailand", "malaysia", "china")
LANGUAGES = ("en", "my", "kac", "shn")
AGENCY_RESPONSES = {
    "licensed": "utter_agency_licensed",
    "revoked": "utter_agency_revoked",
    "not_found": "utter_agency_not_found",
}


def latest_entity(tracker: Tracker, entity: str) -> Optional[str]:
    values = [e.get("value") for e in (tracker.latest_message or {}).get("entities") or []
              if e.get("entity") == entity and e.get("value")]
    return str(values[-1]).lower() if values else None


class ActionMigrateAnswer(Action):
    """The destination's answer when one is named, else the general one."""

    def name(self) -> Text:
        return "action_migrate_answer"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        destination = latest_entity(tracker, "destination")
        if destination in DESTINATIONS:
            dispatcher.utter_message(response=f"utter_migrate_{destination}")
        else:
            dispatcher.utter_message(response="utter_migrate_legally")
        return []


class ActionSetLanguage(Action):
    """A language named in the message becomes the contact's language."""

    def name(self) -> Text:
        return "action_set_language"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        language = latest_entity(tracker, "language")
        if language not in LANGUAGES:
            dispatcher.utter_message(response="utter_choose_language")
            return []
        try:
            InternalAPI().set_language(tracker.sender_id, language)
        except InternalAPIError as exc:
            # the slot still changes this conversation's language; the worker
            # also reads "language" from the reply
            logger.error("set_language failed (%s)", exc)
        dispatcher.utter_message(response="utter_language_set")
        return [SlotSet("language", language)]


class ValidateAgencyForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_agency_form"

    def validate_agency_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> Dict[Text, Any]:
        text = str(value or "").strip()
        if not text or is_skip(text) or len(fold(text)) < 2:
            return {"agency_name": None}
        return {"agency_name": text[:120]}


class ActionCheckAgency(Action):
    """Licensed / revoked / not found, from the app's agency list."""

    def name(self) -> Text:
        return "action_check_agency"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        query = tracker.get_slot("agency_name") or ""
        try:
            status = InternalAPI().check_agency(query).get("status")
        except InternalAPIError as exc:
            # unknown is not "licensed": the careful answer
            logger.error("agency check failed (%s)", exc)
            status = "not_found"
        dispatcher.utter_message(response=AGENCY_RESPONSES.get(str(status), "utter_agency_not_found"))
        return [SlotSet("agency_name", None)]
