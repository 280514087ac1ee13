"""Runs scripts/integration_smoke_test.py against a real granian server on a fresh, seeded database,
with the platform defaults (OPCUA_ENDPOINT_URL, PI_BASE_URL) pointing at the two simulators."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from optria.db import Database
from optria.demo.seed import seed_demo
from optria.secretbox import SecretBox

ROOT = Path(__file__).resolve().parents[2]
SECRET = "integration-smoke-secret-" + "q" * 24


async def run_script(env: dict[str, str], *args: str, timeout: float = 240) -> tuple[int, str]:
    """The script as a subprocess, awaited without blocking this loop (the simulators run on it)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "scripts" / "integration_smoke_test.py"),
                                                *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


@pytest.mark.slow
async def test_integration_smoke_script_passes_against_the_simulators(db: Database, db_dsn: str, opcua_sim,
                                                                      pi_sim_factory, tmp_path) -> None:
    pi = await pi_sim_factory(users=None)  # the demo PI integration signs in anonymously
    await seed_demo(db, SecretBox(SECRET.encode()))
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": SECRET, "APP_ENV": "test",
           "OPCUA_ENDPOINT_URL": opcua_sim.endpoint_url, "PI_BASE_URL": pi.base_url,
           "OPTRIA_DATA_DIR": str(tmp_path)}
    code, out = await run_script(env)
    print(out[-4000:])
    assert code == 0, out[-4000:]
    assert " 0 failed" in out and "Ras Tanura OPC-UA" in out and "Abqaiq PI Web API" in out
    assert "endpoint from global" in out


@pytest.mark.slow
async def test_integration_smoke_script_fails_when_a_source_is_down(db: Database, db_dsn: str, opcua_closed_port,
                                                                    pi_sim_factory, tmp_path) -> None:
    pi = await pi_sim_factory(users=None)
    await seed_demo(db, SecretBox(SECRET.encode()))
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": SECRET, "APP_ENV": "test",
           "OPCUA_ENDPOINT_URL": f"opc.tcp://127.0.0.1:{opcua_closed_port}", "PI_BASE_URL": pi.base_url,
           "OPTRIA_DATA_DIR": str(tmp_path)}
    code, out = await run_script(env)
    assert code == 1, out[-3000:]
    assert "1 failed" in out and "connection_refused" in out
