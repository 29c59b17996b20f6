"""A session-scoped real conversation stack for tests: the trained model in a
real Rasa server and action server (bot/serve.py, Rasa's Python), talking
to the web app (webhook.create_app in a LiveServer: NLG, internal API) on
one SQLite database. Tests run the worker in-process against it.

Use the ``rasa_stack`` fixture (``pytest_plugins = ["tests.stack"]`` or import
it into a test module). Rasa can be stopped and started again
(``stack.stop_rasa()`` / ``stack.start_rasa()``) to test outages.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.e2e_stack import Proc, actions_proc, base_env, free_port, rasa_proc, wait_http
from lanpya.config import Config
from lanpya.db import Database
from tests.conftest import TEST_KEYS, make_config
from tests.support import LiveServer


@dataclass
class Stack:
    config: Config
    db: Database
    env: dict
    log_dir: Path
    rasa_port: int
    action_port: int
    web: LiveServer
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def start_rasa(self, timeout: float = 300) -> None:
        proc = rasa_proc(self.env, self.log_dir).start()
        self.procs["rasa"] = proc
        try:
            wait_http(self.rasa_url + "/status", proc.popen, timeout=timeout)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{proc.tail()}") from exc

    def stop_rasa(self) -> None:
        proc = self.procs.pop("rasa", None)
        if proc is not None:
            proc.stop()

    def start_actions(self) -> None:
        proc = actions_proc(self.env, self.log_dir).start()
        self.procs["actions"] = proc
        wait_http(f"http://127.0.0.1:{self.action_port}/health", proc.popen, timeout=120)

    def stop(self) -> None:
        for name in list(self.procs):
            self.procs.pop(name).stop()


@pytest.fixture(scope="session")
def rasa_stack(rasa_model, tmp_path_factory, sqlite_template):
    tmp = tmp_path_factory.mktemp("stack")
    db_path = tmp / "lanpya.db"
    shutil.copy(sqlite_template, db_path)
    rasa_port, action_port = free_port(), free_port()
    config = make_config(tmp, f"sqlite:///{db_path}", rasa_url=f"http://127.0.0.1:{rasa_port}")
    db = Database(config.database_url)
    from webhook import create_app

    web = LiveServer(create_app(config, db)).__enter__()
    env = base_env(
        LANPYA_INTERNAL_TOKEN=TEST_KEYS["internal"],
        INTERNAL_URL=web.url,
        RASA_PORT=str(rasa_port),
        ACTION_PORT=str(action_port),
        ACTION_SERVER_URL=f"http://127.0.0.1:{action_port}/webhook",
        RASA_URL=f"http://127.0.0.1:{rasa_port}",
        LANPYA_VAR_DIR=str(tmp / "var"),
        RASA_TRACKER_URL=f"sqlite:///{tmp / 'tracker.db'}",
        RASA_MODEL_DIR=str(rasa_model.parent),
    )
    stack = Stack(config, db, env, tmp, rasa_port, action_port, web)
    try:
        stack.start_actions()
        stack.start_rasa()
        yield stack
    finally:
        stack.stop()
        web.__exit__(None, None, None)
        db.dispose()
