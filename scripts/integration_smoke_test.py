#!/usr/bin/env python3
"""Integration smoke test: configuration status, the demo tenant's integrations, a live connection
test of one OPC-UA and one PI Web API integration, the owner console, and an AI Run from a Data Sources card.

  python scripts/integration_smoke_test.py --url http://localhost:8000    against a running server
  python scripts/integration_smoke_test.py [--seed]                       starts `optria serve` itself

Signs in as the platform owner for ``/internal/config/status``, then as the demo tenant's admin
for ``/api/integrations/`` and ``POST /api/integrations/{id}/test`` (the demo integrations when
present, else the first of each kind). Prints one line per check and a summary; exits 1 on any
failure. Credentials come from the demo seed, or SMOKE_OWNER_USER / SMOKE_OWNER_PASSWORD.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

import httpx

from smoke_test_e2e import DEMO_TENANT_SLUG, DEMO_USERS, OWNER, Report, _free_port, login, start_server

KINDS = (("opcua", "OPC-UA"), ("pi", "PI Web API"))


def _json(r: httpx.Response) -> dict[str, Any] | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def check_config_status(client: httpx.Client, report: Report) -> None:
    r = client.get("/internal/config/status")
    body = _json(r) or {}
    keys = ("has_database_url", "storage_tier", "required_secrets_ok")
    problems = ([] if r.status_code == 200 else [f"status {r.status_code}"]) + [f"no key {k!r}" for k in keys
                                                                               if k not in body]
    report.record(not problems, "GET /internal/config/status → 200 with flags", ", ".join(problems))
    if not problems:
        flags = {k: body[k] for k in ("has_opcua_endpoint", "has_pi_base_url", "storage_tier") if k in body}
        print(f"       {flags}")


def pick(items: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    """The demo integration of ``kind`` when there is one, else the first of that kind."""
    of_kind = [i for i in items if i.get("kind") == kind]
    return next((i for i in of_kind if i.get("is_demo")), of_kind[0] if of_kind else None)


def check_integrations(client: httpx.Client, report: Report) -> list[str]:
    r = client.get("/api/integrations/?page_size=100", headers={"accept": "application/json"})
    body = _json(r) or {}
    items = body.get("items") if isinstance(body.get("items"), list) else None
    report.record(r.status_code == 200 and items is not None, "GET /api/integrations/ → 200 with items",
                  f"status {r.status_code}")
    if items is None:
        return []
    print(f"       {len(items)} integrations: " + ", ".join(f"{i['name']} ({i['kind']}, endpoint from "
                                                            f"{i['endpoint']['source']})" for i in items))
    summary = []
    token = client.cookies.get("optria_csrf") or ""
    for kind, label in KINDS:
        chosen = pick(items, kind)
        if chosen is None:
            report.record(False, f"{label} integration present", "none in this tenant")
            continue
        started = time.monotonic()
        r = client.post(f"/api/integrations/{chosen['id']}/test",
                        headers={"x-csrf-token": token, "accept": "application/json"})
        elapsed = time.monotonic() - started
        result = _json(r) or {}
        ok = r.status_code == 200 and result.get("success") is True
        detail = f"status {r.status_code}" if r.status_code != 200 else \
            f"{result.get('details', {}).get('reason', 'failed')}: {result.get('message', '')}"
        report.record(ok, f"POST /api/integrations/{chosen['id']}/test ({label}: {chosen['name']}) → success", detail)
        summary.append(f"{label:<11} {chosen['name']:<28} {'OK  ' if ok else 'FAIL'} {elapsed:5.1f}s  "
                       f"{result.get('message', '')[:110]}")
    return summary


def check_console(client: httpx.Client, report: Report) -> None:
    """The platform owner's console pages: the configuration checklist and the proof-of-concept page."""
    for path, marker in (("/platform", 'data-testid="config-checklist"'), ("/platform/demo-tenants",
                                                                          'data-testid="create-demo-tenant"'),
                         ("/platform/poc", 'data-testid="poc-history"')):
        r = client.get(path)
        problems = ([] if r.status_code == 200 else [f"status {r.status_code}"]) + \
            ([] if marker in r.text else [f"missing {marker}"])
        report.record(not problems, f"GET {path} → 200", ", ".join(problems))


