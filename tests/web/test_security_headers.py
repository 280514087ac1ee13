"""Security headers on every response, and pages that need nothing the CSP forbids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from optria.shell.app import create_app
from optria.web.security import CSP
from tests.fix_web import Web, make_settings, new_web
from tests.web.routes_walk import walk

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def missing_headers(response, *, production: bool = False) -> list[str]:
    h = response.headers
    problems = [f"{name}: {h.get(name)!r}" for name, value in EXPECTED.items() if h.get(name) != value]
    csp = h.get("content-security-policy", "")
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                      "object-src 'none'", "base-uri 'none'"):
        if directive not in csp:
            problems.append(f"CSP lacks {directive!r}")
    if "unsafe-inline" in csp or "unsafe-eval" in csp:
        problems.append("CSP allows unsafe-inline/unsafe-eval")
    hsts = h.get("strict-transport-security")
    if production and not (hsts and "max-age=" in hsts):
        problems.append("no HSTS in production")
    if not production and hsts:
        problems.append("HSTS outside production")
    return problems


def test_policy_is_strict() -> None:
    assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP and "*" not in CSP
    assert "frame-ancestors 'none'" in CSP


async def test_every_kind_of_response_carries_the_headers(web: Web, accounts, app) -> None:
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    anonymous = [
        await web.get("/login"),                       # a page
        await web.get("/static/optria.css"),           # a static file
        await web.get("/no/such/page"),                # 404 before any route
        await web.client.delete("/login"),             # 405
        await web.get("/api/assets"),                  # JSON 401
        await web.get("/assets"),                      # redirect to sign in
        await web.get("/healthz"),
        await web.get("/api/schema/openapi.json"),
        await web.client.post("/login", data={"x": "y"}),  # CSRF refusal (403)
    ]
    statuses = {r.status_code for r in anonymous}
    assert {200, 302, 401, 403, 404, 405} <= statuses, statuses
    for r in anonymous:
        assert not missing_headers(r), (r.request.url, missing_headers(r))
    await web.login(admin)
    r = await web.get("/")
    assert r.status_code == 200 and not missing_headers(r)


async def test_every_page_of_every_route_has_the_headers(app, accounts) -> None:
    tenant = await accounts.tenant()
    users = [await accounts.user("tenant_admin", tenant), await accounts.user("platform_owner")]
    checked, problems = 0, []
    for user in users:
        async with new_web(app) as w:
            await w.login(user)
            for route in walk(app):
                if route.method != "GET" or route.path == "/digital-twin/stream":
                    continue
                r = await w.get(route.concrete())
                checked += 1
                if missing_headers(r):
                    problems.append(f"{route.path} {r.status_code}: {missing_headers(r)}")
    assert checked > 100 and not problems, problems[:10]
    print(f"\nheaders: {checked} responses checked, {len(problems)} missing")


async def test_hsts_in_production_only(db, db_dsn) -> None:
    app = create_app(make_settings(APP_ENV="production", DATABASE_URL=db_dsn), db)
    async with AsyncTestClient(app=app) as c:
        c.follow_redirects = False
        r = await c.get("/login")
        assert not missing_headers(r, production=True)
        assert "max-age=31536000" in r.headers["strict-transport-security"]
        r = await c.get("/no/such/page")
        assert "strict-transport-security" in r.headers


@pytest.mark.parametrize("template", sorted(p.relative_to(ROOT / "templates").as_posix()
                                            for p in (ROOT / "templates").rglob("*.html")))
def test_templates_need_nothing_the_policy_forbids(template: str) -> None:
    """No inline script, no style attribute or block, no event-handler attribute, no javascript: URL."""
    text = (ROOT / "templates" / template).read_text()
    for m in re.finditer(r"<script\b([^>]*)>", text):
        attrs = m.group(1)
        assert "src=" in attrs or 'type="application/json"' in attrs, f"inline script: {m.group(0)}"
    assert not re.search(r"\sstyle\s*=", text), "style attribute"
    assert "<style" not in text, "style block"
    assert not re.search(r"\son[a-z]+\s*=", text), "event handler attribute"
    assert "javascript:" not in text.lower()


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "src/optria/web/static").glob("*.js")))
def test_scripts_insert_text_never_markup(script: str) -> None:
    text = (ROOT / "src/optria/web/static" / script).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setAttribute(\"style\"", ".cssText"):
        assert sink not in text, f"{script} uses {sink}"
