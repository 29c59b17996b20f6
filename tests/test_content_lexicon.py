"""The risk lexicon, whole-message keywords and the agency check, by tables
per language, plus the lexicon measured on the project's NLU data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lanpya.config import Config
from lanpya.content import Content, fold
from lanpya.keywords import Keyword, match_keyword

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"


@pytest.fixture(scope="module")
def content() -> Content:
    return Content.load(CONTENT, Config(env="test", hotline_number="+95 9 000 0000"))


# --- risk lexicon: reports escalate ---------------------------------------------------
@dataclass(frozen=True)
class Report:
    language: str
    text: str
    category: str | None = None  # None: any category
    severity: str | None = None  # None: any severity


REPORTS = [
    # English, with misspellings and odd spacing
    Report("en", "my sister was sold to a man in china", "trafficking"),
    Report("en", "HELP ME", severity="emergency"),
    Report("en", "they locked me in a room", "trafficking", "emergency"),
    Report("en", "my daughter was kidnaped", "trafficking", "emergency"),
    Report("en", "the broker took my brother's passport", "trafficking"),
    Report("en", "my son is missing since march", "missing_person"),
    Report("en", "we cant contact my mother in thailand", "missing_person"),
    Report("en", "she was forced to marry a chinese man", "forced_marriage"),
    Report("en", "my husband is forced to work on a boat without pay", "labour_exploitation"),
    Report("en", "my cousin was trafficked", "trafficking"),
    Report("en", "emergency", severity="emergency"),
    Report("en", "locked   in", "trafficking", "emergency"),
    Report("en", "what should i do, they took my passport", "trafficking"),
    # Burmese (Unicode, spacing varies) and romanised Burmese
    Report("my", "ကယ်ပါ", severity="emergency"),
    Report("my", "ကယ် ပါ", severity="emergency"),
    Report("my", "ညီမကို တရုတ်ကို ရောင်းစားလိုက်တယ်", "trafficking"),
    Report("my", "သမီး ပျောက်နေတယ်", "missing_person"),
    Report("my", "အစ်ကို့ ပတ်စ်ပို့ သိမ်းထားတယ်", "trafficking"),
    Report("my", "ညီမကို အတင်းလက်ထပ်ခိုင်းတယ်", "forced_marriage"),
    Report("my", "ဖုန်းဆက်လို့မရတော့ဘူး", "missing_person"),
    Report("my", "kal par", severity="emergency"),
    Report("my", "ညီမကို တ႐ုတ္ကို ေရာင္းစားလိုက္တယ္", "trafficking"),  # typed in Zawgyi
    Report("my", "nyi ma phone ma kaing tot buu", "missing_person"),
    # issue 4: selling in the forms reports use, tonight, held in a house, papers, border, debt
    Report("my", "ဒီညပဲ ရောင်းတော့မယ်တဲ့", "trafficking", "emergency"),
    Report("my", "မနက်ဖြန် ရောင်းမယ်လို့ ပြောနေကြတယ်", "trafficking", "emergency"),
    Report("my", "ငါ့ကို ရောင်းတော့မယ် ဘယ်လိုလုပ်ရမလဲ", "trafficking", "emergency"),
    Report("my", "ညီမကို ရောင်းမယ်", "trafficking", "emergency"),  # weak, with a person
    Report("my", "အစ်မကို တရုတ်လူဆီ ရောင်းလိုက်ပြီ", "trafficking"),
    Report("my", "ရောင်းစားခံရပြီ ထင်တယ်", "trafficking"),
    Report("my", "ေရာင္းစားလိုက္ၿပီ", "trafficking"),  # Zawgyi
    Report("my", "မသိတဲ့ အိမ်ထဲမှာ ပိတ်ထားတယ်", "trafficking", "emergency"),
    Report("my", "အလုပ်ရှင်က passport ယူထားပြီး ပြန်မပေးဘူး", "trafficking"),
    Report("my", "ပတ်စပို့ သိမ်းထားတယ်", "trafficking"),
    Report("my", "ဂိတ်မှာ ဖမ်းပြီး ငွေတောင်းနေတယ်", "trafficking"),
    Report("my", "ကြွေးမကျေမချင်း ပြန်မရဘူးတဲ့", "labour_exploitation"),
    Report("my", "လစာမပေးဘဲ ခိုင်းနေတယ်", "labour_exploitation"),
    Report("my", "di nya yaung mal tae", "trafficking", "emergency"),
    Report("my", "ngar ko yaung tot mal", "trafficking", "emergency"),
    Report("my", "သူ့ကို ရောင်းတော့မယ်", "trafficking", "emergency"),  # weak term, သူ့ marks a person
    # issue 4, second round: a relative's phone off; help-seeking is not a general question;
    # a question that is also a personal report, or tells (…တယ်) rather than asks (…တာ), still escalates
    Report("my", "အစ်ကို ဖုန်းပိတ်နေတာ တစ်ပတ်ရှိပြီ", "missing_person"),
    Report("my", "သမီးရဲ့ နံပါတ်လည်း ပိတ်သွားပြီ", "missing_person"),
    Report("my", "ယောက်ျားဆီ ခေါ်လို့မရတော့ဘူး ဆယ်ရက်ရှိပြီ", "missing_person"),
    Report("my", "ညီလေး ပျောက်နေတယ် ဘယ်လိုလုပ်ရမလဲ", "missing_person"),
    Report("my", "ညီမရဲ့ ဖုန်းသိမ်းထားတာ လူကုန်ကူးမှုလား", "trafficking"),
    Report("my", "အခု အခန်းထဲ ပိတ်ထားတယ် ဒါ လူကုန်ကူးမှုလား", "trafficking", "emergency"),
    Report("my", "ညီမ ဖုန်းလည်းပျောက် လူလည်းပျောက်နေတယ်", "missing_person"),  # the second ပျောက် is a person
    Report("my", "ကုမ္ပဏီက ဖုန်းသိမ်းထားတယ် ဥပဒေနဲ့ညီလား", "trafficking"),  # told, not asked about
    Report("my", "သမီးကို အသက်ကြီးတဲ့လူနဲ့ ပေးစားလိုက်ကြတယ်", "forced_marriage"),
    # issue 4, third round: things sold / lost are exempt, a person sold or out of reach is not
    Report("my", "ညီမကို ရောင်းလိုက်ပြီတဲ့", "trafficking"),
    Report("my", "သမီးကလေးကို ရောင်းမယ်တဲ့ ကူညီပါ", severity="emergency"),
    Report("my", "ညီလေး pyauk thwar tal", "missing_person"),
    Report("my", "ညီမကို ဘယ်သူမှ ခေါ်လို့မရတော့ဘူး", "missing_person"),
    Report("my", "ကျွန်တော့်ကို အခန်းထဲ သော့ခတ်ထားတယ်", severity="emergency"),  # ကျွန်တော့် is personal
    Report("my", "ရွာက ကောင်မလေးတွေ ရောင်းခံလိုက်ရတယ်", "trafficking"),
    # issue 4, fourth round: a harmless cause does not excuse a long silence; a supposition about a
    # named person, and romanised markers of a person, still escalate
    Report("my", "ညီမ ဖုန်းပျက်သွားတယ်လို့ ပွဲစားက ပြောတယ် ဆက်သွယ်မရတာ တစ်လရှိပြီ", "missing_person"),
    Report("my", "ညီမကို ပွဲစားက ငွေထပ်တောင်းရင် ဘာလုပ်ရမလဲ", "trafficking"),
    Report("my", "nyi lay phone pate nay tar 2 pat shi pi", "missing_person"),
    Report("my", "maung lay ko border mhar phan thwar tal", "trafficking"),
    Report("my", "တံခါး ပိတ်ထားတယ် ငါ ထွက်လို့မရဘူး", severity="emergency"),
    Report("my", "ညီမကို တရုတ်မှာ ရောင်းစားတာ မှန်လား"),  # one girl named: still a report
    Report("my", "ပွဲစားက ဖုန်းလုသွားပြီး ညီမကို ခေါ်သွားတယ်", severity="emergency"),
    # issue 4, fifth round: a named person still escalates next to the new exemptions (a quoted rule, a
    # time phrase, words that hold a marker's letters); the new report forms
    Report("my", "ညီမကို အပြင်မထွက်ရဆိုတဲ့ အလုပ်ရှင်က အခန်းထဲ ထားတယ် ပုံမှန်လား"),
    Report("my", "ညီမ နှစ်ရက်ရှိပြီ ပျောက်နေတယ်", "missing_person"),
    Report("my", "အမေ အမြဲငိုနေတယ် ညီမ ပျောက်နေတာ တစ်လရှိပြီ", "missing_person"),
    Report("my", "အခန်းကို အပြင်ကနေ သော့ခတ်သွားတယ် ထွက်မရဘူး", severity="emergency"),
    Report("my", "တောထဲမှာ ပစ်ထားခဲ့ပြီ ဘယ်ရောက်နေလဲ မသိ", severity="emergency"),
    Report("my", "ယောက်ျားက သတ်ပစ်မယ်လို့ ခြိမ်းနေတယ်", severity="emergency"),
    Report("my", "အစ်ကို့ကို ကြိုးနဲ့ ချည်ထားတယ်", severity="emergency"),
    # issue 4, eighth round: whereabouts unknown, said of someone (or, romanised, of nobody named);
    # something heard of a named person is still told
    Report("my", "တူမလေး ကွမ်းမင်းဘက်မှာ ဘယ်မြို့မှန်းမသိဘူး သုံးလရှိပြီ", "missing_person"),
    Report("my", "ယောက်ျား ခုထိ ဘယ်ရောက်နေလဲ မသိဘူး", "missing_person"),
    Report("my", "agent ကို ပိုက်ဆံပေးပြီးကတည်းက bal mhar shi lal ma thi buu", "missing_person"),
    Report("my", "အစ်မကို တရုတ်မှာ ရောင်းလိုက်တယ်လို့ ကြားတယ် တကယ်လား"),
    Report("my", "တူမ ၁၄ နှစ်ပဲ ရှိသေးတယ် ပွဲစားက တရုတ်နဲ့ စေ့စပ်ပေးမယ်တဲ့ ဘယ်လိုတားရမလဲ", "forced_marriage"),
    Report("my", "မနက်ဖြန် တရုတ်လူကို အပ်တော့မယ်လို့ ပြောနေတယ်", severity="emergency"),
    Report("my", "ညီမ ဂျိုဟိုးမှာ လစာမရဘူး ပတ်စပို့လည်း သူဌေးဆီမှာ"),
    Report("my", "သား လိုက်သွားတဲ့ အေဂျင်စီ ဖုန်းပိတ်ထားတယ် သားလည်း လနဲ့ချီ မဆက်တော့ဘူး", "missing_person"),
    Report("my", "ညီမ ဖုန်းဆက်တိုင်း ဘာဖြစ်လဲ မေးရင် မပြောရဲဘူး ငိုပဲငိုနေတယ်"),  # ninth round
    # tenth round: "last seen"; home only once the debt is paid; romanised passport kept, dragged in
    Report("my", "သားရဲ့ facebook last seen တစ်လရှိပြီ", "missing_person"),
    Report("my", "မောင်လေးကို ကြွေးဆပ်ပြီးမှ ပြန်ရမယ်တဲ့ စက်ရုံက ထွက်ခွင့်မပေးဘူး"),
    Report("my", "thar ko boss ka passport yu pi thein htar tal, pyan lar lo ma ya buu"),
    Report("my", "a ma ko lu twy ka kar paw swe tin thwar pyi", severity="emergency"),
    Report("my", "ယောက်ျား မူဆယ်ကနေ ပြန်လာမယ်ဆိုပြီး ဆယ်ရက်ရှိပြီ မရောက်သေးဘူး", "missing_person"),
    Report("my", "ပွဲစားက သုံးသိန်းပေးမှ ညီမကို ပြန်ပို့မယ်တဲ့"),  # only if paid
    Report("my", "ရွာက ကောင်မလေး နှစ်ယောက် စက်ရုံအလုပ်ဆိုပြီး လိုက်သွားတာ အသံမကြားရတော့ဘူး"),
    # twelfth round: hiding now; romanised "only if paid"; news about a sister named still counts
    Report("my", "ငါ အခု မီးဖိုချောင်ထဲ ပုန်းနေတယ် စာရိုက်နေတာ", severity="emergency"),
    Report("my", "nyi lay ko pike san pay mha pyan hlwut mal tae"),
    # fifteenth round: romanised "husband" / "friend" are personal ("pate htar" is weak)
    Report(
        "my",
        "yauk kya kunming factory htae mhar pate htar khan ya tal lo tha nge chin ka pyaw tal",
        "trafficking",
        "emergency",
    ),
    Report("my", "သတင်းထဲမှာ ညီမကို တွေ့တယ် တရုတ်ကို ရောင်းခံရတဲ့ မိန်းကလေးတွေထဲ ပါတယ်"),
    # fifteenth round: romanised / code-mixed forced marriage; cut off for good; "will not release";
    # "I" typed without a space; romanised "help quickly"
    Report("my", "tu ma ko tayoke lu nae a tin let htat khine tal", "forced_marriage"),
    Report("my", "pwe sar ka nyi ma ko marry လုပ်ခိုင်းလိုက်တယ်", "forced_marriage"),
    Report("my", "သမီး ထိုင်းသွားတာ နှစ်လရှိပြီ ဖုန်းလုံးဝ ဆက်လို့မရတော့ဘူး", "missing_person"),
    Report("my", "အစ်ကို ဖားကန့်သွားတာ သတင်းလုံးဝမကြားရဘူး", "missing_person"),
    Report("my", "ညီမ agent နဲ့ မလေးရှားသွားတာ contact လုံးဝမရတော့ဘူး", "missing_person"),
    Report("my", "kyama thamee phone lone wa ma kaing tot buu", "missing_person"),
    Report("my", "kyama thar ko a lote shin ka pyan ma hlut buu", "trafficking"),
    Report("my", "nyi ma ko kar paw tin thwar pi a myan kuu nyi par", severity="emergency"),
    # sixteenth round: forced onto a car; locked in (code-mixed); ransom "if you want her back";
    # nobody knows where; "must marry, they say"; "help please"
    Report("my", "အစ်မကို ကားပေါ်အတင်းဆွဲတင်သွားပြီ", severity="emergency"),
    Report("my", "ညီမကို room ထဲ lock ချထားတယ်", severity="emergency"),
    Report("my", "တူမကို ပြန်လွှတ်ချင်ရင် သိန်း ၅၀ ပို့ပါတဲ့", "trafficking"),
    Report("my", "သမီး ဘယ်ရောက်နေလဲ ဘယ်သူမှ မသိဘူး", "missing_person"),
    Report("my", "ညီမကို ဒီက လူနဲ့ ယူရမယ်တဲ့", "forced_marriage"),
    Report("en", "help please they took my passport", severity="emergency"),
    # seventeenth round: a schoolgirl sent to China to marry (my_sealed16's report that reached nobody)
    Report("my", "ကျောင်းသူတစ်ယောက်ကို မိဘတွေက တရုတ်ကို လက်ထပ်ဖို့ ပို့လိုက်ပြီ", "forced_marriage"),
    # someone listening beside him on the phone (my_sealed14's report that reached nobody, 3rd scoring)
    Report("my", "ညီမ ဖုန်းဆက်တော့ တစ်ယောက်ယောက် ဘေးကနေ နားထောင်နေသလိုပဲ", "trafficking"),
    # eighteenth round: release only if money is sent (a ransom, also romanised); no call for months;
    # "come and get me"; made to hold a wedding; forced to marry (romanised "lat htat"); cut off entirely
    Report("my", "ညီလေးကို ငွေပို့မှ လွှတ်မယ်လို့ ဖုန်းဆက်တယ်", "trafficking"),
    Report("my", "thami ko ngwe po mha lut mal tae", "trafficking"),
    Report("my", "သမီးဆီက ဖုန်းမလာတာ သုံးလရှိပြီ", "missing_person"),
    Report("my", "ကျွန်မကို အခု လာခေါ်ပါ ကြောက်တယ်", severity="emergency"),
    Report("my", "ညီမကို တရုတ်မှာ မင်္ဂလာဆောင်ခိုင်းတယ်", "forced_marriage"),
    Report("my", "nyi ma ko a tin lat htat khine tal", "forced_marriage"),
    Report("my", "ညီမ ထိုင်းမှာ အဆက်အသွယ် လုံးဝပြတ်နေတယ်", "missing_person"),
    # my_sealed20's report that reached nobody (unsealed as my_lookalikes16): inside a scam company, one
    # message allowed; and that set's other forms: can no longer phone, not allowed to leave, passport
    # confiscated ("မောင်လေး", younger brother, is a personal marker now), already reported to the police
    Report("my", "သူငယ်ချင်း scam company ထဲ ရောက်နေတယ်တဲ့ message တစ်ခါပဲပို့နိုင်တယ်", "trafficking"),
    Report("my", "အစ်မ တရုတ်ဘက်သွားတာ ဖုန်းလုံးဝ မဆက်နိုင်တော့ဘူး", "missing_person"),
    Report("my", "မောင်လေး ပတ်စ်ပို့ အသိမ်းခံရပြီး ထွက်ခွင့်မရဘူး", "trafficking"),
    Report("my", "ရဲကို တိုင်ပြီးပြီ သမီး ပြန်မလာသေးဘူး"),
    # nineteenth round: not allowed to come back; someone else answers her phone; money demanded to give
    # her back; code-mixed "phone off" with a duration; romanised "trapped", "made to cheat people"
    Report("my", "ညီမကို ပြန်လာခွင့် မပေးဘူးတဲ့", "trafficking"),
    Report("my", "သမီးဖုန်းကို တခြားလူက ကိုင်တယ်", "trafficking"),
    Report("my", "broker က ညီမကို ပြန်ပေးဖို့ ငွေတောင်းနေတယ်", "trafficking"),
    Report("my", "my sister ရဲ့ phone off ဖြစ်နေတာ ၃ ပတ်ရှိပြီ", "missing_person"),
    Report("my", "nyi lay shwe kokko mhar pate mi nay tal lu lein khaing nay tal", "trafficking"),
    # twentieth round: "the one who (took her)" is not a personal marker, but the sister still is, and
    # "the friend who went" keeps its marker
    Report("my", "ညီမကို ခေါ်သွားတဲ့သူက ပတ်စပို့ သိမ်းထားတယ်", "trafficking"),
    Report("my", "ထိုင်းသွားတဲ့သူငယ်ချင်း ဖုန်းဆက်မရတာ လကျော်ပြီ", "missing_person"),
    # twentieth round: romanised "I escaped, they are chasing me" (a blind set's lost report); a sister
    # "not missing" in one breath and locked in the next is still a report
    Report("my", "kyama htwet pyay lar pi lite phan nay tal", severity="emergency"),
    Report("my", "nyi ma lay htwet pyay chin tal kal par", severity="emergency"),
    Report("my", "ညီမ ပျောက်နေတာမဟုတ်ဘူး အခန်းထဲ ပိတ်ထားခံရတာ", severity="emergency"),
    # twenty-second round: first-person from inside, nobody named: "hiding now"; romanised "(they say) I
    # cannot go back (until the debt is paid)"
    Report("my", "a khu pone nay tal guard twe shar nay tal", severity="emergency"),
    Report("my", "အခု ပုန်းနေတယ် ဖုန်းအားလည်း နည်းနေပြီ", severity="emergency"),
    Report("my", "kyanaw kyway ma kyay ma chin pyan ma ya bu tae", "trafficking"),
    # then from my_sealed31 (scam compounds): romanised "not fed" and "the guards are coming"
    Report("my", "target ma pyae yin htamin ma kywe bu", severity="emergency"),
    Report("my", "အစောင့်တွေ လာနေပြီ ဘာလုပ်ရမလဲ", severity="emergency"),
    # "should I worry?" after a sister out of reach for days is no general question
    Report("my", "ညီမ ဖုန်းဆက်မရတာ သုံးရက်ရှိပြီ စိုးရိမ်ရမလား", "missing_person"),
    # a supposed trouble does not take back a cry for help that is told
    Report("my", "ညီမကို အခန်းထဲ ပိတ်ထားတယ် ဘယ်ကို ပြေးရမလဲ", severity="emergency"),
    # Jinghpaw
    Report("kac", "Karum rit", severity="emergency"),
    Report("kac", "Ngai a kanau num hpe Miwa de dut kau sai", "trafficking"),
    Report("kac", "Ngai a num kasha mat mat sai", "missing_person"),
    Report("kac", "Broker ngai a passport la kau sai", "trafficking"),
    Report("kac", "Ngai hpe Miwa la hte hkungran shangun ai", "forced_marriage"),
    Report("kac", "Madu lakhpu n jaw ai, pru n lu ai"),
    Report("kac", "Ya nta kaw sim da ai", severity="emergency"),
    # Shan
    Report("shn", "ၸွႆႈၶႃႈ", severity="emergency"),
    Report("shn", "ၼွင်ႉယိင်း ထုၵ်ႇၶၢႆၵႂႃႇ မိူင်းၶႄႇ", "trafficking"),
    Report("shn", "လုၵ်ႈယိင်း ႁၢႆၵႂႃႇယဝ်ႉ", "missing_person"),
    Report("shn", "ၵပ်းသိုပ်ႇ ဢမ်ႇလႆႈ 3 လိူၼ်", "missing_person"),
    Report("shn", "ထုၵ်ႇပိၵ်ႉဝႆႉ ၼႂ်းႁွင်ႈ", "trafficking", "emergency"),
    # a language mix: Burmese words from a contact whose language is English
    Report("en", "ကယ်ပါ", severity="emergency"),
]


@pytest.mark.parametrize("case", REPORTS, ids=lambda c: f"{c.language}:{c.text}")
def test_reports_escalate(content, case):
    hit = content.lexicon_match(case.text, case.language)
    assert hit is not None, "a report was not caught"
    if case.category:
        assert hit.category == case.category
    if case.severity:
        assert hit.severity == case.severity
    assert hit.term


# --- risk lexicon: harmless messages do not ---------------------------------------------
HARMLESS = [
    ("en", "what are the signs of a marriage broker"),
    ("en", "what is trafficking"),
    ("en", "how do i know if a job offer is trafficking"),
    ("en", "tell me about scam compounds"),
    ("en", "how can i go to thailand legally"),
    ("en", "what documents do i need"),
    ("en", "thank you"),
    ("en", "is this agency licensed"),
    ("en", "what can you help me with"),
    ("en", "my kitten is kissing the dog"),
    ("my", "လူကုန်ကူးမှု ဆိုတာဘာလဲ"),
    ("my", "ထိုင်းကို တရားဝင် ဘယ်လိုသွားရမလဲ"),
    ("my", "ကျေးဇူးတင်ပါတယ်"),
    ("my", "ကြောင်လေး ပျောက်သွားတယ်"),
    ("my", "အကယ်၍ ထိုင်းသွားရင် ဘာစာရွက်လိုလဲ"),
    # issue 4: selling things, and questions ABOUT selling people or kept papers
    ("my", "ဆိုင်ကယ် ရောင်းမယ်"),
    ("my", "ကြက်တွေ ရောင်းတော့မယ် ဈေးကောင်းလား"),
    ("my", "yaung chin tal motor bike"),
    ("my", "ဝယ်သူရှိရင် ဆိုင်ကယ် ရောင်းမယ်"),  # ဝယ်သူ (buyer) is not a person in trouble
    ("my", "ချွေးမအဖြစ် ရောင်းစားခံရတာကို ဘယ်လိုကာကွယ်ရမလဲ"),
    ("my", "အလုပ်ရှင်က ပတ်စပို့ သိမ်းထားရင် ဥပဒေနဲ့ ညီလား"),
    ("my", "passport ယူထားတာ လူကုန်ကူးမှု လက္ခဏာလား"),
    ("my", "လစာ မပေးရင် ဘယ်ကိုတိုင်ရလဲ"),
    # issue 4, second round: a strong term asked about as a topic; things lost; the sender's own phone
    ("my", "ကုမ္ပဏီက ဖုန်းသိမ်းတာ ဥပဒေနဲ့ညီလား"),
    ("my", "အလုပ်သမားတွေကို အခန်းထဲ ပိတ်ထားတာ လူကုန်ကူးမှုလား"),
    ("my", "ကလေးမွေးပေးရင် ငွေပေးမယ်ဆိုတာ ဘာလဲ"),
    ("my", "အမေ့ လက်စွပ် ပျောက်သွားပြီ"),
    ("my", "ကြက်ကလေး ပျောက်နေလို့ ရှာနေတယ်"),
    ("my", "ညီမရဲ့ ဖုန်းပျောက်သွားလို့ အသစ်ဝယ်ရမယ်"),
    ("my", "ငါ့ ဖုန်းပိတ်သွားတယ် ဘက်ထရီကုန်လို့"),
    # issue 4, third round: a thing sold (an adjective or ကို between), romanised papers lost,
    # "(I) cannot call anyone"
    ("my", "အစ်ကိုက ကားဟောင်း ရောင်းလိုက်ပြီ အသစ်ဝယ်မယ်"),
    ("my", "အဖေက နွားကို ရောင်းမယ်တဲ့"),
    ("my", "malay mhar pat sa port pyauk thwar tal"),
    ("my", "ကျွန်တော့်ဖုန်း ဘေလ်ကုန်နေလို့ ဘယ်သူ့ကိုမှ ခေါ်လို့မရဘူး"),
    ("my", "အလုပ်ရှင်က အပြင်မထွက်ခိုင်းတာ လူကုန်ကူးမှုထဲ ပါလား"),
    ("my", "ငါ့ပိုက်ဆံ ပို့တော့မယ်တဲ့"),
    # issue 4, fourth round: a phone out of reach for a harmless cause; places that close; a term only
    # supposed ("if …"); romanised questions (Jinghpaw "ya", "shi" are not persons in Burmese)
    ("my", "အမေ့ဖုန်း ဘက်ထရီကုန်နေလို့ ခေါ်လို့မရဘူး"),
    ("my", "ညီလေး ဖုန်းပျောက်သွားလို့ ဆက်သွယ်မရဘူး နံပါတ်အသစ် ဘယ်လိုရှာရမလဲ"),
    ("my", "ရွာမှာ လိုင်းမကောင်းလို့ အမေ့ဖုန်း မဝင်ဘူး"),
    ("my", "အဖေ ဖုန်းမကိုင်ဘူး အလုပ်များနေလို့ ထင်တယ်"),
    ("my", "ကျွန်မ ဖုန်းပိတ်ထားတာ အိပ်နေလို့ပါ"),
    ("my", "ကျောင်းပိတ်ထားလို့ သမီး အိမ်မှာ နေတယ်"),
    ("my", "ပွဲစားက ငွေထပ်တောင်းရင် ပေးရမလား"),
    ("my", "အလုပ်မှာ ဒဏ်ရာရရင် လျော်ကြေးရလား"),
    ("my", "ညီမ ထိုင်းမှာ ဆေးရုံတက်နေတယ် ဆေးဖိုး ဘယ်လောက်ကျမလဲ"),
    ("my", "pwe sar ka ngway taung yin pay ya ma lar"),
    ("my", "a lote shin ka passport yu htar tar ya lar"),
    ("my", "sister phone battery kon nay lo phone set ma ya buu"),
    ("my", "a phay phone ma kaing buu, a lote myar nay lo tae"),
    ("my", "တရုတ်မှာ မိန်းကလေးတွေကို ရောင်းစားတာ မှန်လား"),  # girls in general: nobody named
    ("my", "ငါ့ဖုန်း လုသွားတယ် ဆင်းကတ်အသစ် ဘယ်မှာလုပ်ရလဲ"),  # the sender's own phone snatched
    # issue 4, fifth round: a quoted rule asked about; "most common", "what signs", "should one watch
    # out"; "အများ"/"အမှတ်အသား" are not "အမ"/"သား" (persons); a thing or an animal lost some days ago;
    # a visa lost; no internet given as the reason
    ("my", "ည ၉ နာရီနောက် အပြင်မထွက်ရဆိုတဲ့ အဆောင်စည်းကမ်း ဥပဒေနဲ့ညီလား"),
    ("my", "လူကုန်ကူးမှု အများဆုံးဖြစ်တဲ့ နယ်တွေက ဘယ်မှာလဲ"),
    ("my", "ဘာအမှတ်အသားတွေနဲ့ လူကုန်ကူးသူကို ခွဲခြားမလဲ သားသမီးတွေကို ပြောပြချင်တယ်"),
    ("my", "ညီမရဲ့ ကြောင်လေး သုံးရက်ရှိပြီ ပျောက်နေတယ်"),
    ("my", "အစ်ကို့ ဗီဇာ ပျောက်သွားတယ် ဘယ်မှာ ပြန်လုပ်ရလဲ"),
    ("my", "internet မရလို့ ညီမနဲ့ ဆက်သွယ်လို့မရဘူး"),
    ("my", "ချစ်သူနဲ့ သူ့ရွာကို လိုက်သွားရင် ဘာတွေ သတိထားသင့်လဲ"),
    # issue 4, eighth round: a place or a thing whose whereabouts are unknown; girls in general heard of
    ("my", "လားရှိုး MRC ရုံး ဘယ်မှာရှိမှန်းမသိဘူး"),
    ("my", "ကျွန်တော့် passport ဘယ်မှာမှန်းမသိ ရှာမတွေ့ဘူး"),
    ("my", "နယ်စပ်မှာ မိန်းကလေးတွေ ရောင်းခံရတယ်လို့ ကြားတယ် တကယ်လား"),
    ("my", "သမီးကို တရုတ်ကောင်လေးနဲ့ စေ့စပ်ပေးမယ်တဲ့ စိတ်ချရလား"),
    ("my", "ဝက်တွေ အကုန်လုံး ရောင်းလိုက်ပြီ ကြက်မွေးရင် ကောင်းမလား"),  # all the pigs sold
    ("my", "ပွဲစားက ညီမကို ကိုရီးယားမှာ ပေးစားမယ်တဲ့ ဘာတွေ သိထားသင့်လဲ"),  # what should we know
    ("my", "အေဂျင်စီရဲ့ ဖုန်းပိတ်ထားတယ် ဘယ်မှာ တိုင်ရမလဲ"),  # an agency's phone, where to complain
    # ninth round: two days (ရက်) and "cannot call" (ဆက်မရ) are not "days on end" (ရက်ဆက်တိုက်); a rumour
    # about little girls (ကလေးမလေးတွေ) asked about
    ("my", "ညီလေး ဖုန်းပျက်လို့ နှစ်ရက် ဆက်မရဘူး အခု ရပြီ"),
    ("my", "မူဆယ်ဘက်မှာ ကလေးမလေးတွေ ပျောက်တယ်ဆိုတဲ့ ကောလာဟလ ကြားတယ် မှန်လား"),
    # tenth round: "from Lashio" is not "help!"; a talk about it; heard on the radio, how to protect
    ("my", "mingalarpar kyama myitkyina ka par"),
    ("my", "ကျောင်းမှာ လူကုန်ကူးမှုအကြောင်း ဟောပြောပွဲ လုပ်ပေးနိုင်လား"),
    ("my", "ရေဒီယိုမှာ မိန်းကလေးတွေ ရောင်းစားခံရတယ်ဆိုတာ ကြားတယ် ဘယ်လို ကာကွယ်ရမလဲ"),
    ("my", "a lote shin ka passport thein htar tar tayar win lar"),
    ("my", "ညီမ ပို့တဲ့ ပိုက်ဆံ မရောက်သေးဘူး"),  # money not arrived: a thing
    # eleventh round: Shan "မေး" (wife) is Burmese "ask"; "emergency" in a question about rules; a SIM
    # card lost; "how is X different" in romanised Burmese
    ("my", "ဖုန်းပိတ်ထားတာ သုံးရက်ဆိုရင် ပုံမှန်လား ယေဘုယျ မေးတာပါ"),
    ("my", "စက်ရုံ အဆောင်က ညဘက် ထွက်ခွင့်မပေးတာ စည်းကမ်းအရ ရလား အရေးပေါ်ဆိုရော"),
    ("my", "ngar sim card pyauk thwar tal"),
    ("my", "lu kone kuu khan ya tar nae a kyway nae a lote lote ya tar bal lo kwar lae"),
    # twelfth round: typing is not hitting; news of girls (plural) missing; a rule about phones
    ("my", "ကျွန်မ လားရှိုးကနေ စာရိုက်နေတာပါ"),
    ("my", "မူဆယ်ဘက်မှာ မိန်းကလေးတွေ ပျောက်ဆုံးတဲ့သတင်း များတယ်ဆိုတာ ဘာကြောင့်လဲ"),
    ("my", "အလုပ်ချိန် ဖုန်းမကိုင်ရဘူး ဆိုတဲ့ စည်းကမ်း ပုံမှန်လား"),
    # fourteenth round: students (ကျောင်းသား holds သား, son) taught about trafficking
    ("my", "ကျောင်းသားတွေကို လူကုန်ကူးမှုအကြောင်း သင်ပေးချင်တယ်"),
    # fifteenth round: "is it a sign of being forced to work?" (the guard "လက္ခဏာလား" now matches Unicode)
    ("my", "ပတ်စ်ပို့သိမ်းတာ လစာမပေးတာက အတင်းအလုပ်ခိုင်းစေခံရတဲ့ လက္ခဏာလား"),
    # fifteenth round: a bank loan; news of people (a plural marker) missing in a landslide; "by what
    # means" of something in the news
    ("my", "သား ပိုက်ဆံပို့တယ် ဘဏ်ကြွေးဆပ်ဖို့ ဘယ်လိုလွှဲရင် သက်သာလဲ"),
    ("my", "မြေပြိုလို့ လူတွေပျောက်တယ်ဆို သတင်းမှန်လား"),
    ("my", "သတင်းထဲမှာ မိန်းကလေးတွေ ရောင်းခံရတယ်ဆိုတာ ကြားတယ် ဘယ်လိုနည်းနဲ့ ခေါ်သွားတာလဲ"),
    # sixteenth round: a dorm rule asked about
    ("my", "ည ၁၀ နာရီနောက် အပြင်မထွက်ရဘူးဆိုတဲ့ စည်းကမ်း ခွင့်ရှိလား"),
    # seventeenth round: a lost ID card (romanised); "do not keep my data"; how brokers lure, in the news
    ("my", "mhat pone tin pyauk thwar pi bal mhar lote ya ma lae"),
    ("my", "ကျွန်မရဲ့ data တွေ မသိမ်းထားပါနဲ့"),
    ("my", "သတင်းထဲမှာ မိန်းကလေးတွေ ရောင်းစားခံရတယ်ဆိုတာ ကြားတယ် ဘယ်လိုဆွဲဆောင်ကြလဲ"),
    # eighteenth round: "where do I run?" asked ahead ("in case", "if in trouble"); a parcel not arrived,
    # two weeks on; a school talk about it; keeping a number oneself; girls who were sold, in the news
    ("my", "တကယ်လို့ ထိုင်းမှာ ဒုက္ခရောက်ရင် ဘယ်ကို ပြေးရမလဲ"),
    ("my", "yodaya mhar du ka phyit yin bal ko pyay ya ma lae"),
    ("my", "အမေပို့တဲ့ ပါဆယ် နှစ်ပတ်ရှိပြီ မရောက်သေးဘူး"),
    ("my", "ကျောင်းမှာ လူကုန်ကူးမှုအကြောင်း ဟောပြောပေးရမယ် ဘာပြောရမလဲ"),
    ("my", "သံရုံး ဖုန်းနံပါတ် ပေးပါ ညီမအတွက် သိမ်းထားချင်လို့"),
    ("my", "ကျွန်တော့်အကြောင်း မှတ်ထားတာတွေ မသိမ်းထားပါနဲ့"),
    # nineteenth round: "if the employer says he will keep my passport"; "if the boss is bad, where do I
    # run?"; "I want to go (legally) too"; a rumour in the village asked about; a flat battery
    ("my", "အလုပ်ရှင်က ပတ်စ်ပို့ ကိုင်ထားမယ်လို့ပြောရင် ပေးရမလား"),
    ("my", "တရုတ်မှာ သူဌေး မကောင်းရင် ဘယ်ကို ပြေးရမလဲ"),
    ("my", "ညီမ ထိုင်းမှာ အဆင်ပြေတယ် ကျမလည်း တရားဝင် လိုက်သွားချင်တယ်"),
    ("my", "ရွာထဲမှာ မိန်းကလေးတွေ ရောင်းခံရတယ်လို့ ကောလာဟလကြားတယ် တကယ်ဖြစ်နေတာလား"),
    ("my", "my sister phone off ဖြစ်နေတယ် battery ကုန်လို့"),
    ("my", "သတင်းထဲ တရုတ်ကို ရောင်းစားခံရတဲ့ မိန်းကလေးတွေ အကြောင်းပါတယ် ဘယ်လိုလှည့်စားကြတာလဲ"),
    # twentieth round: "if the one who recruits / will give the job keeps the passport" (a stranger, supposed)
    ("my", "အလုပ်ပေးမယ့်သူက ပတ်စပို့ သိမ်းထားမယ်ဆိုရင် ဘာလုပ်ရမလဲ"),
    ("my", "အလုပ်ခေါ်တဲ့သူက ပတ်စ်ပို့ ယူထားမယ်ဆိုရင် စိုးရိမ်ရမလား"),
    # twentieth round: a village rumour about girls, "when should one worry?"; "she is not missing, the
    # battery died"; land pawned for a loan; "does it tend to be dangerous?"; "what does … mean?"
    ("my", "ရွာမှာ ကြားရတာ မိန်းကလေးတွေ ရောင်းစားခံရတယ်တဲ့ ဘယ်လိုဆို စိုးရိမ်ရမလဲ"),
    ("my", "သမီး ပျောက်တာမဟုတ်ပါဘူး ဖုန်းအားကုန်သွားတာ"),
    ("my", "အဖေက လယ်ကို အပေါင်ထားပြီး ထိုင်းသွားစရိတ် ချေးပေးမယ်တဲ့"),
    ("my", "သူငယ်ချင်း တရုတ်ကို လက်ထပ်ပြီး ပြန်လာတယ် အဲ့လို အန္တရာယ်ရှိတတ်လား"),
    ("my", "ကြွေးနဲ့ ချုပ်ထားတာ ဆိုတာ ဘာကိုပြောတာလဲ"),
    # twenty-second round: "are these signs of forced labour?" (a plural of signs)
    ("my", "ပတ်စ်ပို့သိမ်းတာ ဒါတွေက လူကုန်ကူးမှု လက္ခဏာတွေလား"),
    # "I am not trapped, just asking"; "nobody is holding me"
    ("my", "ကျွန်မ ပိတ်မိနေတာ မဟုတ်ပါဘူး သိချင်လို့ မေးတာပါ"),
    ("my", "ngar ko bal thu mha ma phan htar bu, mayy kyi tar par"),
    ("kac", "Tai mungdan de tara hte maren kaning sa na"),
    ("kac", "Chyeju kaba sai"),
    ("kac", "Agency jep na karum rit"),
    ("shn", "ယိၼ်းလီၶႃႈ"),
    ("shn", "ၵႂႃႇမိူင်းထႆး လၢႆးလႂ်"),
]


@pytest.mark.parametrize("language,text", HARMLESS, ids=[t for _, t in HARMLESS])
def test_harmless_messages_do_not_escalate(content, language, text):
    assert content.lexicon_match(text, language) is None


def test_lexicon_entries_are_folded_as_unicode(content):
    """Lexicon files are Unicode: an entry is not put through the Zawgyi detector, which
    takes a short Unicode word with a stacked consonant for Zawgyi and "converts" it into
    a word no message holds (issue 4, fifteenth round: "လက္ခဏာလား" had never matched)."""
    assert fold("လက္ခဏာလား", zawgyi=False) == "လက္ခဏာလား"
    assert fold("လက္ခဏာလား") != "လက္ခဏာလား"  # the detector's mistake, on a message this short
    # and the guard works: a strong term asked about as a sign, nobody named (also in HARMLESS)
    assert content.lexicon_match("အတင်းအလုပ်ခိုင်းစေခံရတဲ့ လက္ခဏာလား", "my") is None
    assert content.lexicon_match("ညီမကို အတင်းအလုပ်ခိုင်းနေတယ် လက္ခဏာလား", "my") is not None


# issue 4, eighth round: "the relative is fine or back", said and not taken back (Content.reassured;
# the worker sends it as metadata.reassured and RiskRouter keeps a report guess from opening a case)
REASSURED = [
    "သား ထိုင်းမှာ အဆင်ပြေနေတယ် ပါမစ် ဘယ်လို သက်တမ်းတိုးရလဲ",
    "အစ်မ မလေးရှားက ပြန်ရောက်လာပြီ ဘယ်မှာ အလုပ်ရှာရမလဲ",
    "ညီမလေး တရုတ်မှာ နေကောင်းပါတယ် ဗီဇာ သက်တမ်းကုန်ရင် ဘာလုပ်ရမလဲ",
    "thar thai mhar a sin pyay tal visa bal lo lote ya lal",
]
NOT_REASSURED = [
    "ညီမ အဆင်ပြေလား မသိဘူး",  # asked, not told
    "ညီမ မလေးရှားက ပြန်ရောက်မလာသေးဘူး",  # not back yet
    "အမေ နေမကောင်းဘူး",  # sick
    "ညီမ အဆင်ပြေတယ်တဲ့ ဒါပေမဲ့ အသံက မကောင်းဘူး",  # taken back: "but"
    "ပွဲစားက သမီး အဆင်ပြေတယ်ပဲ ပြောတယ်",  # only the broker says so
    "my sister is fine but her boss keeps her passport",
    # eleventh round: someone ELSE came back, alone, and cries (a report the rule once let through)
    "သမီးနဲ့ သွားတဲ့ သူငယ်ချင်း တစ်ယောက်တည်း ပြန်ရောက်လာတယ် မေးရင် ငိုနေတယ်",
]


@pytest.mark.parametrize("text", REASSURED)
def test_a_relative_said_to_be_fine_is_reassured(content, text):
    assert content.reassured(text, "my")


def test_english_reassurances_count_and_contrasts_take_them_back(content):
    assert content.reassured("my son is doing well in thailand, how does he renew his permit", "en")
    assert not content.reassured("my sister is fine now but her boss keeps her passport", "en")
    assert not content.reassured("is my sister fine? she does not answer", "en")


@pytest.mark.parametrize("text", NOT_REASSURED)
def test_asked_not_yet_or_taken_back_is_not_reassured(content, text):
    assert not content.reassured(text, "my")


def test_the_most_severe_term_wins(content):
    hit = content.lexicon_match("my sister is missing and they locked her in", "en")
    assert hit.severity == "emergency"


def test_empty_and_non_text_do_not_match(content):
    assert content.lexicon_match("", "en") is None
    assert content.lexicon_match("   ", "my") is None
    assert content.lexicon_match("12345", "kac") is None


# --- measured on the NLU data: reports caught, questions left alone ---------------------
RISK_INTENTS = {"report_concern", "emergency"}
QUESTION_INTENTS = {
    "migrate_legally",
    "check_agency",
    "check_job_offer",
    "documents",
    "fees_debt",
    "rights_at_work",
    "marriage_broker",
    "trafficking_signs",
    "find_mrc",
    "greet",
    "menu",
    "thanks",
    "goodbye",
    "affirm",
    "deny",
    "subscribe",
    "choose_language",
    "out_of_scope",
    "bot_challenge",
    "delete_data",
}
#: minimum share of held-out reports and emergencies caught / most false alarms
MIN_RECALL = 0.85
MAX_FALSE_ALARMS = 0.06


def _examples(path: Path):
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for item in data.get("nlu") or []:
        for line in (item.get("examples") or "").splitlines():
            line = line.strip()
            if line.startswith("- ") and "intent" in item:
                yield item["intent"], re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line[2:])


@pytest.mark.parametrize("language", ["en", "my", "kac", "shn"])
def test_lexicon_on_the_held_out_set(content, language):
    path = ROOT / "bot" / "heldout" / f"{language}.yml"
    if not path.exists():
        pytest.skip(f"{path} not written yet")
    caught = missed = alarms = quiet = 0
    for intent, text in _examples(path):
        hit = content.lexicon_match(text, language)
        if intent in RISK_INTENTS:
            caught, missed = caught + bool(hit), missed + (not hit)
        elif intent in QUESTION_INTENTS:
            alarms, quiet = alarms + bool(hit), quiet + (not hit)
    assert caught + missed >= 10, "too few reports in the held-out set to measure"
    recall = caught / (caught + missed)
    false_alarms = alarms / max(alarms + quiet, 1)
    print(
        f"{language}: held-out reports caught {caught}/{caught + missed}, false alarms {alarms}/{alarms + quiet}"
    )
    assert recall >= MIN_RECALL
    assert false_alarms <= MAX_FALSE_ALARMS


# --- keywords -------------------------------------------------------------------------------
KEYWORDS = [
    ("STOP", Keyword("stop")),
    ("stop", Keyword("stop")),
    ("  Stop!  ", Keyword("stop")),
    ("UNSUBSCRIBE", Keyword("stop")),
    ("ရပ်ပါ", Keyword("stop")),
    ("ရပ် ပါ", Keyword("stop")),
    ("hkring", Keyword("stop")),
    ("ၵိုတ်း", Keyword("stop")),
    ("START", Keyword("start")),
    ("ပြန်စပါ", Keyword("start")),
    ("HELP", Keyword("help")),
    ("info", Keyword("help")),
    ("ENGLISH", Keyword("language", "en")),
    ("MYANMAR", Keyword("language", "my")),
    ("ဗမာ", Keyword("language", "my")),
    ("မြန်မာ", Keyword("language", "my")),
    ("Jinghpaw", Keyword("language", "kac")),
    ("KACHIN", Keyword("language", "kac")),
    ("SHAN", Keyword("language", "shn")),
    ("တႆး", Keyword("language", "shn")),
    ("DELETE", Keyword("delete")),
    ("delete my data", Keyword("delete")),
    ("ဖျက်ပါ", Keyword("delete")),
    ("JOIN", Keyword("join")),
    ("subscribe", Keyword("join")),
]
NOT_KEYWORDS = [
    "please don't stop sending me news",
    "stop the broker",
    "how do I start working in thailand",
    "help me my sister is missing",
    "1",
    "၁",
    "႑",
    "9",
    "ကယ်ပါ",  # a cry for help goes to the risk lexicon, never a keyword
    "karum rit",
    "Tai",  # Thailand in Jinghpaw, not a switch to Shan
    "",
    "english please can you answer in english because i do not read burmese well",
]


@pytest.mark.parametrize("text,expected", KEYWORDS, ids=[t for t, _ in KEYWORDS])
def test_keywords_match_the_whole_message(content, text, expected):
    hit = match_keyword(text, content)
    assert hit is not None
    assert (hit.kind, hit.language) == (expected.kind, expected.language)
    assert hit.value == expected.language  # the worker reads .value for language keywords


@pytest.mark.parametrize("text", NOT_KEYWORDS)
def test_keywords_inside_a_sentence_or_digits_do_not_match(content, text):
    assert match_keyword(text, content) is None


def test_match_keyword_without_arguments_uses_the_process_content(monkeypatch):
    import lanpya.content as mod

    monkeypatch.setattr(mod, "_PROCESS_CONFIG", [Config(env="test", content_dir=CONTENT)])
    assert match_keyword("STOP").kind == "stop"


# --- agency check -----------------------------------------------------------------------------
AGENCIES = [
    ("Zzyzx Placeholder Example Agency", "licensed"),
    ("zzyzx placeholder example", "licensed"),
    ("Zyzzx Placeholdr", "licensed"),  # misspelt
    ("ZZYZX PLACEHOLDER EXAMPLE CO., LTD.", "licensed"),
    ("ဥပမာ နမူနာ", "licensed"),  # Burmese name
    ("ဥပမာနမူနာ အေဂျင်စီ", "licensed"),
    ("SAMPLE-0001", "licensed"),  # licence number
    ("sample 0001", "licensed"),
    ("SAMPLE-0003", "revoked"),
    ("Xylofone Test Only Recruiting", "revoked"),
    ("Narwhal Not Real Demo", "revoked"),  # suspended counts as not safe
    ("Golden Myanmar Star Overseas", "not_found"),
    ("agency", "not_found"),
    ("", "not_found"),
    ("SAMPLE-9999", "not_found"),
]


@pytest.mark.parametrize("query,status", AGENCIES, ids=[q or "<empty>" for q, _ in AGENCIES])
def test_agency_check_is_tolerant(content, query, status):
    result = content.agency_check(query)
    assert result.status == status
    if status != "not_found":
        assert result.matches and result.matches[0].licence_no.startswith("SAMPLE-")


def test_sample_agencies_are_ignored_in_production():
    prod = Content.load(CONTENT, Config(env="production", hotline_number="1"))
    assert prod.agency_check("Zzyzx Placeholder Example Agency").status == "not_found"
    assert prod.agency_check("SAMPLE-0003").status == "not_found"


def test_shipped_agency_rows_are_all_marked_sample():
    rows = [
        ln
        for ln in (CONTENT / "agencies.csv").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ][1:]
    assert rows and all(ln.rstrip().endswith(",true") for ln in rows)
    meta = yaml.safe_load((CONTENT / "agencies.meta.yml").read_text(encoding="utf-8"))
    assert "source" in meta and "S10" in meta["source_ids"]


def test_a_maximum_size_message_is_screened_quickly_and_still_caught(content):
    import time

    filler = "the weather is nice and we plan to travel next month with friends from the village " * 800
    text = filler[:60_000] + " they locked her in"
    started = time.perf_counter()
    hit = content.lexicon_match(text, "en")
    assert time.perf_counter() - started < 3.0  # generous: 2 shared cores
    assert hit is not None and hit.severity == "emergency"
