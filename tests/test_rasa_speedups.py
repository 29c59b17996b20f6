"""bot/channels/speedups.py: the action-server reply is still checked against Rasa's schema."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support import RASA_PYTHON, ROOT

SCRIPT = r'''
import json
from jsonschema import ValidationError
from channels import speedups
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

action = RemoteAction("action_x", EndpointConfig("http://127.0.0.1:1/webhook"))
out = {"installed": speedups.INSTALLED and getattr(RemoteAction._validate_action_result, "_lanpya", False)}
out["valid"] = action._validate_action_result(
    {"events": [{"event": "slot", "name": "language", "value": "my"}], "responses": [{"response": "utter_greet"}]}
)
for name, bad in {"events_not_list": {"events": "x"}, "unknown_event": {"events": [{"event": "nonsense"}]},
                  "responses_not_objects": {"responses": ["x"]}}.items():
    try:
        action._validate_action_result(bad)
        out[name] = False
    except ValidationError as e:
        out[name] = "Failed to validate Action server response" in e.message
print(json.dumps(out))
'''


def test_action_server_replies_are_still_validated():
    if not RASA_PYTHON.exists():
        pytest.skip("needs the Rasa environment")
    proc = subprocess.run(
        [str(RASA_PYTHON), "-c", SCRIPT], cwd=ROOT / "bot", capture_output=True, text=True, timeout=300,
        env={"RASA_TELEMETRY_ENABLED": "false", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == dict.fromkeys(["installed", "valid", "events_not_list", "unknown_event",
                                    "responses_not_objects"], True), result
