"""Content: every agreed answer in every language, within SMS limits, sourced,
no invented numbers; placeholders; loading, validation and live reload;
numbered menu; agency check."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest
import yaml

from lanpya.config import Config
from lanpya.content import (
    CHECK_EVERY_S,
    HOTLINE_PLACEHOLDER,
    LANGUAGES,
    Content,
    ContentError,
)
from lanpya.text import ascii_digits, segments_for
from tests.support import wait_until

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"

UTTER_KEYS = """
utter_greet utter_menu utter_choose_language utter_language_set utter_migrate_legally utter_migrate_thailand
utter_migrate_malaysia utter_migrate_china utter_ask_agency_name utter_agency_licensed utter_agency_not_found
utter_agency_revoked utter_check_job_offer utter_documents utter_fees_debt utter_rights_at_work
utter_marriage_broker utter_trafficking_signs utter_trouble_abroad utter_find_mrc utter_report_received
utter_emergency utter_ask_relationship utter_ask_what_happened utter_ask_last_location utter_ask_since_when
utter_ask_in_danger utter_ask_callback utter_ask_consent utter_report_form_done utter_talk_to_person
utter_ask_township utter_ask_role utter_subscribed utter_delete_confirm utter_deleted utter_delete_cancelled
utter_thanks utter_goodbye utter_out_of_scope utter_bot_challenge utter_default utter_affirm_ok
""".split()
APP_KEYS = """holding stop_confirm start_confirm help text_only throttled welcome language_set case_ack
staff_alert unsupported_media""".split()
AGREED_KEYS = UTTER_KEYS + APP_KEYS

#: the longest a hotline number could plausibly be, and the unset placeholder
LONG_HOTLINE = "+95 9 7777 77777 / +95 9 8888 88888"
NUMBER_RUN = re.compile(r"\+?\d[\d\s\-().]*\d")


def phone_shaped(text: str) -> list[str]:
    """Digit runs (spaces, dashes, dots, brackets allowed) of 7+ digits."""
    return [m for m in NUMBER_RUN.findall(ascii_digits(text)) if sum(c.isdigit() for c in m) >= 7]


def cfg(**kw) -> Config:
    base = dict(env="test", hotline_number="+95 9 000 0000")
    base.update(kw)
    return Config(**base)


@pytest.fixture(scope="module")
def content() -> Content:
    return Content.load(CONTENT, cfg())


def copy_content(tmp_path: Path) -> Path:
    target = tmp_path / "content"
    shutil.copytree(CONTENT, target)
    return target


# --- every key, every language ---------------------------------------------------
def test_every_agreed_key_has_text_in_every_language(content):
    missing = [(k, lang) for k in AGREED_KEYS for lang in LANGUAGES if content.entry(k, lang) is None]
    assert missing == []


def test_bot_domain_lists_no_response_content_lacks():
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text(encoding="utf-8"))
    responses = set((domain or {}).get("responses") or {})
    assert responses <= set(Content.load(CONTENT, cfg()).keys)


def test_shipped_content_needs_no_language_fallback(content, caplog):
    with caplog.at_level(logging.WARNING, logger="lanpya.content"):
        for key in AGREED_KEYS:
            for lang in LANGUAGES:
                for channel in ("sms", "viber"):
                    content.answer(key, lang, channel=channel, case_id=1, severity="urgent", url="u")
    assert not [r for r in caplog.records if "fell back" in r.getMessage()]


def test_fallback_order_is_requested_then_burmese_then_english(tmp_path):
    d = copy_content(tmp_path)
    extra = d / "answers" / "zz_test.yml"
    review = {"status": "draft", "by": "t", "date": "2026-01-01"}
    extra.write_text(yaml.safe_dump({
        "only_my_en": {"my": {"sms": "မြန်မာ", "review": review}, "en": {"sms": "english", "review": review}},
        "only_en": {"en": {"sms": "english", "review": review}},
    }, allow_unicode=True), encoding="utf-8")
    c = Content(d, "1", include_samples=True, require_all_languages=False)
    assert c.answer("only_my_en", "kac") == "မြန်မာ"
    assert c.answer("only_my_en", "en") == "english"
    assert c.answer("only_en", "shn") == "english"
    with pytest.raises(KeyError):
        c.answer("no_such_key", "en")


def test_review_status_is_recorded_for_every_text(content):
    for key in AGREED_KEYS:
        for lang in LANGUAGES:
            review = content.entry(key, lang).review
            assert review["status"] in ("draft", "reviewed"), (key, lang)


# --- SMS limits ---------------------------------------------------------------------
@pytest.mark.parametrize("hotline", ["", LONG_HOTLINE])
def test_every_sms_fits_three_segments_with_placeholders_filled(hotline):
    c = Content.load(CONTENT, cfg(hotline_number=hotline))
    too_long = []
    for key in AGREED_KEYS:
        for lang in LANGUAGES:
            for township in (None, "Bhamo", "Lashio"):
                text = c.answer(key, lang, channel="sms", case_id=123456, severity="emergency",
                                url="https://lanpya.example.org/console/cases/123456", township=township)
                seg = segments_for(text)
                if seg.segments > 3:
                    too_long.append((key, lang, seg.encoding, seg.units))
    assert too_long == []


def test_english_and_jinghpaw_sms_stay_gsm7(content):
    """A single non-GSM character turns a message into UCS-2 (70 characters a segment)."""
    for key in AGREED_KEYS:
        for lang in ("en", "kac"):
            text = content.answer(key, lang, case_id=1, severity="urgent", url="https://x.org/c/1")
            assert segments_for(text).encoding == "GSM-7", (key, lang, text)


def test_the_segment_limit_is_really_checked():
    """A guard for the guard: a 202-unit Burmese text is over 3 segments."""
    assert segments_for("က" * 201).segments == 3
    assert segments_for("က" * 202).segments == 4
    assert segments_for("a" * 459).segments == 3
    assert segments_for("a" * 460).segments == 4


# --- numbers and sources --------------------------------------------------------------
def _raw_texts():
    for path in sorted((CONTENT / "answers").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key, spec in data.items():
            for lang in LANGUAGES:
                item = spec.get(lang) or {}
                for field in ("sms", "viber"):
                    if item.get(field):
                        yield path.name, key, lang, item[field]


def test_no_phone_number_is_written_into_an_answer():
    """Numbers come only from referrals.yml (with a source) or HOTLINE_NUMBER."""
    found = [(f, k, lang, m) for f, k, lang, text in _raw_texts() for m in phone_shaped(text)]
    assert found == []


def test_no_referral_number_is_copied_into_an_answer(content):
    """Short codes such as 1300 or 1546 are only shown through their placeholder."""
    phones = {r.phone for r in content.referrals() if r.phone}
    found = [(f, k, lang, p) for f, k, lang, text in _raw_texts() for p in phones
             if re.search(rf"(?<!\d){re.escape(p)}(?!\d)", ascii_digits(text))]
    assert found == []


def test_phone_shaped_check_catches_numbers():
    for number in ("067-430183", "1-800-010-180", "03-8000 8000", "+66 2 233 2237", "၀၆၇-၄၃၀၁၈၃"):
        assert phone_shaped(f"call {number} now"), number
    for harmless in ("2 years", "337-400 baht", "RM1,700", "men 23-31", "5 working days", "June 2024"):
        assert not phone_shaped(harmless), harmless


def test_every_referral_number_has_a_known_source(content):
    sources = content.sources()
    for r in content.referrals():
        if r.phone:
            assert r.sources, r.id
            assert all(s in sources for s in r.sources), r.id


def test_every_cited_source_is_in_sources_yml(content):
    sources = content.sources()
    for key in AGREED_KEYS:
        for lang in LANGUAGES:
            assert set(content.entry(key, lang).sources) <= set(sources), (key, lang)


def test_sources_carry_the_facts_confidence_marks(content):
    for sid, info in content.sources().items():
        assert info.get("url"), sid
        assert set(info.get("confidence") or []) <= {"confirmed", "dated", "unverified"}, sid
    assert "confirmed" in content.sources()["S45b"]["confidence"]


def test_factual_answers_cite_sources(content):
    factual = ["utter_migrate_legally", "utter_migrate_thailand", "utter_migrate_malaysia", "utter_migrate_china",
               "utter_documents", "utter_fees_debt", "utter_rights_at_work", "utter_marriage_broker",
               "utter_trafficking_signs", "utter_check_job_offer", "utter_agency_not_found"]
    for key in factual:
        for lang in LANGUAGES:
            assert content.entry(key, lang).sources, (key, lang)


# --- placeholders ------------------------------------------------------------------------
def test_hotline_placeholder_renders_the_configured_number():
    c = Content.load(CONTENT, cfg(hotline_number="+95 9 444 5555"))
    for lang in LANGUAGES:
        assert "+95 9 444 5555" in c.answer("holding", lang)
        assert "{" not in c.answer("holding", lang)


def test_unset_hotline_is_a_marked_placeholder_and_warns_once(caplog):
    import lanpya.content as mod

    mod._WARNED.discard("hotline")
    c = Content.load(CONTENT, cfg(hotline_number=""))
    with caplog.at_level(logging.WARNING, logger="lanpya.content"):
        texts = [c.answer("utter_emergency", lang) for lang in LANGUAGES]
    assert all(HOTLINE_PLACEHOLDER in t for t in texts)
    assert len([r for r in caplog.records if "HOTLINE_NUMBER" in r.getMessage()]) == 1


def test_referrals_fill_from_referrals_yml(content):
    text = content.answer("utter_trouble_abroad", "en")
    assert "1-800-010-180" in text  # Issara, S42
    assert "03-8000 8000" in text  # MAPO, S45
    assert "{" not in text


def test_mrc_follows_the_township(content):
    assert "Bhamo" in content.answer("utter_find_mrc", "en", township="Bhamo")
    assert "ဗန်းမော်" in content.answer("utter_find_mrc", "my", township="ဗန်းမော်")
    assert "Myitkyina" in content.answer("utter_find_mrc", "en")  # the default office


def test_a_disabled_referral_falls_back_to_the_hotline(tmp_path):
    d = copy_content(tmp_path)
    path = d / "referrals.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for org in data["organisations"]:
        if org["group"] == "issara_th":
            org["enabled"] = False
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    c = Content(d, "+95 9 111 2222")
    text = c.answer("utter_trouble_abroad", "en")
    assert "1-800-010-180" not in text
    assert "+95 9 111 2222" in text


def test_staff_alert_names_no_person(content):
    text = content.answer("staff_alert", "en", case_id=42, severity="urgent", url="https://h/c/42")
    assert text == "Lanpya: new case #42, urgent. https://h/c/42"


# --- loading, validation, reload --------------------------------------------------------------
def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("label,file,old,new,message", [
    ("unknown placeholder", "answers/app.yml", "{hotline}", "{hotlin}", "unknown placeholder {hotlin}"),
    ("missing language", "answers/app.yml", "  shn:\n", "  xx:\n", "missing language"),
    ("bad review", "answers/app.yml", "status: draft", "status: maybe", "review.status"),
    ("unknown source", "answers/migration.yml", "S10", "S999", "unknown source 'S999'"),
    ("unsourced number", "referrals.yml", "    sources: [S10]\n", "", "needs 'sources'"),
    ("bad severity", "lexicon/en.yml", "severity: emergency", "severity: high", "severity must be"),
    ("not_after not a list", "lexicon/my.yml", "weak: true, not_after: *objects}", "weak: true, not_after: ဖုန်း}",
     "not_after must be a list"),
    ("generic_questions not a list", "lexicon/my.yml", "generic_questions: [", "generic_questions: x\nunused: [",
     "generic_questions: expected a list"),
    ("digit keyword", "keywords.yml", "[START, ", "[START, '5', ", "digits are menu choices"),
    ("bad agency status", "agencies.csv", ",licensed,Myitkyina", ",approved,Myitkyina", "status must be"),
    ("broken yaml", "answers/app.yml", "holding:", "holding: [", "not valid YAML"),
])
def test_a_broken_file_is_refused_naming_file_and_key(tmp_path, label, file, old, new, message):
    d = copy_content(tmp_path)
    _edit(d / file, old, new)
    with pytest.raises(ContentError) as exc:
        Content(d, "1")
    assert message in str(exc.value)
    assert Path(file).name in str(exc.value)


def test_an_edit_applies_without_restart(tmp_path):
    d = copy_content(tmp_path)
    c = Content.load(d, cfg())
    before = c.answer("utter_thanks", "en")
    path = d / "answers" / "general.yml"
    _edit(path, before.split(".")[0], "Thanks, edited by staff")
    # lookups look at the files at most once a second (CHECK_EVERY_S): the edit applies within it
    wait_until(lambda: c.answer("utter_thanks", "en").startswith("Thanks, edited by staff"),
               timeout=CHECK_EVERY_S + 2, what="the edit to apply")
    assert Content.load(d, cfg()) is c  # one instance per process


def test_lookups_look_at_the_files_at_most_once_a_second(tmp_path, monkeypatch):
    import lanpya.content as content_module

    d = copy_content(tmp_path)
    c = Content(d, "1")
    calls = []
    real = content_module._signature
    monkeypatch.setattr(content_module, "_signature", lambda directory: calls.append(1) or real(directory))
    for _ in range(50):
        c.answer("utter_thanks", "en")
        c.lexicon_match("my sister was sold", "en")
    assert len(calls) <= 1
    c.refresh()  # an explicit refresh always looks
    assert len(calls) >= 1


def test_a_broken_edit_keeps_the_last_good_content(tmp_path, caplog):
    d = copy_content(tmp_path)
    c = Content(d, "1")
    good = c.answer("utter_thanks", "en")
    (d / "answers" / "general.yml").write_text("utter_thanks: [broken", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="lanpya.content"):
        assert c.refresh() is False  # what a lookup does once a second
        assert c.answer("utter_thanks", "en") == good
        assert c.refresh() is False
        assert c.answer("utter_thanks", "en") == good
    assert len([r for r in caplog.records if "content edit rejected" in r.getMessage()]) == 1
    # fixed again: picked up
    _edit_all = (CONTENT / "answers" / "general.yml").read_text(encoding="utf-8")
    (d / "answers" / "general.yml").write_text(_edit_all.replace(good.split(".")[0], "Fixed", 1), encoding="utf-8")
    assert c.refresh() is True
    assert c.answer("utter_thanks", "en").startswith("Fixed")


# --- numbered menu -------------------------------------------------------------------
MENU_WORDS = {
    "migrate_legally", "check_agency", "check_job_offer", "documents", "fees_debt",
    "marriage_broker", "trafficking_signs", "report_concern", "talk_to_person",
}


def test_menu_text_lists_exactly_the_numbers_of_bot_menu_yml(content):
    path = ROOT / "bot" / "menu.yml"
    if not path.exists():
        pytest.skip("bot/menu.yml not written yet")
    menu = yaml.safe_load(path.read_text(encoding="utf-8"))["menu"]
    numbers = sorted(int(k) for k in menu)
    for lang in LANGUAGES:
        for channel in ("sms", "viber"):
            text = ascii_digits(content.answer("utter_menu", lang, channel=channel))
            listed = sorted(int(n) for n in re.findall(r"(?<![\d])(\d{1,2})(?![\d])", text))
            assert listed == numbers, (lang, channel, listed)


def test_menu_order_matches_the_intents(content):
    """The English menu names each number's topic in the order of bot/menu.yml."""
    path = ROOT / "bot" / "menu.yml"
    if not path.exists():
        pytest.skip("bot/menu.yml not written yet")
    menu = yaml.safe_load(path.read_text(encoding="utf-8"))["menu"]
    labels = {
        "migrate_legally": "legally", "check_agency": "agency", "check_job_offer": "job offer",
        "documents": "Documents", "fees_debt": "Fees", "marriage_broker": "Marriage",
        "trafficking_signs": "Trafficking", "report_concern": "Report", "talk_to_person": "person",
        "trouble_abroad": "abroad", "find_mrc": "Resource", "rights_at_work": "rights",
    }
    text = content.answer("utter_menu", "en")
    for number, intent in menu.items():
        label = labels.get(intent, intent)
        assert re.search(rf"\b{number} [^0-9]*{label}", text), (number, intent)


