"""The command line fails with a clear message, not a traceback, when the operator must act."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "APP_ENV", "SESSION"))}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "optria.cli", *args], capture_output=True, text=True, env=full,
                          timeout=60)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_down_is_a_clear_error() -> None:
    r = _run(["migrate"], DATABASE_URL=f"postgresql://u:topsecretpw@127.0.0.1:{_closed_port()}/x")
    assert r.returncode == 2
    assert "cannot connect to PostgreSQL at 127.0.0.1" in r.stderr
    assert "Traceback" not in r.stderr and "topsecretpw" not in r.stderr + r.stdout


def test_production_without_secret_exits_naming_it() -> None:
    r = _run(["migrate"], APP_ENV="production", DATABASE_URL="postgresql://u:pw@127.0.0.1:1/x")
    assert r.returncode == 2 and "SESSION_SECRET" in r.stderr and "Traceback" not in r.stderr


def test_malformed_env_value_names_the_variable() -> None:
    r = _run(["migrate"], DEMO_MODE="perhaps")
    assert r.returncode == 2 and "DEMO_MODE" in r.stderr and "Traceback" not in r.stderr
