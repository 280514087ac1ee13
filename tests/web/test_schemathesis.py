"""The JSON API against its own OpenAPI document: a bounded, seeded schemathesis run.

A real ``optria serve`` (granian) on a fresh database with a few rows of everything (small ids,
so generated ids often name real rows), signed in as a tenant admin (session cookie and CSRF
header, as a browser's script sends them). Every operation under /api/ gets, in three passes:

1. schemathesis' coverage phase: each parameter's boundaries and wrong types;
2. hostile values that phase leaves out: a NUL byte in every text parameter, integers past
   64 bits (and 0) in every integer parameter, path and query;
3. generated requests (hypothesis), valid and invalid.

Every answer must be no server error, a status the document declares, the declared content
type, and a body that matches the declared schema (the ``{"error": {"code", "message"}}``
shape for every error). Bounded and repeatable: the coverage and hostile passes are fixed
lists, hypothesis is derandomized with a fixed number of examples per operation and mode,
and schemathesis gets a fixed seed. Without the NUL refusal and the database-error mapping
of optria.web this run finds server errors.

Operations that open a network connection to a data source (test, browse, folder/name
mapping) are left out of the generated run, because generated integrations may name any
address and tests only ever talk to this machine; tests/web/test_security_inputs.py covers
them against an unreachable loopback source.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import requests

from tests.fix_browser import _stop, _wait, free_port
from tests.fix_web import Accounts

SEED = 20261206
POSITIVE_EXAMPLES = 20
NEGATIVE_EXAMPLES = 10
SECRET = "schemathesis-secret-" + "s" * 28
NETWORK_OPERATIONS = {
    ("POST", "/api/integrations/{integration_id}/test"),
    ("GET", "/api/integrations/{integration_id}/browse"),
    ("POST", "/api/integrations/{integration_id}/mappings/bulk"),
}
UNREACHABLE = "127.0.0.1:9"
HOSTILE = {"string": ("a\x00b",), "integer": (2**70, -(2**70), 0)}  # discard port on loopback: nothing listens, connections are refused at once


@pytest.fixture
def served(db_dsn: str, tmp_path: Path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": SECRET, "APP_ENV": "test",
           "OPTRIA_DATA_DIR": str(tmp_path), "OPCUA_ENDPOINT_URL": f"opc.tcp://{UNREACHABLE}",
           "PI_BASE_URL": f"http://{UNREACHABLE}/piwebapi", "OPTRIA_LOG_LEVEL": "WARNING"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "optria.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--no-migrate", "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200, "optria serve", proc)
        yield f"http://127.0.0.1:{port}", tmp_path / "serve.log"
    finally:
        _stop(proc)
        log.close()


def _sign_in(base: str, org: str, username: str, password: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    session.get(f"{base}/login", timeout=10)
    csrf = session.cookies.get("optria_csrf")
    r = session.post(f"{base}/login", data={"_csrf_token": csrf, "organization": org, "username": username,
                                            "password": password}, allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303), r.text[:300]
    return session, csrf


@pytest.mark.slow
async def test_api_matches_its_schema_and_never_fails_on_bad_input(served, db) -> None:
    import asyncio

    base, server_log = served
    accounts = Accounts(db)
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    summary = await asyncio.to_thread(_run, base, admin)
    print(f"\nschemathesis: {summary['operations']} operations, {summary['requests']} requests, "
          f"{summary['server_errors']} server errors, {len(summary['failures'])} failed checks; "
          f"statuses {dict(sorted(summary['statuses'].items()))}")
    assert summary["requests"] >= summary["operations"] * 5
    assert summary["server_errors"] == 0, summary["failures"][:10]
    for failure in summary["failures"]:
        print(failure)
    assert not summary["failures"], "\n\n".join(summary["failures"][:10])
    assert "Traceback" not in server_log.read_text()


def _run(base: str, admin) -> dict:
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                     status_code_conformance)
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import ParameterLocation

    session, csrf = _sign_in(base, admin.organization, admin.username, admin.password)
    _seed(base, session, csrf)
    raw = session.get(f"{base}/api/schema/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(raw, config=SchemathesisConfig(seed=SEED))
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    counts = {"requests": 0, "server_errors": 0, "operations": 0}

    def send(case, label: str) -> None:
        started = time.perf_counter()
        response = case.call(base_url=base, session=session, headers={"x-csrf-token": csrf}, timeout=30)
        counts["requests"] += 1
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            counts["server_errors"] += 1
        try:
            case.validate_response(response, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every failure is collected
            failures.append(f"{case.operation.label} [{label}] {response.status_code} "
                            f"in {time.perf_counter() - started:.2f}s: {_describe(exc)}")

    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/api/") or (operation.method.upper(), operation.path) in NETWORK_OPERATIONS:
            continue
        counts["operations"] += 1
        # 1. schemathesis' coverage phase: each parameter's boundaries and wrong types, deterministically
        generation = schema.config.generation_for(operation=operation)
        for case in schema.iter_coverage_cases(operation, generation_modes=list(GenerationMode),
                                               generation_config=generation):
            send(case, "coverage")
        # 2. hostile values the coverage phase leaves out: NUL in text, integers past 64 bits
        params = list(operation.iter_parameters())
        real_ids = {p.name: 1 for p in params if p.location == ParameterLocation.PATH}
        for p in params:
            if p.location not in (ParameterLocation.PATH, ParameterLocation.QUERY):
                continue
            kind = (p.definition.get("schema") or {}).get("type")
            for value in HOSTILE.get(kind, ()):
                path = {**real_ids, **({p.name: value} if p.location == ParameterLocation.PATH else {})}
                query = {p.name: value} if p.location == ParameterLocation.QUERY else None
                send(operation.Case(path_parameters=path, query=query), "hostile")
        # 3. generated requests, valid and invalid
        for mode, examples in ((GenerationMode.POSITIVE, POSITIVE_EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
            strategy = operation.as_strategy(generation_mode=mode)

            @settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=False,
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def check(case) -> None:
                send(case, mode.value)

            try:
                check()
            except Unsatisfiable:  # e.g. no invalid request exists for an operation without parameters
                counts["unsatisfiable"] = counts.get("unsatisfiable", 0) + 1
    return {**counts, "statuses": statuses, "failures": failures}


def _seed(base: str, session: requests.Session, csrf: str) -> None:
    """A little of everything with small ids (1, 2, ...), so generated ids often name real rows and the
    success answers are checked against their schemas too."""
    def post(path: str, body: dict, method: str = "POST") -> dict:
        r = session.request(method, f"{base}{path}", json=body, headers={"x-csrf-token": csrf}, timeout=30)
        assert r.status_code in (200, 201, 202), (path, r.status_code, r.text[:300])
        return r.json()

    for n in (1, 2):
        site = post("/api/sites", {"code": f"S{n}", "name": f"Site {n}"})
        unit = post("/api/units", {"site_id": site["id"], "code": f"U{n}", "name": f"Unit {n}"})
        asset = post("/api/assets", {"site_id": site["id"], "unit_id": unit["id"], "code": f"P-{n}",
                                     "name": f"Pump {n}", "asset_type": "pump"})
        alert = post(f"/api/assets/{asset['id']}/alerts", {"severity": "high", "title": f"Hot bearing {n}"})
        post(f"/api/assets/{asset['id']}/work-orders", {"title": f"Inspect {n}", "alert_id": alert["id"]})
        integ = post("/api/integrations", {"kind": "opcua", "name": f"Line {n}", "enabled": False})
        post(f"/api/integrations/{integ['id']}/mappings", {"asset_id": asset["id"], "external_id": f"ns=2;s=T{n}",
                                                             "name": f"P-{n}.Vibration", "metric_role": "vibration"})
        post("/api/optimization/runs", {"scope": "asset", "scope_id": asset["id"], "engine": "analytics"})
    post("/api/tenant/users", {"username": "operator1", "email": "operator1@example.test", "role": "viewer"})


def _describe(exc: BaseException) -> str:
    """The failed checks and the curl line that reproduces them."""
    text = str(exc)
    parts = [str(e).splitlines()[0] for e in getattr(exc, "exceptions", [])] or [text.splitlines()[0] if text else ""]
    curl = next((line.strip() for line in text.splitlines() if line.strip().startswith("curl ")), "")
    body = next((line.strip() for line in text.splitlines() if line.strip().startswith("`")), "")
    return f"{'; '.join(parts)} | {body[:300]} | {curl[:500]}"
