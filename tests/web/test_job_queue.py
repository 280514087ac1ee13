"""The job queue (optria.shell.job_queue): optimization runs and proof-of-concept reports outlive the
web process that started them, and a failed attempt is retried.

Real everything: the web app with its lifespan (its worker), the database, procrastinate's worker
and job tables, an OpenAI-compatible server on loopback. A "dead process" is a worker that took a
job and then stopped sending heartbeats, arranged through procrastinate's own job manager.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from optria.db import Database
from optria.optimization import runs, store
from optria.platform import poc
from optria.platform import store as platform_store
from optria.shell.app import create_app
from optria.shell.job_queue import JobQueue
from tests.fix_web import make_settings, new_web
from tests.web.assets_setup import make_plant

WAIT_S = 30.0


async def _until(check: Callable[[], Awaitable[Any] | Any], what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        found = check()
        found = await found if asyncio.iscoroutine(found) else found
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.1)


async def _run(db: Database, accounts, engine: str, settings) -> tuple[Any, int]:
    tenant = await accounts.tenant()
    plant = await make_plant(db, tenant[0], tag="JQ", assets=1)
    req = runs.RunRequest(tenant_id=tenant[0], scope="asset", scope_id=plant.assets["JQ-P-1"], engine=engine)
    return tenant[0], await runs.create_run(db, settings, req)


def _job(owner_conn: psycopg.Connection, task: str) -> tuple | None:
    return owner_conn.execute("SELECT status::text, attempts FROM procrastinate_jobs WHERE task_name = %s",
                              [task]).fetchone()


async def _taken_by_a_dead_worker(db: Database, owner_conn: psycopg.Connection,
                                  defer: Callable[[JobQueue], Awaitable[int]]) -> None:
    """Queue a job, let a worker take it, and let that worker fall silent (its process died)."""
    queue = JobQueue(db)
    await queue.open()
    job_id = await defer(queue)
    worker_id = await queue.app.job_manager.register_worker()
    job = await queue.app.job_manager.fetch_job(queues=None, worker_id=worker_id)
    assert job is not None and job.id == job_id
    owner_conn.execute("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' WHERE id = %s",
                       [worker_id])


async def test_a_run_in_progress_when_the_web_app_stops_finishes_after_a_new_one_starts(
        db, accounts, owner_conn, openai_server) -> None:
    settings = make_settings(OPENAI_API_KEY="sk-restart-test", OPENAI_BASE_URL=openai_server.base_url)
    tenant = await accounts.tenant()
    await make_plant(db, tenant[0], tag="RS", assets=1)
    admin = await accounts.user("tenant_admin", tenant)
    openai_server.mode, openai_server.delay_s = "slow", 60.0     # the model keeps the first attempt waiting

    async with new_web(create_app(settings, db)) as web:
        await web.login(admin)
        r = await web.api("POST", "/api/optimization/runs", json={"scope": "tenant", "engine": "ai"})
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        await _until(lambda: openai_server.requests, "the run to ask the model")
        r = await web.api("GET", f"/api/optimization/runs/{run_id}")
        assert r.json()["status"] == "running"
    # the app has stopped: the attempt was cut short, the run and its job wait for the next worker
    assert owner_conn.execute("SELECT status FROM optimization_runs WHERE id = %s", [run_id]).fetchone()[0] == "queued"
    assert _job(owner_conn, "optimization_run") == ("todo", 1)

    openai_server.mode = "ok"
    async with new_web(create_app(settings, db)):
        row = await runs.wait_for_run(db, tenant[0], run_id, timeout_s=WAIT_S, interval_s=0.1)
    assert row["status"] == "succeeded", row
    assert len(openai_server.requests) == 2
    assert any(r["source"] == "ai" for r in row["recommendations"])
    assert _job(owner_conn, "optimization_run") is None          # done, and removed from the queue


async def test_a_run_whose_worker_died_is_taken_up_again_and_finishes(db, accounts, owner_conn) -> None:
    settings = make_settings()
    tenant_id, run_id = await _run(db, accounts, "analytics", settings)

    async def defer(queue: JobQueue) -> int:
        return await queue.defer_optimization_run(tenant_id, run_id)

    await _taken_by_a_dead_worker(db, owner_conn, defer)
    async with db.tenant(tenant_id) as conn:
        assert await store.mark_running(conn, tenant_id, run_id)      # as far as the dead attempt got

    async with new_web(create_app(settings, db)):
        row = await runs.wait_for_run(db, tenant_id, run_id, timeout_s=WAIT_S, interval_s=0.1)
    assert row["status"] == "succeeded", row
    assert _job(owner_conn, "optimization_run") is None


async def test_a_failed_attempt_is_retried_and_the_run_succeeds(db, accounts, owner_conn) -> None:
    settings = make_settings()
    tenant_id, run_id = await _run(db, accounts, "analytics", settings)
    # the first attempt to start the run meets a database error; the next ones do not
    owner_conn.execute("""
        CREATE SEQUENCE test_run_starts;
        GRANT USAGE ON SEQUENCE test_run_starts TO optria_app;
        CREATE FUNCTION test_fail_first_start() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.status = 'running' AND nextval('test_run_starts') = 1 THEN
                RAISE EXCEPTION 'transient failure (test)';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_fail_first_start BEFORE UPDATE ON optimization_runs
            FOR EACH ROW EXECUTE FUNCTION test_fail_first_start();""")

    app = create_app(settings, db)
    async with new_web(app):
        await app.state.job_queue.defer_optimization_run(tenant_id, run_id)
        row = await runs.wait_for_run(db, tenant_id, run_id, timeout_s=WAIT_S, interval_s=0.1)
    assert row["status"] == "succeeded", row
    assert owner_conn.execute("SELECT last_value FROM test_run_starts").fetchone()[0] == 2   # failed once, then ran


async def test_the_last_attempt_records_the_failure_on_the_run(db, accounts, owner_conn) -> None:
    settings = make_settings()
    tenant_id, run_id = await _run(db, accounts, "analytics", settings)
    owner_conn.execute("""
        CREATE FUNCTION test_fail_start() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.status = 'running' THEN RAISE EXCEPTION 'lasting failure (test)'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_fail_start BEFORE UPDATE ON optimization_runs
            FOR EACH ROW EXECUTE FUNCTION test_fail_start();""")

    with pytest.raises(psycopg.errors.RaiseException):           # retries remain: the queue tries again
        await runs.execute(db, settings, tenant_id, run_id, from_queue=True, last_attempt=False)
    assert owner_conn.execute("SELECT status FROM optimization_runs WHERE id = %s", [run_id]).fetchone()[0] == "queued"

    row = await runs.execute(db, settings, tenant_id, run_id, from_queue=True, last_attempt=True)
    assert row["status"] == "failed"
    assert row["error"] == "The run stopped on an unexpected error (RaiseException); it has been logged."


async def test_a_report_whose_worker_died_runs_again_to_its_end(db, owner_conn) -> None:
    options = poc.PocOptions(tenant_slug="no-such-demo")
    report_id = await poc.start_report(db, options, origin="web", requested_by=None, requested_by_name="owner")
    steps = poc.new_steps()
    steps[0]["status"] = "running"                                # the dead attempt's progress
    await platform_store.PocStore(db).execute(platform_store.UPDATE_POC_REPORT, {
        "id": report_id, "steps": Jsonb(steps), "tenant_id": None})

    async def defer(queue: JobQueue) -> int:
        return await queue.defer_poc_report(report_id, options, actor_name="owner")

    await _taken_by_a_dead_worker(db, owner_conn, defer)

    async def finished() -> dict | None:
        row = await platform_store.PocStore(db).one(platform_store.POC_REPORT, {"id": report_id})
        return row if row["status"] != "running" else None

    async with new_web(create_app(make_settings(), db)):
        report = await _until(finished, "the report to finish")
    by_key = {s["key"]: s for s in report["steps"]}
    assert report["status"] == "failed" and report["summary"]
    assert by_key["config"]["status"] in ("passed", "failed") and by_key["config"]["duration_ms"] is not None
    assert by_key["tenant"]["status"] == "failed" and "no-such-demo" in by_key["tenant"]["message"]
    assert all(s["status"] == "skipped" for k, s in by_key.items() if k not in ("config", "tenant"))
    assert _job(owner_conn, "poc_report") is None