# --- the staff command line ------------------------------------------------------------------
def test_content_check_command(tmp_path):
    from click.testing import CliRunner

    from lanpya.cli import cli

    runner = CliRunner()
    ok = runner.invoke(cli, ["content", "check"], obj={"config": cfg()})
    assert ok.exit_code == 0, ok.output
    assert "kac: 0/" in ok.output or "kac:" in ok.output
    d = copy_content(tmp_path)
    _edit(d / "answers" / "app.yml", "{hotline}", "{hotlin}")
    bad = runner.invoke(cli, ["content", "check", "--dir", str(d)], obj={"config": cfg()})
    assert bad.exit_code == 1
    assert "app.yml" in bad.output and "hotlin" in bad.output


def test_content_risk_and_show_commands():
    from click.testing import CliRunner

    from lanpya.cli import cli

    runner = CliRunner()
    hit = runner.invoke(cli, ["content", "risk", "Karum rit", "--language", "kac"], obj={"config": cfg()})
    assert hit.exit_code == 0 and "emergency" in hit.output
    miss = runner.invoke(cli, ["content", "risk", "what is trafficking", "--language", "en"], obj={"config": cfg()})
    assert miss.exit_code == 1
    shown = runner.invoke(cli, ["content", "show", "holding", "en"], obj={"config": cfg(hotline_number="+95 9 1")})
    assert shown.exit_code == 0 and "+95 9 1" in shown.output


