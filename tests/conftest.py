"""Fixtures: configuration, a database per test on SQLite (and on PostgreSQL
when TEST_POSTGRES_URL is set), the Flask app and client, a fake clock, and
the trained Rasa model (once per session, cached by the hash of bot/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from lanpya import clock as clockmod
from lanpya import crypto
from lanpya.config import Config
from lanpya.db import Database, normalise_url, upgrade
from lanpya.models import Base
from tests.support import CACHE, CHROMIUM, CHROMIUM_ARGS, RASA_PYTHON, ROOT

pytest_plugins = ["tests.logcheck", "tests.fakes"]

TEST_KEYS = {
    "data": crypto.new_key(),
    "lookup": crypto.new_lookup_key(),
    "internal": "test-internal-token-" + uuid.uuid4().hex[:8],
    "secret": "test-secret-" + uuid.uuid4().hex,
}


def make_config(tmp_path: Path, database_url: str, **overrides) -> Config:
    base = dict(
        env="test",
        database_url=database_url,
        secret_key=TEST_KEYS["secret"],
        data_keys=[TEST_KEYS["data"]],
        lookup_key=TEST_KEYS["lookup"],
        internal_token=TEST_KEYS["internal"],
        var_dir=tmp_path / "var",
        spool_dir=tmp_path / "var" / "spool",
        public_url="http://testserver",
        hotline_number="+95 1 000 000 (test)",
    )
    base.update(overrides)
    config = Config(**base)
    config.var_dir.mkdir(parents=True, exist_ok=True)
    config.spool_dir.mkdir(parents=True, exist_ok=True)
    crypto.configure(config)
    return config


# --- databases -------------------------------------------------------------------
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database for this session, migrated; dropped after."""
    admin = os.environ.get("TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("TEST_POSTGRES_URL not set")
    name = f"lanpya_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(normalise_url(admin), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = normalise_url(admin).rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    with engine.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    engine.dispose()


def _truncate_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("DELETE FROM apscheduler_jobs")) if _has_table(conn, "apscheduler_jobs") else None
    engine.dispose()


def _has_table(conn, name: str) -> bool:
    return bool(conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, sqlite_template) -> str:
    if request.param == "sqlite":
        path = tmp_path / "lanpya.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    """SQLite only, for tests whose subject does not touch the database engine."""
    path = tmp_path / "lanpya.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def config(tmp_path, db_url) -> Config:
    return make_config(tmp_path, db_url)


@pytest.fixture
def db(config):
    database = Database(config.database_url)
    yield database
    database.dispose()


@pytest.fixture
def app(config, db):
    from webhook import create_app

    return create_app(config, db)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def clock():
    fake = clockmod.FakeClock()
    previous = clockmod.use(fake)
    yield fake
    clockmod.use(previous)


@pytest.fixture
def browser():
    """Headless Debian Chromium driven by Playwright (browser tests)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


# --- the Rasa model: trained once, cached by the hash of what it is trained from ------
@pytest.fixture(scope="session")
def rasa_model() -> Path:
    if not RASA_PYTHON.exists():
        pytest.fail("the Rasa environment is missing: run `make setup`")
    model_dir = CACHE / "models"
    env = dict(os.environ, RASA_MODEL_DIR=str(model_dir))
    out = subprocess.run(
        [str(RASA_PYTHON), str(ROOT / "bot" / "serve.py"), "train"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    if out.returncode != 0:
        pytest.fail("training failed:\n" + out.stdout[-3000:] + out.stderr[-3000:])
    return Path(out.stdout.strip().splitlines()[-1])
