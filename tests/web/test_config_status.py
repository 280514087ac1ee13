"""/internal/config/status: flags only, platform owners only, and no secret anywhere."""

from __future__ import annotations

import io
import logging
import uuid

import psycopg
import pytest
from psycopg import sql

from optria.db import Database
from optria.logs import JsonFormatter
from optria.shell.app import create_app
from tests.fix_web import Accounts, make_settings, new_web
from tests.web.routes_walk import walk

FLAGS = {"has_database_url", "has_session_secret", "has_openai_api_key", "has_opcua_endpoint", "has_opcua_credentials",
         "has_pi_base_url", "has_sap_base_url", "demo_mode", "optimization_engine_enabled", "external_db_enable",
         "app_env", "required_secrets_ok", "storage_tier"}


async def test_status_requires_platform_owner(web, accounts) -> None:
    r = await web.get("/internal/config/status")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    await web.login(admin)
    r = await web.get("/internal/config/status")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


async def test_status_returns_flags_only(web, accounts) -> None:
    await web.login(await accounts.user("platform_owner"))
    r = await web.get("/internal/config/status")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == FLAGS
    for key, value in body.items():
        if key in ("app_env", "storage_tier"):
            assert isinstance(value, str)
        else:
            assert isinstance(value, bool), key
    assert body["has_session_secret"] is True and body["has_openai_api_key"] is False
    assert body["storage_tier"] in ("postgres", "timescale", "timescale-apache")
    assert body["app_env"] == "test"


@pytest.fixture
def marker_dsn(db_dsn: str):
    """A login role whose password is a marker, so the DSN itself carries a secret to look for."""
    password = f"MARKER-DBPASS-{uuid.uuid4().hex}"
    role = f"marker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE optria_app").format(
            sql.Identifier(role), sql.Literal(password)))
    yield psycopg.conninfo.make_conninfo(db_dsn, user=role, password=password), password
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_no_secret_marker_in_any_response_or_log(marker_dsn, caplog) -> None:
    dsn, db_password = marker_dsn
    markers = {
        "SESSION_SECRET": f"MARKER-SESSION-{uuid.uuid4().hex}",
        "OPENAI_API_KEY": f"MARKER-OPENAI-{uuid.uuid4().hex}",
        "OPCUA_PASSWORD": f"MARKER-OPCUA-{uuid.uuid4().hex}",
        "PGPASSWORD": f"MARKER-PGPASS-{uuid.uuid4().hex}",
    }
    settings = make_settings(DATABASE_URL=dsn, OPCUA_USERNAME="opc-user", OPCUA_ENDPOINT_URL="opc.tcp://127.0.0.1:1",
                             PI_BASE_URL="http://127.0.0.1:1/piwebapi", SAP_BASE_URL="http://127.0.0.1:1/sap",
                             LOG_LEVEL="DEBUG", **markers)
    all_markers = [*markers.values(), db_password]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    database = Database(dsn, name="marker-test")
    await database.open()
    seen: list[str] = []
    try:
        app = create_app(settings, database)
        accounts = Accounts(database)
        tenant = await accounts.tenant()
        users = [None, await accounts.user("platform_owner"), await accounts.user("tenant_admin", tenant)]
        for user in users:
            async with new_web(app) as web:
                if user:
                    seen.append(str((await web.login(user)).headers))
                for route in walk(app):
                    path = route.concrete()
                    r = await (web.get(path) if route.method == "GET" else web.post_form(path, {"x": "1"}))
                    seen.append(r.text)
                    seen.append(str(r.headers))
                    seen.append(str(dict(web.client.cookies)))
        # a failing request path logs too: an unknown route and a bad form
        async with new_web(app) as web:
            seen.append((await web.get("/no/such/route")).text)
        status = None
        async with new_web(app) as web:
            await web.login(users[1])
            status = (await web.get("/internal/config/status")).json()
    finally:
        await database.close()
        root.removeHandler(handler)
    assert status["has_openai_api_key"] and status["has_opcua_credentials"] and status["has_database_url"]
    seen.append(stream.getvalue())
    seen.append(caplog.text)
    haystack = "\n".join(seen)
    assert len(haystack) > 10_000  # we really looked at pages, headers and logs
    for marker in all_markers:
        assert marker not in haystack, f"a secret leaked: {marker[:14]}..."
