"""Benchmark only: Rasa with its built-in Twilio connector replying through
the fake Twilio server (run with the Rasa environment's Python).

Rasa's ``TwilioOutput`` builds a ``twilio.rest.Client`` (twilio 8.2) whose Api
domain has ``https://api.twilio.com`` fixed in ``ApiBase.__init__``; we set
the domain's ``base_url`` to ``BENCH_TWILIO_API_URL`` after it, then run
``rasa run`` in this process with bot/credentials-bench.yml (the custom
``lanpya`` channel and the ``twilio`` connector), the same model and
endpoints as bot/serve.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent / "bot"
sys.path.insert(0, str(BOT))

import serve  # noqa: E402  (bot/serve.py)
from twilio.rest.api.ApiBase import ApiBase  # noqa: E402

_original_init = ApiBase.__init__


def _init(self, twilio) -> None:
    _original_init(self, twilio)
    self.base_url = os.environ["BENCH_TWILIO_API_URL"]


ApiBase.__init__ = _init


def main() -> None:
    # as `bot/serve.py rasa` runs it: the same priority, the same custom modules
    serve.lower_priority()
    serve.check_custom_modules()
    model = serve.train()
    endpoints = serve.write_endpoints()
    sys.argv = [
        "rasa", "run", "--enable-api", "--interface", "127.0.0.1",
        "--port", os.environ.get("RASA_PORT", "5005"), "--model", str(model),
        "--endpoints", str(endpoints), "--credentials", str(BOT / "credentials-bench.yml"), "--cors", "[]",
    ]
    os.chdir(BOT)
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
