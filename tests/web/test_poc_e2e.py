"""`optria poc` end to end: a fresh database, both simulators on one plant, `optria ingest`, the seeded
demo tenant — then the proof of concept from the command line, and again from the owner's web page.

Real everything: the OPC-UA and PI Web API simulators on free loopback ports (in this process, so
the fault the PoC injects through the PI simulator's /sim/fault is seen by the OPC-UA one), the
ingest service as a subprocess (workers, writer, twin and Black Box jobs), the CLI as a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from optria.config import Settings
from optria.demo.opcua_server import OpcUaSimulator
from optria.demo.pi_server import PiWebApiSimulator
from optria.demo.plant import Plant
from optria.demo.seed import seed_demo
from optria.platform import poc
from optria.secretbox import SecretBox
from optria.shell.app import create_app
from tests.fix_web import new_web

SECRET = "poc-e2e-secret-" + "p" * 30
STEPS = [key for key, _ in poc.STEPS]
POC_ARGS = ["--ramp", "4", "--poll", "0.5", "--stream-timeout", "60", "--data-timeout", "40",
            "--incident-timeout", "60", "--run-timeout", "60", "--connection-timeout", "20"]


async def _stop(proc: asyncio.subprocess.Process) -> str:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return (await proc.stderr.read()).decode(errors="replace")[-3000:] if proc.stderr else ""


@pytest.mark.slow
async def test_optria_poc_passes_end_to_end_against_the_simulators(db, db_dsn, tmp_path: Path, opcua_server_pki,
                                                                   accounts) -> None:
    plant = Plant()
    opc = OpcUaSimulator(plant, port=0, cert_dir=opcua_server_pki, allow_anonymous=True, update_hz=2.0)
    pi = PiWebApiSimulator(plant, port=0, scan_period_s=1.0)
    await opc.start()
    await pi.start()
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": SECRET, "APP_ENV": "test",
           "OPCUA_ENDPOINT_URL": opc.endpoint_url, "PI_BASE_URL": pi.base_url, "OPTRIA_DATA_DIR": str(tmp_path),
           "OPTRIA_LOG_LEVEL": "WARNING"}
    env.pop("OPENAI_API_KEY", None)
    settings = Settings(DATABASE_URL=db_dsn, SESSION_SECRET=SECRET, APP_ENV="test", OPCUA_ENDPOINT_URL=opc.endpoint_url,
                        PI_BASE_URL=pi.base_url, OPTRIA_DATA_DIR=str(tmp_path))
    await seed_demo(db, SecretBox(settings.session_key()))
    async with db.platform("test") as conn:      # the PoC switches a stopped demo stream on itself
        await conn.execute("UPDATE integrations SET demo_stream = false WHERE kind = 'pi'")
    ingest = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "optria.cli", "ingest", "--metrics-port", "0", "--lease-ttl", "6", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        started = time.monotonic()
        cli = await asyncio.create_subprocess_exec(sys.executable, "-m", "optria.cli", "poc", *POC_ARGS, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(cli.communicate(), 240)
        cli_seconds = time.monotonic() - started
        output = out.decode()
        print(output)
        print(f"optria poc took {cli_seconds:.1f} s")
        assert cli.returncode == 0, output + err.decode()[-3000:]
        for n, key in enumerate(STEPS, start=1):
            assert f"[PASS] {n}. " in output, f"step {key} did not pass:\n{output}"
        assert "Result: PASSED" in output

        async with db.platform("test") as conn:
            report = await (await conn.execute("SELECT * FROM poc_reports WHERE origin = 'cli'")).fetchone()
        assert report["status"] == "passed" and report["finished_at"] is not None
        assert [s["status"] for s in report["steps"]] == ["passed"] * len(STEPS)
        optimization = next(s for s in report["steps"] if s["key"] == "optimization")
        assert optimization["details"]["status"] == "fallback"           # no OPENAI_API_KEY: labelled fallback
        assert "OPENAI_API_KEY" in optimization["message"]
        streams = next(s for s in report["steps"] if s["key"] == "streams")
        assert streams["details"]["switched_on"] == ["Abqaiq PI Web API"]
        async with db.platform("test") as conn:
            audit = await (await conn.execute("SELECT actor_name, details FROM audit_log "
                                              "WHERE action = 'integration.demo_stream_on'")).fetchall()
        assert len(audit) == 1 and audit[0]["details"]["by"] == "proof of concept"
        incident = next(s for s in report["steps"] if s["key"] == "incident")
        assert incident["tenant_url"].startswith("/blackbox/incidents/")

        # the same proof from the platform owner's page, with live progress through the JSON endpoint
        owner = await accounts.user("platform_owner")
        app = create_app(settings, db)
        async with new_web(app) as web:
            await web.login(owner)
            page = await web.get("/platform/poc")
            assert page.status_code == 200 and 'data-testid="run-poc"' in page.text
            r = await web.post_form("/platform/poc", {"tenant_slug": "demo-aramco"})
            assert r.status_code == 303, r.text
            report_url = r.headers["location"]
            report_id = int(report_url.rsplit("/", 1)[1])
            seen_running = False
            deadline = time.monotonic() + 200
            while True:
                body = (await web.api("GET", f"/api/platform/poc/{report_id}")).json()
                seen_running |= body["status"] == "running" and any(s["status"] == "passed" for s in body["steps"])
                if body["status"] != "running":
                    break
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.5)
            assert body["status"] == "passed", body
            assert [s["status"] for s in body["steps"]] == ["passed"] * len(STEPS)
            assert seen_running, "the JSON endpoint showed no progress while the report ran"
            page = await web.get(report_url)
            assert page.status_code == 200 and 'data-poc-status="passed"' in page.text
            history = await web.get("/platform/poc")
            assert f'data-report="{report_id}"' in history.text and f'data-report="{report["id"]}"' in history.text
            overview = await web.get("/platform")
            assert 'data-test-result="ok"' in overview.text          # the PoC's connection tests are recorded
    finally:
        stderr = await _stop(ingest)
        await pi.stop()
        await opc.stop()
    print(stderr[-1000:])
