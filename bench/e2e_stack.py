"""Starting the real processes of the conversation path on 127.0.0.1, for
the end-to-end benchmark (bench/e2e.py) and the real-model tests
(tests/stack.py): Rasa (trained small model), the action server, the web
app (gunicorn, ``lanpya web``) and the worker (``lanpya worker``).

Every child gets an explicit environment (nothing from the developer's
.env leaks in: python-dotenv never overrides a key that is set, even empty).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
APP_BIN = ROOT / ".venv" / "bin"
CACHE = Path(os.environ.get("LANPYA_CACHE", Path.home() / ".cache" / "lanpya"))
MODEL_DIR = CACHE / "models"

#: the Twilio account the benchmarks' fake provider accepts (and signs with)
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-twilio-auth-token"
OUR_NUMBER = "+15005550006"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**values: str) -> dict[str, str]:
    """Our environment with every Lanpya key set explicitly (empty when not given)."""
    env = dict(os.environ)
    blank = (
        "DATABASE_URL RASA_TRACKER_URL REDIS_URL TWILIO_ACCOUNT_SID TWILIO_AUTH_TOKEN TWILIO_FROM_NUMBER "
        "TWILIO_MESSAGING_SERVICE_SID TWILIO_API_URL VIBER_AUTH_TOKEN VIBER_API_URL HOTLINE_NUMBER "
        "RASA_AUTH_TOKEN LANPYA_CONTENT_DIR RASA_URL ACTION_SERVER_URL INTERNAL_URL PUBLIC_URL"
    ).split()
    for key in blank:
        env[key] = ""
    env.update(PYTHONUNBUFFERED="1", LANPYA_ENV="test", LOG_LEVEL="WARNING", RASA_MODEL_DIR=str(MODEL_DIR))
    env.update(values)
    return env


def stack_env(tmp: Path, web_port: int, **values: str) -> dict[str, str]:
    """``base_env`` plus what every benchmark stack sets alike: fresh secrets and
    keys, var and spool under ``tmp``, the web's port and public URL, the fake
    provider's Twilio account and a placeholder hotline; ``values`` add to or
    override them."""
    from lanpya import crypto

    public = f"http://127.0.0.1:{web_port}"
    env = {
        "LANPYA_SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "LANPYA_DATA_KEY": crypto.new_key(),
        "LANPYA_LOOKUP_KEY": crypto.new_lookup_key(),
        "LANPYA_INTERNAL_TOKEN": "bench-" + uuid.uuid4().hex,
        "LANPYA_VAR_DIR": str(tmp / "var"),
        "LANPYA_SPOOL_DIR": str(tmp / "var" / "spool"),
        "WEB_PORT": str(web_port),
        "PUBLIC_URL": public,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": OUR_NUMBER,
        "HOTLINE_NUMBER": "+95 1 000 000 (bench)",
    }
    env.update(values)
    return base_env(**env)


def train(env: dict[str, str]) -> Path:
    """The model for the current bot/ (cached by its hash; trains only if bot/ changed)."""
    out = subprocess.run(
        [str(RASA_PYTHON), str(ROOT / "bot" / "serve.py"), "train"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if out.returncode != 0:
        raise RuntimeError("training failed:\n" + out.stdout[-2000:] + out.stderr[-2000:])
    return Path(out.stdout.strip().splitlines()[-1])


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


class Proc:
    """A child process with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, cwd: Path = ROOT):
        self.name = name
        self.args = args
        self.env = env
        self.cwd = cwd
        self.log = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        fh = self.log.open("a")
        self.popen = subprocess.Popen(
            self.args, cwd=self.cwd, env=self.env, stdout=fh, stderr=subprocess.STDOUT
        )
        fh.close()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        p = self.popen
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def rasa_proc(env: dict[str, str], log_dir: Path, *, fake_twilio: bool = False) -> Proc:
    """Rasa on RASA_PORT. ``fake_twilio``: also Rasa's built-in Twilio connector
    (bot/credentials-bench.yml), its twilio client pointed at BENCH_TWILIO_API_URL."""
    if fake_twilio:
        args = [str(RASA_PYTHON), str(ROOT / "bench" / "rasa_fake_twilio.py")]
    else:
        args = [str(RASA_PYTHON), str(ROOT / "bot" / "serve.py"), "rasa"]
    return Proc("rasa", args, env, log_dir)


def actions_proc(env: dict[str, str], log_dir: Path) -> Proc:
    return Proc("actions", [str(RASA_PYTHON), str(ROOT / "bot" / "serve.py"), "actions"], env, log_dir)


def web_proc(env: dict[str, str], log_dir: Path, workers: int = 2) -> Proc:
    return Proc("web", [str(APP_BIN / "lanpya"), "web", "--workers", str(workers)], env, log_dir)


def worker_proc(env: dict[str, str], log_dir: Path, name: str = "worker") -> Proc:
    return Proc(name, [str(APP_BIN / "lanpya"), "worker", "--name", name], env, log_dir)


def python() -> str:
    return sys.executable


# --- several processes of one kind (bench/drills.py) -------------------------------------------
def lanpya_proc(role: str, env: dict[str, str], log_dir: Path, name: str, *args: str) -> Proc:
    """``lanpya <role> [args]`` logged as ``<name>.log`` (e.g. a second worker or scheduler)."""
    return Proc(name, [str(APP_BIN / "lanpya"), role, *args], env, log_dir)


def rasa_replica_proc(env: dict[str, str], log_dir: Path, name: str) -> Proc:
    """One of several Rasa servers (``bot/serve.py rasa`` on the env's RASA_PORT), logged as ``<name>.log``."""
    return Proc(name, [str(RASA_PYTHON), str(ROOT / "bot" / "serve.py"), "rasa"], env, log_dir)


def kill9(proc: Proc) -> None:
    """kill -9, as a crash would; waits for the process to be gone."""
    p = proc.popen
    if p is None or p.poll() is not None:
        return
    p.kill()
    p.wait(10)


# --- CPU accounting (bench/e2e.py) -------------------------------------------------------------
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds user+system) of a live process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its live descendants (gunicorn's
    workers, Rasa's children). Linux only; 0.0 elsewhere."""
    stats: dict[int, tuple[int, float]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return 0.0
    for entry in proc.iterdir():
        if entry.name.isdigit():
            got = _proc_stat(int(entry.name))
            if got is not None:
                stats[int(entry.name)] = got
    children: dict[int, list[int]] = {}
    for child, (parent, _) in stats.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += stats[p][1]
        todo.extend(children.get(p, []))
    return total


def postgres_cpu_seconds(database: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``database`` (their command
    line names it), when PostgreSQL runs on this machine."""
    total = 0.0
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("postgres:") and f" {database} " in cmd:
            got = _proc_stat(int(entry.name))
            if got is not None:
                total += got[1]
    return total
