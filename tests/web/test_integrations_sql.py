"""SQL historian integrations with EXTERNAL_DB_ENABLE on, against a real PostgreSQL table: a password
in the connection string is sealed (never stored in the config), the read-only test and the tag
browse work, and a bad query is reported."""

from __future__ import annotations

import psycopg
import pytest_asyncio

from optria.shell.app import create_app
from tests.web.integrations_setup import MARKER, create, integ_settings, rows, same_loop_web, tenant_with_plant, test_it


@pytest_asyncio.fixture
async def web(db, accounts, tmp_path):
    app = create_app(integ_settings(tmp_path, EXTERNAL_DB_ENABLE="true"), db)
    tenant = await tenant_with_plant(db, accounts)
    async with same_loop_web(app) as w:
        await w.login(tenant.admin)
        yield w


async def test_sql_source_test_and_browse(web, owner_conn, db_dsn) -> None:
    owner_conn.execute("CREATE TABLE historian (tag text, ts timestamptz, value float8)")
    owner_conn.execute("INSERT INTO historian VALUES ('FT-101', now(), 1.5), ('TT-102', now(), 70)")
    query = "SELECT tag, ts, value FROM historian WHERE ts > %(watermark)s ORDER BY ts"
    created = await create(web, "sql", "Historian", {"dsn": db_dsn, "query": query,
                                                     "tags_query": "SELECT DISTINCT tag FROM historian ORDER BY 1"})
    assert created["endpoint"]["source"] == "tenant" and created["config"]["query"] == query
    result = await test_it(web, created["id"])
    assert result["success"] is True and result["details"]["read_only"] is True, result
    items = (await web.api("GET", f"/api/integrations/{created['id']}/browse")).json()["items"]
    assert [(i["id"], i["suggested_role"]) for i in items] == [("FT-101", "flow"), ("TT-102", "temperature")]
    bad = await create(web, "sql", "Bad query", {"dsn": db_dsn, "query": "SELECT nope FROM nowhere "
                                                                         "WHERE x > %(watermark)s"})
    result = await test_it(web, bad["id"])
    assert result["success"] is False and result["details"]["reason"] == "bad_query"


async def test_password_in_the_connection_string_is_sealed(web, owner_conn, db_dsn) -> None:
    info = psycopg.conninfo.conninfo_to_dict(db_dsn)
    dsn = psycopg.conninfo.make_conninfo(**{**info, "password": MARKER})
    r = await web.api("POST", "/api/integrations/", json={"kind": "sql", "name": "With password", "config": {
        "dsn": dsn, "query": "SELECT 1 WHERE now() > %(watermark)s"}})
    assert r.status_code == 201 and MARKER not in r.text and r.json()["has_password"] is True
    stored = rows(owner_conn, "SELECT config::text, secrets::text FROM integrations")
    assert MARKER not in stored[0][0] and MARKER not in stored[0][1]
    r = await web.api("POST", "/api/integrations/", json={"kind": "sql", "name": "No watermark", "config": {
        "dsn": db_dsn, "query": "SELECT 1"}})
    assert r.status_code == 422 and "query" in r.json()["error"]["details"]["fields"]
