#!/usr/bin/env python3
"""End-to-end smoke test: sign in as each demo role and visit every page and main API route.

  python scripts/smoke_test_e2e.py --url http://localhost:8000     against a running server
  python scripts/smoke_test_e2e.py                                   starts `optria serve` itself

Prints one line per check and a summary; exits 1 on any failure. Later features add
their pages to CHECKS.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from optria.demo.seed import DEMO_TENANT_SLUG, DEMO_USERS, OWNER  # noqa: E402


@dataclass
class Check:
    path: str
    status: int = 200
    contains: tuple[str, ...] = ()
    json_keys: tuple[str, ...] = ()
    follow: str | None = None                 # regex whose group 1 is a link of this page to check next
    follow_contains: tuple[str, ...] = ()     # what the followed page must contain (status 200)


# Checks per role key: "owner" (platform owner), "admin" (tenant admin), "viewer", "anon".
CHECKS: dict[str, list[Check]] = {
    "anon": [
        Check("/login", contains=('dir="rtl"', "تسجيل الدخول")),
        Check("/healthz", json_keys=("status",)),
        Check("/readyz", json_keys=("status", "checks")),
        Check("/metrics", contains=("optria_http_requests_total",)),
        Check("/internal/config/status", status=401),
        Check("/api/schema/openapi.json", contains=("openapi",)),
        Check("/login?org=demo-aramco", contains=('value="demo-aramco"',)),
        Check("/sso/callback?state=forged&code=x", status=400, contains=("تسجيل الدخول",)),
        Check("/api/tenant/users", status=401),
    ],
    "owner": [
        Check("/platform", contains=("OPTRIA IQ", 'data-testid="config-checklist"', 'data-testid="storage-tier"',
                                     'data-testid="integration-health"', "demo-aramco", 'href="/platform/ingestion"')),
        Check("/platform/demo-tenants", contains=('data-testid="create-demo-tenant"', 'value="Demo ARAMCO"', "demo-aramco")),
        Check("/platform/tenants", contains=("demo-aramco", 'id="create-tenant"')),
        Check("/platform/users", contains=("demo-aramco", "optimizer")),
        Check("/platform/users?tenant=demo-aramco&role=tenant_admin", contains=("عدد المستخدمين: 1",)),
        Check("/api/platform/tenants", json_keys=("items", "total")),
        Check("/api/platform/users?tenant=demo-aramco", json_keys=("items", "total", "pages")),
        Check("/management/users", status=403),
        Check("/platform/ingestion"),
        Check("/platform/poc", contains=("إثبات المفهوم", 'data-testid="run-poc"', 'data-testid="poc-history"')),
        Check("/platform/poc/987654321", status=404),
        Check("/api/platform/poc/987654321", status=404),
        Check("/optimization", status=403),
        Check("/internal/config/status", json_keys=("has_database_url", "storage_tier", "required_secrets_ok")),
        Check("/digital-twin", status=403),
    ],
    "admin": [
        Check("/", contains=("لوحة التحكم", "الأصول حسب الحالة", 'href="/assets?status=nodata"', 'href="/alerts?status=active"',
                             'href="/work-orders?status=active"', 'data-testid="dashboard-integrations"')),
        Check("/digital-twin", contains=("التوأم الرقمي", 'data-testid="twin-card"'),
              follow=r'href="(/digital-twin/assets/\d+)"',
              follow_contains=('data-testid="twin-signals"', 'data-testid="twin-health"', "/blackbox?asset_id=")),
        Check("/digital-twin?status=bogus", contains=('data-testid="filter-notices"',)),
        Check("/digital-twin/assets/987654321", status=404),
        Check("/assets", contains=("P-101", "K-201"), follow=r'href="(/assets/\d+)" dir="ltr"',
              follow_contains=('data-testid="health"', 'data-testid="signals"', "/digital-twin/assets/",
                               "/blackbox?asset_id=", 'data-testid="raise-alert-form"')),
        Check("/assets?status=bogus", contains=('data-testid="filter-notices"',)),
        Check("/assets/sites", contains=("RasTanura", "Abqaiq")),
        Check("/assets/new", contains=('data-testid="asset-form"',)),
        Check("/alerts", contains=("التنبيهات",)),
        Check("/alerts?status=active"),
        Check("/work-orders", contains=("أوامر العمل",)),
        Check("/api/assets", json_keys=("items", "total", "page", "page_size")),
        Check("/api/sites", json_keys=("items",)),
        Check("/assets/987654321", status=404),
        Check("/blackbox", contains=("الصندوق الأسود الصناعي", 'data-testid="blackbox-counters"', 'data-testid="alarm-health"',
                                     'data-testid="incident-filters"')),
        Check("/blackbox?status=active&severity=critical&hours=168", contains=('data-testid="alarm-health"',)),
        Check("/blackbox/events", contains=("مستكشف الأحداث", 'data-testid="event-filters"')),
        Check("/blackbox/events?no_asset=1&category=integration"),
        Check("/blackbox/incidents/987654321", status=404),
        Check("/blackbox?asset_id=987654321", status=404),
        Check("/api/blackbox/incidents", json_keys=("items", "total", "page", "page_size")),
        Check("/api/blackbox/events", json_keys=("items", "total", "page", "page_size")),
        Check("/api/blackbox/alarm-health", json_keys=("total", "average_per_10_min", "chattering", "standing", "top")),
        Check("/integrations", contains=("مصادر البيانات", 'data-testid="integration-card"', "Ras Tanura OPC-UA",
                                         "Abqaiq PI Web API", 'data-testid="test-button"', 'data-testid="map-button"'),
              follow=r'href="(/integrations/\d+)" data-testid="integration-name"',
              follow_contains=('data-testid="action-log"', 'data-testid="mappings-table"')),
        Check("/integrations/new", contains=('data-testid="kind-opcua"', 'data-testid="kind-pi"')),
        Check("/integrations/new?kind=opcua", contains=('name="endpoint_url"', 'name="security_policy"')),
        Check("/integrations/987654321", status=404),
        Check("/api/integrations/", json_keys=("items", "total", "page", "page_size")),
        Check("/optimization", contains=("التحسين", 'data-testid="run-form"', 'data-testid="run-button"',
                                         'data-testid="run-history"', "P-101")),
        Check("/api/optimization/runs", json_keys=("items", "total", "page", "page_size")),
        Check("/api/optimization/opportunities", json_keys=("items",)),
        Check("/optimization/runs/987654321", status=404),
        Check("/platform/poc", status=403),
        Check("/management/users", contains=("optimizer", "reliability", 'href="/management/users/new"')),
        Check("/management/users?role=viewer", contains=("عدد المستخدمين: 1",)),
        Check("/management/users/new", contains=('name="username"', "عشرة أحرف")),
        Check("/management/audit", contains=("سجل التدقيق",)),
        Check("/management/sso", contains=("/sso/callback",)),
        Check("/management/sso/new", contains=('name="discovery_url"',)),
        Check("/api/tenant/users", json_keys=("items", "total", "pages")),
        Check("/api/tenant/audit", json_keys=("items", "total")),
        Check("/platform/users", status=403),
        Check("/account/password"),
        Check("/internal/config/status", status=403),
        Check("/no/such/page", status=404, contains=("الصفحة غير موجودة",)),
    ],
    "viewer": [
        Check("/", contains=("لوحة التحكم",)),
        Check("/digital-twin", contains=('data-testid="twin-card"',)),
        Check("/digital-twin/stream", status=406),
        Check("/blackbox", contains=('data-testid="alarm-health"',)),
        Check("/blackbox/events", contains=('data-testid="event-filters"',)),
        Check("/optimization", contains=('data-testid="run-disabled-reason"', 'data-testid="run-history"')),
        Check("/api/blackbox/events", json_keys=("items", "total")),
        Check("/assets", contains=("P-101",), follow=r'href="(/assets/\d+)" dir="ltr"',
              follow_contains=('data-testid="health"',)),
        Check("/alerts"),
        Check("/work-orders"),
        Check("/assets/new", status=403),
        Check("/management/users", status=403),
        Check("/api/tenant/users", status=403),
        Check("/integrations", contains=("Ras Tanura OPC-UA",)),
        Check("/integrations/new", status=403),
        Check("/api/integrations/", json_keys=("items", "total")),
    ],
}


@dataclass
class Report:
    passed: int = 0
    failures: list[str] = field(default_factory=list)

    def record(self, ok: bool, label: str, detail: str = "") -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {label}{(' — ' + detail) if detail and not ok else ''}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failures.append(f"{label}: {detail}")


def login(client: httpx.Client, organization: str, username: str, password: str) -> bool:
    page = client.get("/login")
    token = client.cookies.get("optria_csrf") or ""
    m = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    token = m.group(1) if m else token
    r = client.post("/login", data={"_csrf_token": token, "organization": organization, "username": username,
                                    "password": password})
    return r.status_code in (302, 303) and not r.headers.get("location", "").startswith("/login")


def follow_link(client: httpx.Client, check: Check, page: str, report: Report) -> None:
    """Check the first link of ``page`` matching ``check.follow`` (e.g. an asset found in the list)."""
    m = re.search(check.follow or "", page)
    if not m:
        report.record(False, f"link {check.follow!r} in {check.path}", "no such link on the page")
        return
    target = m.group(1)
    label = f"GET {target} (from {check.path}) → 200"
    try:
        r = client.get(target)
    except httpx.HTTPError as exc:
        report.record(False, label, f"request failed: {exc}")
        return
    problems = [] if r.status_code == 200 else [f"status {r.status_code}"]
    problems += [f"missing {text!r}" for text in check.follow_contains if text not in r.text]
    report.record(not problems, label, ", ".join(problems))


def run_checks(base_url: str, credentials: dict[str, tuple[str, str, str]]) -> Report:
    report = Report()
    for role, checks in CHECKS.items():
        print(f"[{role}]", flush=True)
        with httpx.Client(base_url=base_url, follow_redirects=False, timeout=30) as client:
            if role != "anon":
                org, user, pw = credentials[role]
                ok = login(client, org, user, pw)
                report.record(ok, f"sign in as {role} ({user})", "login did not redirect to the app")
                if not ok:
                    continue
            for check in checks:
                label = f"GET {check.path} → {check.status}"
                try:
                    r = client.get(check.path)
                except httpx.HTTPError as exc:
                    report.record(False, label, f"request failed: {exc}")
                    continue
                problems = []
                if r.status_code != check.status:
                    problems.append(f"status {r.status_code}")
                for text in check.contains:
                    if text not in r.text:
                        problems.append(f"missing {text!r}")
                if check.json_keys:
                    try:
                        body = r.json()
                        problems += [f"no key {k!r}" for k in check.json_keys if k not in body]
                    except ValueError:
                        problems.append("not JSON")
                report.record(not problems, label, ", ".join(problems))
                if check.follow and not problems:
                    follow_link(client, check, r.text, report)
            if role != "anon":
                token = client.cookies.get("optria_csrf") or ""
                r = client.post("/logout", data={"_csrf_token": token})
                after = client.get("/")
                report.record(r.status_code in (302, 303) and after.status_code in (302, 303),
                              f"sign out as {role}", f"logout {r.status_code}, then / gave {after.status_code}")
    return report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "optria.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("server did not become ready within 60 s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="base URL of a running server (default: start one)")
    p.add_argument("--seed", action="store_true", help="seed the demo tenant first (when starting a server)")
    args = p.parse_args(argv)
    admin = next(u for u in DEMO_USERS if u.role == "tenant_admin")
    viewer = next(u for u in DEMO_USERS if u.role == "viewer")
    creds = {
        "owner": ("", os.environ.get("SMOKE_OWNER_USER", OWNER.username), os.environ.get("SMOKE_OWNER_PASSWORD", OWNER.password)),
        "admin": (DEMO_TENANT_SLUG, admin.username, admin.password),
        "viewer": (DEMO_TENANT_SLUG, viewer.username, viewer.password),
    }
    proc = None
    url = args.url
    if url is None:
        if args.seed:
            subprocess.run([sys.executable, "-m", "optria.cli", "seed", "--demo-tenant",
                            "--owner-password", creds["owner"][2]], check=True)
        port = _free_port()
        proc = start_server(port)
        url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        print(f"smoke test against {url}")
        report = run_checks(url.rstrip("/"), creds)
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
