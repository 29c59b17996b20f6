"""POST /internal/nlg (Rasa's callback NLG) and GET /internal/agencies."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from tests.support import RASA_PYTHON, ROOT, LiveServer


def rasa_body(response: str, *, slots: dict | None = None, metadata: dict | None = None,
              channel: str = "lanpya", arguments: dict | None = None) -> dict:
    """The body rasa.core.nlg.callback.nlg_request_format builds (Rasa 3.6)."""
    latest = {
        "intent": {"name": "migrate_legally", "confidence": 0.93},
        "entities": [],
        "text": "how can I go to thailand",
        "message_id": "5f2c",
        "metadata": metadata or {},
        "intent_ranking": [],
    }
    return {
        "response": response,
        "id": None,
        "arguments": arguments or {},
        "tracker": {
            "sender_id": "0b9f6f8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            "slots": {"language": None, "township": None, "case_id": None, **(slots or {})},
            "latest_message": latest,
            "latest_event_time": 1764079200.0,
            "followup_action": None,
            "paused": False,
            "events": [{"event": "user", "timestamp": 1764079200.0, "text": latest["text"],
                        "parse_data": latest, "input_channel": channel, "metadata": latest["metadata"]}],
            "latest_input_channel": channel,
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        },
        "channel": {"name": channel},
    }


def post(client, config, body, token: str | None = "header"):
    headers = {}
    url = "/internal/nlg"
    if token == "header":
        headers["Authorization"] = f"Bearer {config.internal_token}"
    elif token == "query":
        url += f"?token={config.internal_token}"
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(url, json=body, headers=headers)


@pytest.fixture
def sqlite_config(tmp_path, sqlite_url):
    from tests.conftest import make_config

    return make_config(tmp_path, sqlite_url)


@pytest.fixture
def nlg_client(sqlite_config):
    from lanpya.db import Database
    from webhook import create_app

    db = Database(sqlite_config.database_url)
    yield create_app(sqlite_config, db).test_client()
    db.dispose()


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_nlg_needs_the_internal_token(nlg_client, sqlite_config, token):
    r = post(nlg_client, sqlite_config, rasa_body("utter_greet"), token=token)
    assert r.status_code == 401
    assert b"Lanpya" not in r.data


def test_agencies_needs_the_internal_token(nlg_client):
    assert nlg_client.get("/internal/agencies?q=SAMPLE-0001").status_code == 401


@pytest.mark.parametrize("label,slots,metadata,expect", [
    ("slot wins", {"language": "kac"}, {"language": "my"}, "Jinghpaw"),
    ("metadata next", {}, {"language": "en"}, "English"),
    ("default language", {}, {}, "မြန်မာ"),  # DEFAULT_LANGUAGE=my
    ("unknown language falls to default", {"language": "fr"}, {}, "မြန်မာ"),
])
def test_nlg_answers_in_the_trackers_language(nlg_client, sqlite_config, label, slots, metadata, expect):
    r = post(nlg_client, sqlite_config, rasa_body("utter_language_set", slots=slots, metadata=metadata))
    assert r.status_code == 200
    assert expect in r.get_json()["text"]


def test_nlg_token_in_query_string_like_rasa_sends_it(nlg_client, sqlite_config):
    r = post(nlg_client, sqlite_config, rasa_body("utter_emergency", slots={"language": "en"}), token="query")
    assert r.status_code == 200
    assert sqlite_config.hotline_number in r.get_json()["text"]


def test_nlg_gives_the_viber_text_on_viber(nlg_client, sqlite_config):
    from lanpya.content import Content

    content = Content.load(sqlite_config.content_dir, sqlite_config)
    key = next(k for k in content.keys if content.entry(k, "my").viber)
    sms = post(nlg_client, sqlite_config, rasa_body(key, metadata={"language": "my", "channel": "sms"})).get_json()
    viber = post(nlg_client, sqlite_config, rasa_body(key, metadata={"language": "my", "channel": "viber"})).get_json()
    assert viber["text"] != sms["text"]
    assert len(viber["text"]) > len(sms["text"])


def test_nlg_yes_no_buttons_on_viber(nlg_client, sqlite_config):
    body = rasa_body("utter_ask_in_danger", metadata={"language": "en", "channel": "viber"})
    out = post(nlg_client, sqlite_config, body).get_json()
    assert [b["payload"] for b in out["buttons"]] == ["yes", "no"]
    sms = post(nlg_client, sqlite_config, rasa_body("utter_ask_in_danger", metadata={"channel": "sms"})).get_json()
    assert "buttons" not in sms


def test_nlg_fills_the_mrc_from_the_township_slot(nlg_client, sqlite_config):
    body = rasa_body("utter_find_mrc", slots={"language": "en", "township": "Bhamo"})
    assert "Bhamo" in post(nlg_client, sqlite_config, body).get_json()["text"]


def test_nlg_unknown_response_gets_the_default_answer(nlg_client, sqlite_config):
    r = post(nlg_client, sqlite_config, rasa_body("utter_no_such_thing", slots={"language": "en"}))
    assert r.status_code == 200
    assert "did not understand" in r.get_json()["text"]


@pytest.mark.parametrize("body", [None, {"tracker": {}}, {"response": 5}, []])
def test_nlg_refuses_a_malformed_request(nlg_client, sqlite_config, body):
    r = nlg_client.post("/internal/nlg", data=json.dumps(body),
                        headers={"Authorization": f"Bearer {sqlite_config.internal_token}",
                                 "Content-Type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize("query,status", [
    ("SAMPLE-0001", "licensed"), ("zyzzx placeholdr", "licensed"), ("SAMPLE-0003", "revoked"),
    ("Golden Myanmar Star", "not_found"),
])
def test_agencies_endpoint(nlg_client, sqlite_config, query, status):
    r = nlg_client.get("/internal/agencies", query_string={"q": query},
                       headers={"Authorization": f"Bearer {sqlite_config.internal_token}"})
    assert r.status_code == 200
    assert r.get_json()["status"] == status


def test_agencies_endpoint_needs_a_query(nlg_client, sqlite_config):
    r = nlg_client.get("/internal/agencies", headers={"Authorization": f"Bearer {sqlite_config.internal_token}"})
    assert r.status_code == 400


# --- the real Rasa callback client against a live server ------------------------------------
PROBE = textwrap.dedent("""
    import asyncio, json, sys
    from rasa.core.nlg.callback import CallbackNaturalLanguageGenerator
    from rasa.shared.core.events import SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    url, token, response = sys.argv[1:4]
    tracker = DialogueStateTracker.from_events("c0ffee", [
        UserUttered("ngai kanau num mat mat sai", intent={"name": "report_concern", "confidence": 0.9},
                    metadata={"language": "kac", "channel": "sms"}),
        SlotSet("township", "Bhamo"),
    ])
    generator = CallbackNaturalLanguageGenerator(EndpointConfig(url=url, token=token))
    print(json.dumps(asyncio.run(generator.generate(response, tracker, "lanpya"))))
""")


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="the Rasa environment is missing")
def test_rasas_own_callback_client_gets_a_valid_answer(sqlite_config):
    from lanpya.db import Database
    from webhook import create_app

    db = Database(sqlite_config.database_url)
    app = create_app(sqlite_config, db)
    try:
        with LiveServer(app) as server:
            out = subprocess.run(
                [str(RASA_PYTHON), "-c", PROBE, f"{server.url}/internal/nlg", sqlite_config.internal_token,
                 "utter_find_mrc"],
                cwd=ROOT, capture_output=True, text=True, timeout=120,
            )
            assert out.returncode == 0, out.stderr[-2000:]
            answer = json.loads(out.stdout.strip().splitlines()[-1])
            assert "Bhamo" in answer["text"]
            assert "Miss Migration" in answer["text"]
            bad = subprocess.run(
                [str(RASA_PYTHON), "-c", PROBE, f"{server.url}/internal/nlg", "not-the-token", "utter_greet"],
                cwd=ROOT, capture_output=True, text=True, timeout=120,
            )
            assert bad.returncode != 0  # Rasa raises on the 401
    finally:
        db.dispose()
