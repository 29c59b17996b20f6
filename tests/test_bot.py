"""The assistant (bot/): data validation, conversation tests, and a live Rasa
server + action server answering through the custom channel against a live
web app (real HTTP all the way; the internal API and NLG are the app's own).

Run: .venv/bin/python -m pytest -q -m rasa tests/test_bot.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from lanpya.db import Database
from lanpya.models import Contact
from tests.conftest import make_config
from tests.support import RASA_PYTHON, ROOT, LiveServer, free_port, stop_process, wait_http

pytestmark = pytest.mark.rasa

BOT = ROOT / "bot"
RASA = RASA_PYTHON.parent / "rasa"
CHANNEL = "/webhooks/lanpya/webhook"


def _rasa_cli(args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(RASA), *args], cwd=BOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RASA_TELEMETRY_ENABLED="false"))


def test_rasa_data_validate_passes():
    out = _rasa_cli(["data", "validate", "--domain", "domain.yml", "--data", "data", "--config", "config.yml"])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    # unused-utterance warnings are expected (forms and custom actions send them); nothing else
    problems = [line for line in (out.stdout + out.stderr).splitlines()
                if ("UserWarning" in line or "ERROR" in line) and "is not used in any story or rule" not in line]
    assert problems == []


def test_conversation_tests_pass(rasa_model, tmp_path):
    out = _rasa_cli(["test", "core", "--stories", "tests", "--model", str(rasa_model),
                     "--fail-on-prediction-errors", "--out", str(tmp_path)])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = (tmp_path / "failed_test_stories.yml").read_text()
    assert "None of the test stories failed" in report, report


def test_held_out_sets_are_never_trained_on():
    import yaml

    def examples(path: Path) -> set[str]:
        found = set()
        for item in (yaml.safe_load(path.read_text()) or {}).get("nlu") or []:
            for line in (item.get("examples") or "").splitlines():
                text = line.strip()[2:].strip().lower()
                if text:
                    found.add(text)
        return found

    trained: set[str] = set()
    for path in (BOT / "data").rglob("*.yml"):
        trained |= examples(path)
    heldout = sorted((BOT / "heldout").glob("*.yml"))
    assert heldout and not any(p.is_relative_to(BOT / "data") for p in heldout)
    for path in heldout:
        leaked = examples(path) & trained
        assert not leaked, f"{path.name} has training sentences: {sorted(leaked)[:5]}"


# --- a live stack: web app + action server + Rasa server -----------------------------------
@pytest.fixture(scope="module")
def stack(rasa_model, sqlite_template, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("botstack")
    db_path = tmp / "lanpya.db"
    shutil.copy(sqlite_template, db_path)
    config = make_config(tmp, f"sqlite:///{db_path}")
    database = Database(config.database_url)
    from webhook import create_app

    app = create_app(config, database)
    rasa_token = "rasa-" + uuid.uuid4().hex
    with LiveServer(app) as web:
        rasa_port, action_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RASA_AUTH_TOKEN")}
        env.update(
            RASA_MODEL_DIR=str(rasa_model.parent), RASA_PORT=str(rasa_port), ACTION_PORT=str(action_port),
            ACTION_SERVER_URL=f"http://127.0.0.1:{action_port}/webhook", INTERNAL_URL=web.url,
            LANPYA_INTERNAL_TOKEN=config.internal_token, LANPYA_VAR_DIR=str(tmp / "var"),
            RASA_TRACKER_URL=f"sqlite:///{tmp / 'tracker.db'}", RASA_AUTH_TOKEN=rasa_token,
            TF_CPP_MIN_LOG_LEVEL="3",
        )
        logs = [open(tmp / "actions.log", "w"), open(tmp / "rasa.log", "w")]
        actions = subprocess.Popen([str(RASA_PYTHON), str(BOT / "serve.py"), "actions"], cwd=ROOT, env=env,
                                   stdout=logs[0], stderr=subprocess.STDOUT)
        rasa = subprocess.Popen([str(RASA_PYTHON), str(BOT / "serve.py"), "rasa"], cwd=ROOT, env=env,
                                stdout=logs[1], stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{action_port}/health", timeout=180, proc=actions)
            wait_http(f"http://127.0.0.1:{rasa_port}/", timeout=300, proc=rasa)
            yield {"url": f"http://127.0.0.1:{rasa_port}", "token": rasa_token, "db": database,
                   "config": config, "tmp": tmp}
        finally:
            stop_process(rasa)
            stop_process(actions)
            for f in logs:
                f.close()
            database.dispose()


def new_contact(stack, language: str = "en") -> str:
    with stack["db"].session() as s:
        contact = Contact(channel=Contact.SMS, language=language)
        s.add(contact)
        s.flush()
        return contact.uuid


def say(stack, sender: str, text: str, language: str = "en", risk: dict | None = None) -> dict:
    resp = requests.post(
        stack["url"] + CHANNEL, params={"token": stack["token"]}, timeout=60,
        json={"sender": sender, "message": text, "metadata": {"language": language, "channel": "sms", "risk": risk}},
    )
    assert resp.status_code == 200, (resp.status_code, resp.text[:500])
    return resp.json()


def texts(stack, reply: dict) -> list[str]:
    """What the worker would send: each response rendered from the content files in the
    language Rasa gave it (conversations/handle.py), a literal text as it is."""
    from lanpya.content import Content

    content = Content.load(stack["config"].content_dir, stack["config"])
    out = []
    for m in reply["messages"]:
        if m.get("response"):
            out.append(content.answer(m["response"], m.get("language") or "en", **(m.get("variables") or {})))
        else:
            out.append(m.get("text") or "")
    return out


def test_channel_refuses_bad_requests(stack):
    url = stack["url"] + CHANNEL
    body = {"sender": uuid.uuid4().hex, "message": "hello", "metadata": {"language": "en"}}
    assert requests.post(url, json=body, timeout=30).status_code == 401
    assert requests.post(url, json=body, params={"token": "wrong"}, timeout=30).status_code == 401
    assert requests.post(url, json={"message": "hi"}, params={"token": stack["token"]}, timeout=30).status_code == 400
    assert requests.post(url, json={"sender": "x", "message": 5}, params={"token": stack["token"]},
                         timeout=30).status_code == 400


def test_greeting_is_answered_in_the_contacts_language(stack):
    sender = new_contact(stack)
    reply = say(stack, sender, "hello")
    assert reply["intent"] == "greet" and reply["confidence"] > 0.3
    assert reply["language"] == "en"
    # the worker's channel gets response keys to render, not the web app's text
    assert reply["messages"] and all(m.get("response", "").startswith("utter_") for m in reply["messages"])
    assert texts(stack, reply) and all(texts(stack, reply))
    burmese = say(stack, new_contact(stack, "my"), "မင်္ဂလာပါ", language="my")
    assert burmese["language"] == "my"
    assert {m.get("language") for m in burmese["messages"]} == {"my"}
    assert any(any("\u1000" <= ch <= "\u109f" for ch in t) for t in texts(stack, burmese)), texts(stack, burmese)


def test_a_lone_digit_is_the_menu_choice_in_any_script(stack):
    sender = new_contact(stack)
    assert say(stack, sender, "2")["intent"] == "check_agency"  # agency form asks the name
    # inside the form the digit is an answer, not a menu choice
    inside = say(stack, sender, "7")
    assert inside["intent"] != "trafficking_signs"
    assert say(stack, new_contact(stack), "၇")["intent"] == "trafficking_signs"
    assert say(stack, new_contact(stack), "႘")["intent"] == "report_concern"


def test_report_opens_a_case_first_posts_each_answer_and_stop_ends_the_form(stack):
    sender = new_contact(stack)
    first = say(stack, sender, "my sister went to china for marriage and i cant reach her")
    assert first["intent"] == "report_concern"
    case_id = first["case_id"]
    assert isinstance(case_id, int)
    assert len(first["messages"]) >= 2  # received + first question
    say(stack, sender, "my younger sister")
    say(stack, sender, "skip")
    from lanpya.models import Case

    with stack["db"].session() as s:
        case = s.get(Case, case_id)
        contact = s.scalar(select(Contact).where(Contact.uuid == sender))
        assert case.contact_id == contact.id
        assert (case.answers or {}).get("relationship") == "my younger sister"
        assert "what_happened" not in (case.answers or {})
    stopped = say(stack, sender, "STOP")
    assert stopped["messages"] == []
    # the form is over: a question is answered as a question again
    after = say(stack, sender, "what documents do i need")
    assert after["intent"] == "documents" and after["messages"]


def test_risk_metadata_makes_any_message_a_report(stack):
    sender = new_contact(stack)
    reply = say(stack, sender, "how do i get a passport", risk={"category": "trafficking", "severity": "emergency"})
    assert reply["intent"] == "emergency"
    assert isinstance(reply["case_id"], int)


def test_talk_to_person_hands_off(stack):
    sender = new_contact(stack)
    reply = say(stack, sender, "i want to talk to a real person")
    assert reply["intent"] == "talk_to_person"
    assert isinstance(reply["case_id"], int)
    assert reply["messages"]


def test_bot_tokenizer_breaks_syllables_like_its_twin_in_lanpya_text():
    """bot/components/tokenizer.py copies the syllable regex of lanpya/text.py
    (the bot must not import the app): both must agree, offsets included."""
    import json

    from lanpya.text import syllables

    samples = [
        "ကျွန်တော့်ညီမ တရုတ်ပြည်ကို သွားပြီး ဖုန်းမဆက်နိုင်တော့ဘူး",
        "ပွဲစား က အစ်ကို့ ပတ်စပို့ ယူသွားတယ်။",
        "ၼွင်ႉသၢဝ်ၵဝ် ၵႂႃႇမိူင်းၶႄႇ",
        "my sister went to china 2 months ago",
        "၁၂၃ ႑႒",
    ]
    code = (
        "import json, sys; sys.path.insert(0, 'bot');"
        "from components.tokenizer import split;"
        "texts = json.loads(sys.stdin.read());"
        "print(json.dumps([[t[s:e] for s, e in split(t)] for t in texts]))"
    )
    out = subprocess.run([str(RASA_PYTHON), "-c", code], cwd=ROOT, input=json.dumps(samples),
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RASA_TELEMETRY_ENABLED="false"))
    assert out.returncode == 0, out.stderr[-2000:]
    tokens = json.loads(out.stdout.strip().splitlines()[-1])
    for text, got in zip(samples, tokens, strict=True):
        # the app's syllables, with punctuation dropped as the tokenizer does
        expected = [t.strip("။၊!?.,") for t in syllables(text).split()]
        assert got == [t for t in expected if t], text


def test_ensemble_averages_the_kept_lr_ranking_with_the_last_classifiers():
    """bot/components/ensemble.py (served: bot/config.yml, LR 0.7; compared in
    docs/nlu.md): an intent one classifier left out counts 0 there, and the
    average, not either classifier alone, picks the intent."""
    import json

    code = (
        "import json, sys; sys.path.insert(0, 'bot');"
        "from components.ensemble import average;"
        "lr = [{'name': 'fees_debt', 'confidence': 0.6}, {'name': 'report_concern', 'confidence': 0.4}];"
        "diet = [{'name': 'report_concern', 'confidence': 0.9}, {'name': 'greet', 'confidence': 0.1}];"
        "print(json.dumps([average(lr, diet, 0.5), average(lr, diet, 1.0)[0]['name']]))"
    )
    out = subprocess.run([str(RASA_PYTHON), "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RASA_TELEMETRY_ENABLED="false"))
    assert out.returncode == 0, out.stderr[-2000:]
    ranking, lr_only = json.loads(out.stdout.strip().splitlines()[-1])
    assert [r["name"] for r in ranking] == ["report_concern", "fees_debt", "greet"]
    assert abs(ranking[0]["confidence"] - 0.65) < 1e-9 and abs(ranking[2]["confidence"] - 0.05) < 1e-9
    assert lr_only == "fees_debt"


def test_risk_router_reassured_turns_only_a_report_guess_into_the_best_other_intent():
    """bot/components/metadata.py (issue 4, eighth round): with metadata.reassured ("my son is fine
    in Thailand, …") a report_concern guess becomes the best non-report intent; an emergency guess,
    a lexicon hit (metadata.risk) and a doubtful guess are left as they were."""
    import json

    code = """
import json, sys
sys.path.insert(0, 'bot')
from rasa.shared.nlu.training_data.message import Message
from components.metadata import RiskRouter

def run(intent, ranking, metadata):
    m = Message(data={'text': 'x', 'metadata': metadata, 'intent': {'name': intent, 'confidence': ranking[0][1]},
                      'intent_ranking': [{'name': n, 'confidence': c} for n, c in ranking]})
    RiskRouter({}).process([m])
    return [m.get('intent')['name'], m.get('risk_override')]

report = [('report_concern', 0.6), ('documents', 0.3), ('emergency', 0.1)]
print(json.dumps([
    run('report_concern', report, {'reassured': True}),
    run('report_concern', report, {}),
    run('emergency', [('emergency', 0.7), ('documents', 0.3)], {'reassured': True}),
    run('documents', [('documents', 0.7), ('greet', 0.3)], {'risk': {'severity': 'urgent'}, 'reassured': True}),
    run('nlu_fallback', [('nlu_fallback', 0.25), ('report_concern', 0.2), ('documents', 0.1)], {'reassured': True}),
    run('nlu_fallback', [('nlu_fallback', 0.25), ('report_concern', 0.2), ('documents', 0.1)], {}),
]))
"""
    out = subprocess.run([str(RASA_PYTHON), "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", RASA_TELEMETRY_ENABLED="false"))
    assert out.returncode == 0, out.stderr[-2000:]
    reassured, plain, emergency, risky, doubtful_reassured, doubtful = json.loads(out.stdout.strip().splitlines()[-1])
    assert reassured[0] == "documents" and reassured[1]["reassured"] is True
    assert plain == ["report_concern", None]
    assert emergency == ["emergency", None]
    assert risky[0] == "report_concern"  # a risk word is a report, reassured or not
    assert doubtful_reassured == ["nlu_fallback", None]  # a doubtful guess is not made a report either
    assert doubtful[0] == "report_concern" and doubtful[1]["doubtful"] is True
