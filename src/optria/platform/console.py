"""The platform owner's console: the overview and demo-tenant creation.

- ``GET  /platform`` configuration checklist (flags of ``/internal/config/status``, never values),
  storage tier, tenants, integration health across tenants (last connection test, ingest state,
  lag) with links to the ingestion dashboard, and the latest proof-of-concept report
- ``GET  /platform/demo-tenants`` the one-action demo tenant form and the demo tenants so far
- ``POST /platform/demo-tenants`` create one (audit-logged); the generated passwords are shown once

Everything crosses tenants in the explicit platform scope and requires PLATFORM_CONSOLE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.integrations import kinds
from optria.platform import demo_tenants, store
from optria.platform.config_status import ConfigStatus, config_status
from optria.platform.ingestion import classify
from optria.web import flash
from optria.web.request_context import client_addr
from optria.web.templating import render

GUARD = [requires(Permission.PLATFORM_CONSOLE)]
MAX_INTEGRATION_ROWS = 50          # the overview shows the worst ones; the ingestion dashboard lists all
LEVEL_ORDER = {"critical": 0, "warning": 1, "nodata": 2, "normal": 3}


@dataclass(frozen=True)
class Check:
    label: str          # English msgid
    variable: str
    state: str          # ok | missing | optional | info | reserved (read, but nothing depends on it yet)
    hint: str = ""      # English msgid: what it means / what to do


CHECK_TEXTS = {
    "db": ("Database", "An external PostgreSQL is configured.", "The embedded PostgreSQL is used (fine for a demo)."),
    "session": ("Session secret", "Sessions survive restarts and are shared by every replica.",
                "A generated development secret is used; set SESSION_SECRET before production."),
    "openai": ("OpenAI API key", "AI optimization runs use the model.",
               "AI runs fall back to the analytics engine, labelled as such."),
    "opcua": ("Default OPC-UA endpoint", "Demo and default OPC-UA integrations connect here.",
              "Set OPCUA_ENDPOINT_URL (the demo uses the local simulator)."),
    "opcua_login": ("Default OPC-UA login", "Used only for the default endpoint.", "Anonymous access to the default endpoint."),
    "pi": ("Default PI Web API URL", "Demo and default PI integrations connect here.",
           "Set PI_BASE_URL (the demo uses the local simulator)."),
    "sap": ("SAP URL", "Reserved: this version has no SAP connection yet, so setting it changes nothing.",
            "Reserved: this version has no SAP connection yet, so setting it changes nothing."),
    "optimization": ("Optimization engine", "Runs may start.", "Switched off: optimization buttons are disabled."),
    "sql": ("SQL-historian integrations", "Tenants may add SQL sources.", "SQL sources are switched off."),
    "demo": ("Demo mode", "Reserved: this version behaves the same with or without it. Demo data comes from "
                          "optria demo and from Demo tenants on this console.",
             "Reserved: this version behaves the same with or without it. Demo data comes from optria demo and "
             "from Demo tenants on this console."),
    "required": ("Required production settings", "Present.", "Missing: the server refuses to start in production."),
}


def checklist(status: ConfigStatus, production: bool) -> list[dict[str, Any]]:
    """The flags as a checklist: state ok / missing (must fix) / optional (works without) / info."""
    def item(key: str, variable: str, present: bool, needed: bool) -> dict[str, Any]:
        label, yes, no = CHECK_TEXTS[key]
        state = "ok" if present else ("missing" if needed else "optional")
        return {"key": key, "label": label, "variable": variable, "state": state, "hint": yes if present else no}

    return [
        item("required", "SESSION_SECRET, DATABASE_URL", status.required_secrets_ok, production),
        item("db", "DATABASE_URL", status.has_database_url, production),
        item("session", "SESSION_SECRET", status.has_session_secret, production),
        item("opcua", "OPCUA_ENDPOINT_URL", status.has_opcua_endpoint, True),
        item("pi", "PI_BASE_URL", status.has_pi_base_url, True),
        item("openai", "OPENAI_API_KEY", status.has_openai_api_key, False),
        item("opcua_login", "OPCUA_USERNAME, OPCUA_PASSWORD", status.has_opcua_credentials, False),
        item("optimization", "OPTIMIZATION_ENGINE_ENABLED", status.optimization_engine_enabled, False),
        item("sql", "EXTERNAL_DB_ENABLE", status.external_db_enable, False),
        # reserved names: read and validated, but nothing in this version depends on them (said so, not hidden)
        {**item("sap", "SAP_BASE_URL", status.has_sap_base_url, False), "state": "reserved"},
        {**item("demo", "DEMO_MODE", status.demo_mode, False), "state": "reserved"},
    ]


def check_msgids() -> set[str]:
    return {text for texts in CHECK_TEXTS.values() for text in texts}


@get("/platform", guards=GUARD, name="platform_overview")
async def platform_overview(request: Request) -> Response:
    db, settings = request.app.state.db, request.app.state.settings
    tier = await store.PlatformStore(db).storage_tier()
    status = config_status(settings, tier)
    console = store.ConsoleStore(db)
    tenants = await console.tenants()
    tests = await console.integration_tests()
    integrations = [{**classify(r), "test": tests.get(r["id"])} for r in await store.IngestionStore(db).overview()]
    reports, _ = await store.PocStore(db).reports(limit=1, offset=0)
    checks = checklist(status, settings.is_production)
    summary = {
        "tenants": tenants[0]["total"] if tenants else 0,
        "integrations": len(integrations),
        "streaming": sum(1 for r in integrations if r["state"] == "streaming"),
        "attention": sum(1 for r in integrations if r["level"] in ("critical", "warning")),
        "tests_failed": sum(1 for r in integrations if r["test"] and r["test"]["last_test_success"] is False),
        "missing": sum(1 for c in checks if c["state"] == "missing"),
    }
    integrations.sort(key=lambda r: (LEVEL_ORDER.get(r["level"], 9),
                                     not (r["test"] and r["test"]["last_test_success"] is False),
                                     r["tenant_name"], r["name"]))
    return render(request, "platform/overview.html", status=status, checks=checks, tier=tier, tenants=tenants,
                  integrations=integrations[:MAX_INTEGRATION_ROWS],
                  more_integrations=max(0, len(integrations) - MAX_INTEGRATION_ROWS),
                  summary=summary, last_report=reports[0] if reports else None,
                  breadcrumbs=[("Platform overview", "/platform")])


class DemoTenantForm(msgspec.Struct):
    name: str = ""


async def _demo_page(request: Request, *, values: dict[str, str] | None = None, error: str | None = None,
                     status: int = 200) -> Response:
    settings = request.app.state.settings
    note, once = flash.pop(request)
    tenants = [t for t in await store.ConsoleStore(request.app.state.db).tenants(limit=200) if t["is_demo"]]
    endpoints = {"opcua": kinds.endpoint_info("opcua", {}, settings), "pi": kinds.endpoint_info("pi", {}, settings)}
    return render(request, "platform/demo_tenants.html", status_code=status, tenants=tenants, endpoints=endpoints,
                  values=values or {"name": demo_tenants.DEFAULT_NAME}, error=error, flash=note, once=once,
                  breadcrumbs=[("Platform overview", "/platform"), ("Demo tenants", "/platform/demo-tenants")])


@get("/platform/demo-tenants", guards=GUARD, name="platform_demo_tenants")
async def platform_demo_tenants(request: Request) -> Response:
    return await _demo_page(request)


@post("/platform/demo-tenants", guards=GUARD, name="platform_demo_tenant_create")
async def platform_demo_tenant_create(
        request: Request, data: Annotated[DemoTenantForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    """Create a demo tenant in one action; the users' passwords are shown once after the redirect."""
    try:
        created = await demo_tenants.create_demo_tenant(request.app.state.db, request.app.state.secretbox,
                                                        name=data.name[:300], actor=request.scope["user"],
                                                        addr=client_addr(request))
    except demo_tenants.DemoTenantError as exc:
        return await _demo_page(request, values={"name": data.name[:300]}, error=exc.message, status=422)
    flash.push(request, "success", demo_tenants.M_CREATED, name=created.name, once={
        "organization": created.slug, "name": created.name,
        "logins": [{"username": x.username, "role": x.role, "password": x.password} for x in created.logins]})
    return Redirect("/platform/demo-tenants", status_code=303)


ROUTES = [platform_overview, platform_demo_tenants, platform_demo_tenant_create]
