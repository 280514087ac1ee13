"""Optimization: runs from the page, the API and the Data Sources card; AI answers from a local
OpenAI-compatible server; every fallback; the Black Box events; tenant isolation; the disabled engine."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from litestar.testing import AsyncTestClient

from optria.optimization import jobs, runs
from optria.shell.app import create_app
from tests.fix_web import Web, make_settings, new_web
from tests.web.assets_setup import make_plant
from tests.web.optimization_setup import add_integration, monitor

RUN_URL = re.compile(r"/optimization/runs/(\d+)$")


async def _tenant_with_plant(accounts, db, owner_conn, tag: str, *, vibration_now: float = 12.0):
    tenant = await accounts.tenant()
    plant = await make_plant(db, tenant[0], tag=tag, assets=2)
    first, second = list(plant.assets.values())
    mon = monitor(owner_conn, tenant[0], first, vibration_now=vibration_now, ramp_minutes=20)
    monitor(owner_conn, tenant[0], second, integration_id=mon.integration_id)
    admin = await accounts.user("tenant_admin", tenant)
    return tenant, plant, mon, admin


async def _finished(web: Web, run_id: int, timeout: float = 30.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await web.api("GET", f"/api/optimization/runs/{run_id}")
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] not in ("queued", "running"):
            return body
        assert asyncio.get_running_loop().time() < deadline, f"run {run_id} still {body['status']}"
        await asyncio.sleep(0.2)


async def _events(db, owner_conn, tenant_id, run_id) -> list[tuple]:
    """The run's Black Box events, after the Black Box's optimization collector has read the runs."""
    from optria.blackbox.collectors import OptimizationCollector

    await OptimizationCollector(db).run_once()
    return owner_conn.execute(
        "SELECT source_type, source_id, asset_id, severity FROM industrial_events WHERE tenant_id = %s "
        "AND source_system = 'optimization' AND payload->>'run_id' = %s ORDER BY id", [tenant_id, str(run_id)]).fetchall()


async def test_page_starts_an_analytics_run_and_shows_its_findings(web, accounts, db, owner_conn) -> None:
    tenant, plant, mon, admin = await _tenant_with_plant(accounts, db, owner_conn, "OA")
    await web.login(admin)
    page = await web.get("/optimization")
    assert page.status_code == 200
    assert "لا توجد فرص بعد" in page.text and 'data-testid="run-button"' in page.text
    assert 'data-testid="run-disabled-reason"' not in page.text

    pump = plant.assets["OA-P-1"]
    r = await web.post_form("/optimization/runs", {"target": f"asset:{pump}", "engine": "analytics"})
    assert r.status_code == 303, r.text
    run_id = int(RUN_URL.search(r.headers["location"]).group(1))
    body = await _finished(web, run_id)
    assert body["status"] == "succeeded" and body["engine"] == "analytics" and body["asset_count"] == 1
    kinds = {(x["kind"], x["severity"]) for x in body["recommendations"]}
    assert ("limit", "critical") in kinds and ("anomaly", "high") in kinds
    assert all(x["asset_id"] == pump for x in body["recommendations"])

    detail = await web.get(f"/optimization/runs/{run_id}")
    assert detail.status_code == 200
    assert "الاهتزاز" in detail.text                      # the finding, translated
    assert f"vibration-{pump}" in detail.text              # the data it was based on
    assert 'data-testid="run-live"' not in detail.text

    page = await web.get("/optimization")
    assert 'data-asset="OA-P-1"' in page.text and 'data-worst="critical"' in page.text
    assert f'href="/optimization/runs/{run_id}"' in page.text

    events = await _events(db, owner_conn, tenant[0], run_id)
    assert ("optimization_started", f"optimization_run:{run_id}:started", pump, "info") in events
    assert ("optimization_finished", f"optimization_run:{run_id}:finished", pump, "info") in events
    assert ("optimization_recommendations", f"optimization_run:{run_id}:recommendations", pump, "info") in events
    assert len(events) == 3
    assert await _events(db, owner_conn, tenant[0], run_id) == events      # read again: nothing doubles


async def test_ai_run_sends_one_tenants_data_and_feeds_the_twin(db, accounts, owner_conn, openai_server) -> None:
    settings = make_settings(OPENAI_API_KEY="sk-test-do-not-leak", OPENAI_BASE_URL=openai_server.base_url,
                             OPENAI_MODEL="test-model-1")
    app = create_app(settings, db)
    tenant_a, plant_a, mon_a, admin_a = await _tenant_with_plant(accounts, db, owner_conn, "AIA")
    tenant_b, plant_b, _, _ = await _tenant_with_plant(accounts, db, owner_conn, "AIB")
    owner_conn.execute("UPDATE integrations SET config = %s WHERE id = %s",
                       [json.dumps({"endpoint_url": "opc.tcp://secret-plant-host:4840", "username": "plantuser"}),
                        mon_a.integration_id])
    async with new_web(app) as web:
        await web.login(admin_a)
        r = await web.api("POST", "/api/optimization/runs", json={"scope": "tenant", "engine": "ai"})
        assert r.status_code == 202, r.text
        body = await _finished(web, r.json()["id"])
    assert body["status"] == "succeeded", body
    assert body["model"] == "test-model-1"

    assert len(openai_server.requests) == 1
    sent = openai_server.requests[0]
    assert sent["headers"]["Authorization"] == "Bearer sk-test-do-not-leak"
    request_text = json.dumps(sent["body"], ensure_ascii=False)
    assert sent["body"]["model"] == "test-model-1"
    assert sent["body"]["response_format"]["type"] == "json_schema"
    context = openai_server.context_of()
    assert {a["code"] for a in context["assets"]} == {"AIA-P-1", "AIA-P-2"}
    for leak in ("AIB", str(tenant_b[0]), tenant_b[1], "sk-test-do-not-leak", "secret-plant-host", "plantuser",
                 "test-session-secret", str(tenant_a[0])):
        assert leak not in request_text, leak
    assert any(f["severity"] == "critical" for f in context["assets"][0]["findings"])

    ai_recs = [x for x in body["recommendations"] if x["source"] == "ai"]
    assert {x["asset_code"] for x in ai_recs} == {"AIA-P-1", "AIA-P-2"}
    assert all(re.search(r"[\u0600-\u06FF]", x["title"]) for x in ai_recs)
    assert any(x["source"] == "analytics" for x in body["recommendations"])   # findings kept beside them
    snapshots = owner_conn.execute(
        "SELECT asset_id, failure_probability, status FROM asset_metrics_snapshot WHERE tenant_id = %s AND source = 'ai'",
        [tenant_a[0]]).fetchall()
    assert (plant_a.assets["AIA-P-1"], 0.9, "critical") in snapshots
    assert owner_conn.execute("SELECT count(*) FROM asset_metrics_snapshot WHERE tenant_id = %s AND source = 'ai'",
                              [tenant_b[0]]).fetchone()[0] == 0
    # the twin's scoring takes the AI score into account: it may raise a risk, never lower it
    from optria.twin.jobs import ScoringJob

    await ScoringJob(db, notify=False).run_once()
    health = owner_conn.execute("SELECT failure_probability, source FROM asset_health_latest WHERE tenant_id = %s "
                                "AND asset_id = %s", [tenant_a[0], plant_a.assets["AIA-P-1"]]).fetchone()
    # the rules see P-1 past its critical limit (probability 1); the AI's lower health makes the source "ai"
    assert health == (1.0, "ai")


@pytest.mark.parametrize("mode, reason", [
    ("no_key", "no_key"), ("slow", "timeout"), ("invalid_json", "invalid_json"), ("wrong_schema", "invalid_answer"),
    ("error", "refused"),
])
async def test_ai_fallbacks_are_labelled_with_the_reason(mode, reason, db, accounts, owner_conn, openai_server) -> None:
    tenant, plant, _, admin = await _tenant_with_plant(accounts, db, owner_conn, "FB")
    openai_server.mode, openai_server.delay_s = mode, 5.0
    settings = make_settings(OPENAI_BASE_URL=openai_server.base_url,
                             **({} if mode == "no_key" else {"OPENAI_API_KEY": "sk-fallback-test"}))
    req = runs.RunRequest(tenant_id=tenant[0], scope="asset", scope_id=plant.assets["FB-P-1"], engine="ai",
                          requested_by=admin.user_id, requested_by_name=admin.username)
    run_id = await runs.create_run(db, settings, req)
    started = asyncio.get_running_loop().time()
    row = await runs.execute(db, settings, tenant[0], run_id, ai_timeout_s=1.0)
    assert asyncio.get_running_loop().time() - started < 4.5      # the timeout bounds the call
    assert row["status"] == "fallback", row
    assert row["inputs"]["fallback"]["code"] == reason
    assert row["fallback_reason"]
    assert row["recommendations"] and all(r["source"] == "analytics" for r in row["recommendations"])
    assert len(openai_server.requests) == (0 if mode == "no_key" else 1)
    app = create_app(settings, db)
    async with new_web(app) as web:
        await web.login(admin)
        page = await web.get(f"/optimization/runs/{run_id}")
    assert 'data-testid="fallback-reason"' in page.text and "التحليلات" in page.text
    events = await _events(db, owner_conn, tenant[0], run_id)
    assert [e[0] for e in events].count("optimization_finished") == 1


async def test_recommendations_for_assets_outside_the_context_are_dropped(db, accounts, owner_conn, openai_server) -> None:
    tenant, plant, _, admin = await _tenant_with_plant(accounts, db, owner_conn, "UK")
    openai_server.mode = "unknown_asset"
    settings = make_settings(OPENAI_API_KEY="sk-x", OPENAI_BASE_URL=openai_server.base_url)
    run_id = await runs.create_run(db, settings, runs.RunRequest(tenant[0], "tenant", None, "ai"))
    row = await runs.execute(db, settings, tenant[0], run_id)
    assert row["status"] == "succeeded"
    assert "NOT-IN-CONTEXT" not in json.dumps(row["recommendations"])


async def test_ai_run_from_a_data_source_card_covers_its_mapped_assets(web, accounts, db, owner_conn) -> None:
    tenant, plant, mon, admin = await _tenant_with_plant(accounts, db, owner_conn, "DS", vibration_now=2.2)
    other_integration = add_integration(owner_conn, tenant[0])
    await web.login(admin)
    r = await web.post_form(f"/integrations/{mon.integration_id}/ai-run")
    assert r.status_code == 303, r.text
    run_id = int(RUN_URL.search(r.headers["location"]).group(1))
    body = await _finished(web, run_id)
    assert body["scope"] == "integration" and body["scope_id"] == mon.integration_id
    assert body["status"] == "fallback" and body["asset_count"] == 2      # no key in the test settings
    # an integration without mapped assets has nothing to run on
    r = await web.post_form(f"/integrations/{other_integration}/ai-run")
    assert r.status_code == 303 and r.headers["location"] == "/integrations"


async def test_viewer_sees_results_but_cannot_run(web, accounts, db, owner_conn) -> None:
    tenant, plant, _, _ = await _tenant_with_plant(accounts, db, owner_conn, "VW")
    viewer = await accounts.user("viewer", tenant)
    await web.login(viewer)
    page = await web.get("/optimization")
    assert page.status_code == 200 and 'data-testid="run-disabled-reason"' in page.text
    assert re.search(r'data-testid="run-button"[^>]*disabled', page.text)
    r = await web.post_form("/optimization/runs", {"target": "tenant", "engine": "analytics"})
    assert r.status_code == 403
    r = await web.api("POST", "/api/optimization/runs", json={"scope": "tenant"})
    assert r.status_code == 403


async def test_engine_switched_off_disables_buttons_with_the_reason(db, accounts, owner_conn) -> None:
    app = create_app(make_settings(OPTIMIZATION_ENGINE_ENABLED="false"), db)
    tenant, plant, mon, admin = await _tenant_with_plant(accounts, db, owner_conn, "OFF")
    async with new_web(app) as web:
        await web.login(admin)
        page = await web.get("/optimization")
        assert 'data-testid="engine-disabled"' in page.text and "OPTIMIZATION_ENGINE_ENABLED" in page.text
        assert re.search(r'data-testid="run-button"[^>]*disabled', page.text)
        r = await web.post_form("/optimization/runs", {"target": "tenant", "engine": "ai"})
        assert r.status_code == 303 and r.headers["location"] == "/optimization"
        assert "OPTIMIZATION_ENGINE_ENABLED" in (await web.get("/optimization")).text
        r = await web.api("POST", "/api/optimization/runs", json={"scope": "tenant", "engine": "ai"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "engine_disabled"
        r = await web.post_form(f"/integrations/{mon.integration_id}/ai-run")
        assert r.status_code == 303
        # the Data Sources card's AI Run button says so too, instead of offering a run that cannot start
        cards = (await web.get("/integrations")).text
        assert re.search(r'<button[^>]*disabled[^>]*data-testid="ai-run-button" data-reason="engine_off"', cards)
        assert 'action="/integrations/%s/ai-run"' % mon.integration_id not in cards
    assert owner_conn.execute("SELECT count(*) FROM optimization_runs WHERE tenant_id = %s", [tenant[0]]).fetchone()[0] == 0


async def test_tenant_isolation_on_every_optimization_route(web, accounts, db, owner_conn) -> None:
    tenant_a, plant_a, mon_a, admin_a = await _tenant_with_plant(accounts, db, owner_conn, "ISA")
    tenant_b, plant_b, mon_b, admin_b = await _tenant_with_plant(accounts, db, owner_conn, "ISB")
    b_run = await runs.create_run(db, make_settings(), runs.RunRequest(tenant_b[0], "tenant", None, "analytics"))
    await runs.execute(db, make_settings(), tenant_b[0], b_run)
    await web.login(admin_a)
    b_asset, b_unit = plant_b.assets["ISB-P-1"], plant_b.unit_id
    assert (await web.get(f"/optimization/runs/{b_run}")).status_code == 404
    assert (await web.api("GET", f"/api/optimization/runs/{b_run}")).status_code == 404
    assert (await web.post_form("/optimization/runs", {"target": f"asset:{b_asset}"})).status_code == 404
    assert (await web.post_form("/optimization/runs", {"target": f"unit:{b_unit}"})).status_code == 404
    assert (await web.post_form(f"/integrations/{mon_b.integration_id}/ai-run")).status_code == 404
    r = await web.api("POST", "/api/optimization/runs", json={"scope": "asset", "scope_id": b_asset, "engine": "ai"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await web.api("POST", "/api/optimization/runs", json={"scope": "integration", "scope_id": mon_b.integration_id})
    assert r.status_code == 404
    page = await web.get(f"/optimization?unit_id={b_unit}")
    assert page.status_code == 200 and "ISB" not in page.text
    listing = await web.api("GET", "/api/optimization/runs")
    assert listing.json()["total"] == 0
    opps = await web.api("GET", f"/api/optimization/opportunities?asset_id={b_asset}")
    assert opps.status_code == 200 and opps.json()["items"] == []
    assert "ISB" not in (await web.get("/optimization")).text
    assert owner_conn.execute("SELECT count(*) FROM optimization_runs WHERE tenant_id = %s", [tenant_a[0]]).fetchone()[0] == 0


async def test_bad_input_is_a_clear_4xx(web, accounts, db, owner_conn) -> None:
    tenant, plant, _, admin = await _tenant_with_plant(accounts, db, owner_conn, "BAD")
    await web.login(admin)
    assert (await web.post_form("/optimization/runs", {"target": "asset:abc"})).status_code == 422
    assert (await web.post_form("/optimization/runs", {"target": "everything"})).status_code == 422
    r = await web.api("GET", "/api/optimization/runs?status=done")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_status"
    r = await web.api("POST", "/api/optimization/runs", json={"scope": "asset", "engine": "ai"})
    assert r.status_code == 422
    r = await web.api("POST", "/api/optimization/runs", json={"scope": "tenant", "engine": "quantum"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_engine"
    r = await web.api("POST", "/api/optimization/runs", json={"scope": "tenant", "surprise": 1})
    assert r.status_code in (400, 422)
    assert (await web.get("/optimization?page=-3&status=nonsense")).status_code == 200


async def test_a_run_whose_process_died_is_shown_failed_and_reaped_once(web, accounts, db, owner_conn) -> None:
    tenant, plant, _, admin = await _tenant_with_plant(accounts, db, owner_conn, "ST")
    run_id = owner_conn.execute(
        "INSERT INTO optimization_runs (tenant_id, scope, engine, status, requested_by_name, timeout_s, created_at, "
        "started_at) VALUES (%s, 'tenant', 'ai', 'running', 'ghost', 60, now() - interval '10 minutes', "
        "now() - interval '10 minutes') RETURNING id", [tenant[0]]).fetchone()[0]
    await web.login(admin)
    body = (await web.api("GET", f"/api/optimization/runs/{run_id}")).json()
    assert body["status"] == "failed"
    page = await web.get(f"/optimization/runs/{run_id}")
    assert 'data-run-status="failed"' in page.text and 'data-testid="run-live"' not in page.text
    # a new run of the same scope is not blocked by the dead one
    r = await web.api("POST", "/api/optimization/runs", json={"scope": "tenant", "engine": "analytics"})
    assert r.status_code == 202
    await _finished(web, r.json()["id"])
    reaper = jobs.ReapOverdueRuns(db)
    assert await reaper.run_once() == 1
    assert await reaper.run_once() == 0
    stored = owner_conn.execute("SELECT status, finished_at IS NOT NULL, error FROM optimization_runs WHERE id = %s",
                                [run_id]).fetchone()
    assert stored[0] == "failed" and stored[1] and "did not finish" in stored[2]
    assert [e[0] for e in await _events(db, owner_conn, tenant[0], run_id)] == ["optimization_started",
                                                                                 "optimization_failed"]


async def test_a_second_run_of_the_same_scope_waits_for_the_first(db, accounts, owner_conn) -> None:
    tenant, plant, _, admin = await _tenant_with_plant(accounts, db, owner_conn, "DUP")
    settings = make_settings()
    await runs.create_run(db, settings, runs.RunRequest(tenant[0], "tenant", None, "analytics"))
    with pytest.raises(runs.RunRefused) as err:
        await runs.create_run(db, settings, runs.RunRequest(tenant[0], "tenant", None, "analytics"))
    assert err.value.code == "run_in_progress"


async def test_later_runs_supersede_earlier_opportunities(web, accounts, db, owner_conn) -> None:
    tenant, plant, mon, admin = await _tenant_with_plant(accounts, db, owner_conn, "SUP")
    settings = make_settings()
    first = await runs.create_run(db, settings, runs.RunRequest(tenant[0], "tenant", None, "analytics"))
    await runs.execute(db, settings, tenant[0], first)
    owner_conn.execute("UPDATE signal_latest SET value = 2.2 WHERE signal_id = %s", [mon.signals["vibration"]])
    second = await runs.create_run(db, settings, runs.RunRequest(tenant[0], "tenant", None, "analytics"))
    await runs.execute(db, settings, tenant[0], second)
    await web.login(admin)
    items = (await web.api("GET", "/api/optimization/opportunities")).json()["items"]
    assert items and {i["run_id"] for i in items} == {second}
    assert not any(i["kind"] == "limit" for i in items)


async def test_run_history_paginates_and_filters(web, accounts, db, owner_conn) -> None:
    tenant, plant, _, admin = await _tenant_with_plant(accounts, db, owner_conn, "PG")
    for i in range(30):
        owner_conn.execute(
            "INSERT INTO optimization_runs (tenant_id, scope, engine, status, requested_by_name, finished_at, "
            "fallback_reason, created_at) VALUES (%s, 'tenant', 'ai', %s, 'pager', now(), %s, now() - make_interval(mins => %s))",
            [tenant[0], "fallback" if i % 3 == 0 else "succeeded", "no key" if i % 3 == 0 else None, i])
    await web.login(admin)
    first = await web.get("/optimization")
    assert first.text.count("data-run-id=") == 25 and 'href="/optimization?page=2#history"' in first.text
    second = await web.get("/optimization?page=2")
    assert second.text.count("data-run-id=") == 5
    only_fallback = await web.get("/optimization?status=fallback")
    assert only_fallback.text.count("data-run-id=") == 10
    api = (await web.api("GET", "/api/optimization/runs?status=fallback&engine=ai&page=1")).json()
    assert api["total"] == 10 and all(r["status"] == "fallback" for r in api["items"])
    assert (await web.get("/optimization?q=nobody")).text.count("data-run-id=") == 0
