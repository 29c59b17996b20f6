"""Reports and emergencies: open the case first, then ask; each answer is
posted as it arrives; STOP, HELP and "talk to a person" end the form."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.api import InternalAPI, InternalAPIError
from actions.words import is_help, is_skip, is_stop, yes_no

logger = logging.getLogger(__name__)

REPORT_SLOTS = ("relationship", "what_happened", "last_location", "since_when", "in_danger", "callback", "consent")
YES_NO_SLOTS = ("in_danger", "callback", "consent")
#: slot value for a question the reporter chose not to answer
SKIPPED = "skipped"
#: an intent this sure ends a form with a hand-off
HANDOFF_CONFIDENCE = 0.8


def api() -> InternalAPI:
    return InternalAPI()


def risk_of(tracker: Tracker) -> Dict[str, Any]:
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    risk = metadata.get("risk") if isinstance(metadata, dict) else None
    return risk if isinstance(risk, dict) else {}


def case_category(intent: Optional[str], risk: Dict[str, Any]) -> str:
    if risk.get("category"):
        return str(risk["category"])
    return "trafficking"


def case_severity(intent: Optional[str], risk: Dict[str, Any]) -> str:
    if intent == "emergency" or risk.get("severity") == "emergency":
        return "emergency"
    return "urgent"


def open_case(tracker: Tracker) -> Optional[int]:
    """The contact's open case id (opening one if needed), or None if the app is unreachable."""
    risk = risk_of(tracker)
    if isinstance(risk.get("case_id"), int):
        return risk["case_id"]
    intent = (tracker.latest_message or {}).get("intent", {}).get("name")
    try:
        reply = api().open_case(
            tracker.sender_id, category=case_category(intent, risk),
            severity=case_severity(intent, risk), intent=intent or "report_concern",
        )
    except InternalAPIError as exc:
        logger.error("open_case failed (%s); the worker's lexicon check is the second net", exc)
        return None
    case_id = reply.get("case_id")
    return int(case_id) if isinstance(case_id, int) else None


class ActionOpenCase(Action):
    """Before any question: a case in the hotline queue."""

    def name(self) -> Text:
        return "action_open_case"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        case_id = open_case(tracker)
        # the next step (utter_report_received / utter_emergency) tells the
        # reporter help is coming whether or not the app answered
        events: List[EventType] = [SlotSet("case_id", case_id), SlotSet("form_exit", None), SlotSet("unsent_answers", None)]
        events += [SlotSet(slot, None) for slot in REPORT_SLOTS]
        return events


class ValidateReportForm(FormValidationAction):
    """Each answer: skip words kept as "skipped", yes/no folded, posted at once."""

    def name(self) -> Text:
        return "validate_report_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        requested = tracker.get_slot("requested_slot")
        text = (tracker.latest_message or {}).get("text") or ""
        intent = (tracker.latest_message or {}).get("intent") or {}
        exit_reason = None
        if is_stop(text):
            exit_reason = "stop"
        elif is_help(text) or (
            intent.get("name") == "talk_to_person" and (intent.get("confidence") or 0) >= HANDOFF_CONFIDENCE
        ):
            exit_reason = "handoff"
        if exit_reason and requested in REPORT_SLOTS:
            # not an answer: leave the form, record nothing for this question
            return [SlotSet(requested, None), SlotSet("form_exit", exit_reason), SlotSet("requested_slot", None)]
        return await super().run(dispatcher, tracker, domain)

    def _answer(self, slot: str, value: Any, tracker: Tracker) -> Dict[Text, Any]:
        if value is None:
            return {slot: None}
        text = str(value).strip()
        if is_skip(text):
            return {slot: SKIPPED}
        if slot in YES_NO_SLOTS:
            text = yes_no(text) or text
        updates: Dict[Text, Any] = {slot: text}
        case_id = tracker.get_slot("case_id")
        if case_id is None:
            case_id = open_case(tracker)
            updates["case_id"] = case_id
        unsent = list(tracker.get_slot("unsent_answers") or [])
        if case_id is None:
            unsent.append(slot)
        else:
            try:
                api().add_answer(case_id, slot, text)
            except InternalAPIError as exc:
                logger.error("answer %s for case %s not posted (%s); retried at the end", slot, case_id, exc)
                unsent.append(slot)
        updates["unsent_answers"] = unsent or None
        return updates

    def validate_relationship(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        return self._answer("relationship", value, tracker)

    def validate_what_happened(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> Dict[Text, Any]:
        return self._answer("what_happened", value, tracker)

    def validate_last_location(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> Dict[Text, Any]:
        return self._answer("last_location", value, tracker)

    def validate_since_when(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                            domain: DomainDict) -> Dict[Text, Any]:
        return self._answer("since_when", value, tracker)

    def validate_in_danger(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                           domain: DomainDict) -> Dict[Text, Any]:
        return self._answer("in_danger", value, tracker)

    def validate_callback(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: DomainDict) -> Dict[Text, Any]:
        return self._answer("callback", value, tracker)

    def validate_consent(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                         domain: DomainDict) -> Dict[Text, Any]:
        return self._answer("consent", value, tracker)


def handoff(tracker: Tracker, reason: str) -> Optional[int]:
    try:
        reply = api().handoff(tracker.sender_id, reason)
    except InternalAPIError as exc:
        logger.error("handoff failed (%s)", exc)
        return None
    case_id = reply.get("case_id")
    return int(case_id) if isinstance(case_id, int) else None


class ActionFinishReport(Action):
    """After the report form: thanks, or a hand-off, or nothing after STOP."""

    def name(self) -> Text:
        return "action_finish_report"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        events: List[EventType] = []
        case_id = tracker.get_slot("case_id")
        unsent = tracker.get_slot("unsent_answers") or []
        if unsent:
            if case_id is None:
                case_id = open_case(tracker)
                events.append(SlotSet("case_id", case_id))
            still = []
            for slot in unsent:
                value = tracker.get_slot(slot)
                if value is None or value == SKIPPED:
                    continue
                try:
                    if case_id is None:
                        raise InternalAPIError("no case")
                    api().add_answer(case_id, slot, str(value))
                except InternalAPIError as exc:
                    logger.error("answer %s still not posted (%s)", slot, exc)
                    still.append(slot)
            events.append(SlotSet("unsent_answers", still or None))
        reason = tracker.get_slot("form_exit")
        if reason == "handoff":
            handed = handoff(tracker, "asked during report")
            if handed is not None:
                events.append(SlotSet("case_id", handed))
            dispatcher.utter_message(response="utter_talk_to_person")
        elif reason == "stop":
            pass  # the worker confirms the opt-out; nothing more from the bot
        else:
            dispatcher.utter_message(response="utter_report_form_done")
        events.append(SlotSet("form_exit", None))
        return events


class ActionHandoff(Action):
    """"Talk to a person": a case in hand-off; the hotline replies in person."""

    def name(self) -> Text:
        return "action_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        case_id = handoff(tracker, "asked for a person")
        dispatcher.utter_message(response="utter_talk_to_person")
        return [SlotSet("case_id", case_id)] if case_id is not None else []
