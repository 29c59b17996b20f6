"""Start the Rasa side (Python 3.10 runtime): ``train``, ``rasa``, ``actions``.

Run with the Rasa environment's Python, from the repository root:

    .venv-rasa/bin/python bot/serve.py train     # only if bot/ changed
    .venv-rasa/bin/python bot/serve.py rasa      # the Rasa server
    .venv-rasa/bin/python bot/serve.py actions   # the action server

The same command runs in docker-compose (``python bot/serve.py rasa``).
Settings come from the environment (the runner passes the app's .env):
RASA_PORT, ACTION_PORT, RASA_TRACKER_URL, REDIS_URL, INTERNAL_URL,
LANPYA_INTERNAL_TOKEN, ACTION_SERVER_URL, RASA_MODEL_DIR.

It writes ``var/rasa-endpoints.yml`` from those settings (SQL tracker store;
Redis lock store when REDIS_URL is set; the web app as NLG server) and
``exec``s Rasa, so signals reach Rasa itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

BOT = Path(__file__).resolve().parent
ROOT = BOT.parent
#: what the model is trained from; a change to any of these retrains
TRAINING_INPUTS = ("config.yml", "domain.yml", "domain", "data", "components")


def env(key: str, default: str = "") -> str:
    return os.environ.get(key) or default


def var_dir() -> Path:
    path = Path(env("LANPYA_VAR_DIR", str(ROOT / "var")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_dir() -> Path:
    path = Path(env("RASA_MODEL_DIR", str(BOT / "models")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def training_hash(bot: Path = BOT) -> str:
    """A hash of everything the model is trained from (and the Rasa version)."""
    digest = hashlib.sha256()
    for name in TRAINING_INPUTS:
        base = bot / name
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for path in files:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            if path.exists() and not path.name.startswith("."):
                digest.update(str(path.relative_to(bot)).encode())
                digest.update(path.read_bytes())
    lock = bot / "requirements.lock"
    if lock.exists():
        digest.update(lock.read_bytes())
    return digest.hexdigest()[:16]


def model_path() -> Path:
    return model_dir() / f"lanpya-{training_hash()}.tar.gz"


def train(force: bool = False) -> Path:
    target = model_path()
    if target.exists() and not force:
        print(f"model up to date: {target.name}", file=sys.stderr, flush=True)
        return target
    from rasa.model_training import train as rasa_train

    print(f"training {target.name} ...", file=sys.stderr, flush=True)
    result = rasa_train(
        domain=str(BOT / ("domain" if (BOT / "domain").is_dir() else "domain.yml")),
        config=str(BOT / "config.yml"),
        training_files=[str(BOT / "data")],
        output=str(target.parent),
        fixed_model_name=target.name[: -len(".tar.gz")],
        force_training=True,
    )
    if result.code != 0 or not target.exists():
        sys.exit(f"training failed (code {result.code})")
    # keep the two newest models only
    models = sorted(model_dir().glob("lanpya-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    for old in models[:-2]:
        old.unlink(missing_ok=True)
    return target


#: Rasa's SQL tracker store with a per-sender cache of the current session
#: (bot/channels/tracker_store.py); same table and settings as type "SQL"
TRACKER_STORE = "channels.tracker_store.LanpyaTrackerStore"


def tracker_store() -> dict:
    url = env("RASA_TRACKER_URL", f"sqlite:///{var_dir() / 'rasa-tracker.db'}")
    parsed = urlparse(url)
    if parsed.scheme.startswith("sqlite"):
        return {"type": TRACKER_STORE, "dialect": "sqlite", "db": url.split("///", 1)[1]}
    store = {
        "type": TRACKER_STORE,
        "dialect": "postgresql",
        # Rasa passes the endpoint's "url" as the store's host ("host" here would be given twice)
        "url": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "db": parsed.path.lstrip("/") or "rasa",
    }
    if parsed.username:
        store["username"] = unquote(parsed.username)
    if parsed.password:
        store["password"] = unquote(parsed.password)
    return store


def lock_store() -> dict | None:
    url = env("REDIS_URL")
    if not url:
        return None
    parsed = urlparse(url)
    store = {
        "type": "redis",
        "url": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 6379,
        "db": int((parsed.path or "/0").lstrip("/") or 0),
        "key_prefix": "lanpya",
    }
    if parsed.password:
        store["password"] = unquote(parsed.password)
    return store


def write_endpoints() -> Path:
    internal = env("INTERNAL_URL", f"http://127.0.0.1:{env('WEB_PORT', '8000')}").rstrip("/")
    endpoints = {
        "action_endpoint": {
            "url": env("ACTION_SERVER_URL", f"http://127.0.0.1:{env('ACTION_PORT', '5055')}/webhook")
        },
        # the web app renders responses; the domain's text if it cannot (bot/channels/nlg.py)
        "nlg": {"type": "channels.nlg.LanpyaNLG", "url": f"{internal}/internal/nlg",
                "token": env("LANPYA_INTERNAL_TOKEN")},
        "tracker_store": tracker_store(),
    }
    lock = lock_store()
    if lock:
        endpoints["lock_store"] = lock
    path = var_dir() / f"rasa-endpoints-{os.getpid()}.yml"
    # JSON is YAML; no yaml dependency needed here
    path.write_text(json.dumps(endpoints, indent=2))
    return path


def check_custom_modules() -> None:
    """Import the custom tracker store and NLG before Rasa does: Rasa replaces a
    tracker store it cannot import with an in-memory one (every conversation
    would be forgotten at the next restart) and only warns."""
    sys.path.insert(0, str(BOT))
    try:
        import channels.nlg  # noqa: F401
        import channels.tracker_store  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - refuse to start, loudly
        sys.exit(f"bot/channels cannot be imported ({type(exc).__name__}: {exc}); not starting Rasa")
    finally:
        sys.path.remove(str(BOT))


def lower_priority() -> None:
    """BACKGROUND_NICE (default 10): Rasa and its actions yield the CPU to the web
    process, whose webhook acknowledgements providers wait for (the worker does
    the same; lanpya/config.py)."""
    try:
        nice = int(env("BACKGROUND_NICE", "10"))
    except ValueError:
        nice = 10
    if nice > 0 and hasattr(os, "nice"):
        try:
            os.nice(min(nice, 19))
        except OSError as exc:
            print(f"could not lower the priority: {exc}", file=sys.stderr)


def serve_rasa() -> None:
    lower_priority()
    check_custom_modules()
    model = train()
    endpoints = write_endpoints()
    port = env("RASA_PORT", "5005")
    rasa = str(Path(sys.executable).parent / "rasa")
    args = [
        rasa, "run", "--enable-api", "--interface", env("RASA_INTERFACE", "127.0.0.1"),
        "--port", port, "--model", str(model), "--endpoints", str(endpoints),
        "--credentials", str(BOT / "credentials.yml"), "--cors", "[]",
    ]
    if env("RASA_AUTH_TOKEN"):
        args += ["--auth-token", env("RASA_AUTH_TOKEN")]
    os.chdir(BOT)
    os.execv(rasa, args)


def serve_actions() -> None:
    lower_priority()
    rasa = str(Path(sys.executable).parent / "rasa")
    os.chdir(BOT)
    os.execv(rasa, [rasa, "run", "actions", "--port", env("ACTION_PORT", "5055"), "--actions", "actions"])


def main(argv: list[str]) -> None:
    # Rasa's telemetry and its Sentry crash reports would send data off the
    # machine (a crash report can carry a message): always off.
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    command = argv[1] if len(argv) > 1 else ""
    if command == "train":
        print(train(force="--force" in argv))
    elif command == "rasa":
        serve_rasa()
    elif command == "actions":
        serve_actions()
    elif command == "hash":
        print(training_hash())
    else:
        sys.exit("usage: python bot/serve.py train|rasa|actions|hash")


if __name__ == "__main__":
    main(sys.argv)
