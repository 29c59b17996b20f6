"""docker-compose.yml cannot run on this machine (no Docker engine), so this
checks that it describes the same processes, with the same commands, as the
local runner starts."""

from __future__ import annotations

import yaml

from lanpya.processes import PROCESSES
from tests.support import ROOT

INFRA = {"postgres", "redis", "proxy"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_runner_process_is_a_compose_service_with_the_same_command():
    services = compose()["services"]
    for proc in PROCESSES:
        assert proc.name in services, f"{proc.name} missing from docker-compose.yml"
        assert services[proc.name]["command"] == proc.compose_command()


def test_every_compose_service_is_a_runner_process_or_infrastructure():
    services = set(compose()["services"])
    assert services - INFRA == {p.name for p in PROCESSES}


def test_local_and_compose_commands_differ_only_by_interpreter():
    for proc in PROCESSES:
        local, prod = proc.local_command(), proc.compose_command()
        assert local[1:] == prod[1:]
        assert local[0].endswith("/" + prod[0]) or local[0].endswith("/python")


def test_web_sits_behind_tls_proxy_and_is_not_published():
    services = compose()["services"]
    assert "ports" not in services["web"]
    assert services["proxy"]["ports"] == ["80:80", "443:443"]
    assert "web:8000" in (ROOT / "deploy" / "Caddyfile").read_text()


def test_production_images_install_from_the_lock_files():
    assert "requirements.lock" in (ROOT / "deploy" / "Dockerfile.app").read_text()
    assert "bot/requirements.lock" in (ROOT / "deploy" / "Dockerfile.rasa").read_text()
