"""Subscribing to awareness messages and erasing one's data."""

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

ROLES = ("planning", "family", "returnee")
ROLE_WORDS = {
    "1": "planning", "planning": "planning", "plan": "planning", "going": "planning", "migrant": "planning",
    "2": "family", "family": "family", "parent": "family", "mother": "family", "father": "family",
    "3": "returnee", "returnee": "returnee", "returned": "returnee", "came back": "returnee", "back": "returnee",
    # Burmese
    "မိသားစု": "family", "ပြန်လာသူ": "returnee", "သွားမယ်": "planning",
    # Jinghpaw
    "dinghku": "family", "nta masha": "family", "bai wa sai": "returnee",
}
KACHIN = {"myitkyina", "bhamo", "waingmaw", "mohnyin", "putao", "momauk", "mansi", "shwegu", "hpakant",
          "tanai", "chipwi", "mogaung", "sumprabum", "machanbaw", "injangyang", "tsawlaw", "khaunglanhpu",
          "nawngmun", "sadung"}
NORTHERN_SHAN = {"lashio", "muse", "kutkai", "namhkam", "hsipaw", "kyaukme", "namtu", "theinni", "hseni",
                 "kunlong", "laukkai", "mongmit", "namhsan", "nawnghkio", "tangyan", "manton", "mabein"}


def role_of(text: str) -> Optional[str]:
    folded = fold(text)
    if folded in ROLE_WORDS:
        return ROLE_WORDS[folded]
    for word, role in ROLE_WORDS.items():
        if len(word) > 2 and word in folded:
            return role
    return None


def state_of(township: Optional[str]) -> Optional[str]:
    key = fold(township)
    if key in KACHIN:
        return "kachin"
    if key in NORTHERN_SHAN:
        return "shan"
    return None


class ValidateSubscribeForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_subscribe_form"

    def validate_township(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: DomainDict) -> Dict[Text, Any]:
        text = str(value or "").strip()
        if is_skip(text):
            return {"township": "skipped"}
        if not text:
            return {"township": None}
        return {"township": text[:60].title() if text.isascii() else text[:60]}

    def validate_role(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                      domain: DomainDict) -> Dict[Text, Any]:
        text = str(value or "")
        if is_skip(text):
            return {"role": "skipped"}
        # None asks again (utter_ask_role lists 1 2 3)
        return {"role": role_of(text)}


class ActionSubscribe(Action):
    def name(self) -> Text:
        return "action_subscribe"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        township = tracker.get_slot("township")
        township = None if township in (None, "skipped") else township
        role = tracker.get_slot("role")
        roles = [role] if role in ROLES else []
        try:
            InternalAPI().subscribe(tracker.sender_id, township=township, state=state_of(township), roles=roles)
        except InternalAPIError as exc:
            logger.error("subscribe failed (%s)", exc)
            dispatcher.utter_message(response="utter_default")
        else:
            dispatcher.utter_message(response="utter_subscribed")
        return [SlotSet("township", None), SlotSet("role", None)]


class ActionEraseData(Action):
    """Only after an explicit yes (the rule puts utter_delete_confirm first)."""

    def name(self) -> Text:
        return "action_erase_data"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        try:
            InternalAPI().erase(tracker.sender_id)
        except InternalAPIError as exc:
            logger.error("erase failed (%s)", exc)
            dispatcher.utter_message(response="utter_delete_cancelled")
            return []
        dispatcher.utter_message(response="utter_deleted")
        # forget this conversation's answers too
        return [SlotSet(slot, None) for slot in (
            "relationship", "what_happened", "last_location", "since_when", "in_danger", "callback", "consent",
            "township", "role", "agency_name", "case_id", "destination", "unsent_answers")]
