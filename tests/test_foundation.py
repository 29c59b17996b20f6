"""The skeleton: configuration fails closed, migrations match the models,
the app starts and reports its health."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from lanpya.config import Config, ConfigError
from lanpya.db import normalise_url
from lanpya.models import Base
from tests.support import ROOT


def test_migrations_match_models(db_url):
    engine = create_engine(normalise_url(db_url))
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"


def base_env(**extra) -> dict:
    from tests.conftest import TEST_KEYS

    env = {
        "LANPYA_DATA_KEY": TEST_KEYS["data"],
        "LANPYA_LOOKUP_KEY": TEST_KEYS["lookup"],
        "LANPYA_INTERNAL_TOKEN": TEST_KEYS["internal"],
    }
    env.update(extra)
    return env


@pytest.mark.parametrize(
    "env, missing",
    [
        (base_env(TWILIO_ACCOUNT_SID="AC123", TWILIO_FROM_NUMBER="+15005550006"), "TWILIO_AUTH_TOKEN"),
        (base_env(TWILIO_AUTH_TOKEN="x", TWILIO_FROM_NUMBER="+15005550006"), "TWILIO_ACCOUNT_SID"),
        (base_env(TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="x"), "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"),
        ({k: v for k, v in base_env().items() if k != "LANPYA_DATA_KEY"}, "LANPYA_DATA_KEY"),
        ({k: v for k, v in base_env().items() if k != "LANPYA_LOOKUP_KEY"}, "LANPYA_LOOKUP_KEY"),
        ({k: v for k, v in base_env().items() if k != "LANPYA_INTERNAL_TOKEN"}, "LANPYA_INTERNAL_TOKEN"),
    ],
)
def test_missing_secret_is_named(env, missing):
    with pytest.raises(ConfigError) as err:
        Config.from_env(env).validate("web")
    assert missing in str(err.value)


def test_production_refuses_default_secret():
    env = base_env(LANPYA_ENV="production", PUBLIC_URL="https://lanpya.example.org")
    with pytest.raises(ConfigError, match="LANPYA_SECRET_KEY"):
        Config.from_env(env).validate("web")
    env["LANPYA_SECRET_KEY"] = "x" * 40
    Config.from_env(env).validate("web")


def test_start_up_with_provider_but_no_secret_exits_non_zero(tmp_path):
    """The real command, as an operator runs it: non-zero exit naming the key."""
    env = base_env(
        TWILIO_ACCOUNT_SID="AC123", TWILIO_FROM_NUMBER="+15005550006",
        PATH="/usr/bin:/bin", HOME=str(tmp_path), LANPYA_VAR_DIR=str(tmp_path),
    )
    out = subprocess.run(
        [sys.executable, "-m", "lanpya.cli", "worker"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode != 0
    assert "TWILIO_AUTH_TOKEN" in out.stderr


def test_env_example_lists_every_key():
    import re

    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    source = (ROOT / "lanpya" / "config.py").read_text()
    read = set(re.findall(r'env\.get\("([A-Z_]+)"', source)) | set(re.findall(r'_(?:int|float)\(env, "([A-Z_]+)"', source))
    assert read - listed == set(), f"keys read but not documented in .env.example: {read - listed}"


def test_healthz_reports_each_component_and_fails_when_down(client):
    resp = client.get("/healthz")
    body = resp.get_json()
    assert set(body["components"]) == {"database", "rasa", "actions", "worker", "scheduler"}
    assert body["components"]["database"] == "up"
    # nothing else runs in this test: the status must say so
    assert body["components"]["worker"] == "down"
    assert resp.status_code == 503
