"""compose.yaml describes the production shape and passes `docker compose config`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compose_cmd() -> list[str] | None:
    if shutil.which("docker"):
        r = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if r.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_config_is_valid() -> None:
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {**os.environ, "POSTGRES_PASSWORD": "x", "SESSION_SECRET": "y", "COMPOSE_PROFILES": "demo"}
    r = subprocess.run([*cmd, "-f", str(ROOT / "compose.yaml"), "config"], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    for service in ("db:", "web:", "ingest:", "simulators:"):
        assert service in r.stdout
    assert "timescale/timescaledb" in r.stdout


def test_compose_refuses_to_start_without_secrets() -> None:
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_PASSWORD", "SESSION_SECRET")}
    r = subprocess.run([*cmd, "-f", str(ROOT / "compose.yaml"), "config"], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    assert r.returncode != 0