# --- what the answers tell people to send works ---------------------------------------------
def _bot_words():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bot_words", ROOT / "bot" / "actions" / "words.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


YES_NO = {"en": ("YES", "NO"), "my": ("ဟုတ်", "မဟုတ်"), "kac": ("RE", "N RE"), "shn": ("ၸႂ်ႈ", "ဢမ်ႇၸႂ်ႈ")}
YES_NO_KEYS = ["utter_ask_in_danger", "utter_ask_callback", "utter_ask_consent", "utter_delete_confirm"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_yes_and_no_words_we_ask_for_are_understood_by_the_bot(content, language):
    if not (ROOT / "bot" / "actions" / "words.py").exists():
        pytest.skip("bot/actions/words.py not written yet")
    words = _bot_words()
    yes, no = YES_NO[language]
    assert words.yes_no(yes) == "yes" and words.yes_no(no) == "no"
    for key in YES_NO_KEYS:
        text = content.answer(key, language)
        assert yes in text and no in text, (key, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_skip_stop_start_and_language_words_in_answers_work(content, language):
    from lanpya.keywords import match_keyword

    if (ROOT / "bot" / "actions" / "words.py").exists():
        assert "SKIP" in content.answer("utter_ask_relationship", language)
        assert _bot_words().is_skip("SKIP")
    assert "STOP" in content.answer("utter_subscribed", language)
    assert match_keyword("STOP", content).kind == "stop"
    assert "START" in content.answer("stop_confirm", language)
    assert match_keyword("START", content).kind == "start"
    choose = content.answer("utter_choose_language", language)
    named = [w for w in re.split(r"[\s,.;:၊။\-]+", choose) if match_keyword(w, content) is not None]
    languages = {match_keyword(w, content).language for w in named}
    assert languages == set(LANGUAGES), (language, named)
