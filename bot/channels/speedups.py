"""One fix to Rasa 3.6.21's hot path, applied when the lanpya channel loads.

``RemoteAction._validate_action_result`` checks each action-server reply
with ``jsonschema.validate``, which first validates the *schema itself*
against the JSON Schema meta-schema and builds a new validator, on every
custom action. That was 14 % of Rasa's CPU under the conversation benchmark.
Here the validator is built once from the same schema and the reply is
checked the same way (same schema, same error, same message); only the
meta-schema check of a constant schema is skipped.

Pinned to the Rasa in bot/requirements.lock: if the method is not there,
nothing is patched (Rasa's own check runs) and a warning says so.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Text

logger = logging.getLogger(__name__)

_validators: Dict[int, Any] = {}


def _install() -> bool:
    try:
        from jsonschema.exceptions import best_match
        from jsonschema.validators import validator_for
        from rasa.core.actions.action import RemoteAction
        from rasa.shared.constants import DOCS_BASE_URL
    except ImportError as exc:  # pragma: no cover - another Rasa
        logger.warning("Rasa speed-up not applied: %s", exc)
        return False
    original = getattr(RemoteAction, "_validate_action_result", None)
    if original is None or getattr(original, "_lanpya", False):
        if original is None:
            logger.warning("Rasa speed-up not applied: RemoteAction._validate_action_result is gone")
        return original is not None

    def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
        schema = self.action_response_format_spec()
        validator = _validators.get(id(type(self)))
        if validator is None:
            cls = validator_for(schema)
            cls.check_schema(schema)  # once, as jsonschema.validate does each time
            validator = _validators[id(type(self))] = cls(schema)
        error = best_match(validator.iter_errors(result))
        if error is not None:
            error.message += (
                f". Failed to validate Action server response from API, "
                f"make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise error
        return True

    _validate_action_result._lanpya = True  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    return True


INSTALLED = _install()