def check_ai_run(client: httpx.Client, report: Report, timeout_s: float = 90.0) -> None:
    """The AI Run button of the demo OPC-UA card: a run over its mapped assets that finishes (AI or fallback)."""
    items = (_json(client.get("/api/integrations/?page_size=100", headers={"accept": "application/json"})) or {}) \
        .get("items") or []
    chosen = pick(items, "opcua") or pick(items, "pi")
    if chosen is None:
        report.record(False, "AI Run on a Data Sources card", "no integration in this tenant")
        return
    token = client.cookies.get("optria_csrf") or ""
    r = client.post(f"/integrations/{chosen['id']}/ai-run", data={"_csrf_token": token})
    location = r.headers.get("location", "")
    ok = r.status_code in (302, 303) and location.startswith("/optimization/runs/")
    report.record(ok, f"POST /integrations/{chosen['id']}/ai-run → the run's page", f"status {r.status_code} {location}")
    if not ok:
        return
    deadline, body = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        body = _json(client.get("/api" + location, headers={"accept": "application/json"})) or {}
        if body.get("status") not in ("queued", "running"):
            break
        time.sleep(1)
    finished = body.get("status") in ("succeeded", "fallback")
    report.record(finished, f"AI run {location} finished with recommendations",
                  f"status {body.get('status')}: {body.get('error') or ''}")
    if finished:
        print(f"       {body['status']}, {body.get('asset_count')} assets, {body.get('recommendation_count')} "
              f"recommendations{(' — ' + body['fallback_reason']) if body.get('fallback_reason') else ''}")
    page = client.get(location)
    report.record(page.status_code == 200 and 'data-testid="recommendations"' in page.text, f"GET {location} → 200",
                  f"status {page.status_code}")


def run(base_url: str, owner: tuple[str, str], admin: tuple[str, str, str]) -> Report:
    report = Report()
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=60) as client:
        print("[platform owner]", flush=True)
        ok = login(client, "", *owner)
        report.record(ok, f"sign in as platform owner ({owner[0]})", "login did not redirect to the app")
        if ok:
            check_config_status(client, report)
            check_console(client, report)
    summary: list[str] = []
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=60) as client:
        print(f"[tenant admin of {admin[0]}]", flush=True)
        ok = login(client, *admin)
        report.record(ok, f"sign in as {admin[1]} of {admin[0]}", "login did not redirect to the app")
        if ok:
            summary = check_integrations(client, report)
            check_ai_run(client, report)
    if summary:
        print("\nconnection tests:")
        for line in summary:
            print(f"  {line}")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="base URL of a running server (default: start one)")
    p.add_argument("--seed", action="store_true", help="seed the demo tenant first (when starting a server)")
    args = p.parse_args(argv)
    admin_login = next(u for u in DEMO_USERS if u.role == "tenant_admin")
    owner = (os.environ.get("SMOKE_OWNER_USER", OWNER.username), os.environ.get("SMOKE_OWNER_PASSWORD", OWNER.password))
    admin = (DEMO_TENANT_SLUG, admin_login.username, admin_login.password)
    proc = None
    url = args.url
    if url is None:
        if args.seed:
            subprocess.run([sys.executable, "-m", "optria.cli", "seed", "--demo-tenant", "--owner-password", owner[1]],
                           check=True)
        port = _free_port()
        proc = start_server(port)
        url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        print(f"integration smoke test against {url}")
        report = run(url.rstrip("/"), owner, admin)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"\n{report.passed} passed, {len(report.failures)} failed in {time.monotonic() - started:.1f}s")
    for f in report.failures:
        print(f"  - {f}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
