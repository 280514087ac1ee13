"""Row-level security: inside tenant A's transaction, a bare SELECT sees only tenant A's rows.

Tables are enumerated from the catalog. A new table must either carry ``tenant_id`` (and
then have forced RLS, a policy and a row factory below) or be listed as global on purpose.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql

from optria.db import Database

# Tables that hold no tenant data, with the reason.
GLOBAL_TABLES = {
    "schema_migrations": "migration bookkeeping",
    "storage_capabilities": "one row describing the server",
    "login_attempts": "pre-authentication throttling, keyed by account name and client address",
}

Factory = Callable[[psycopg.Connection, uuid.UUID, dict], None]


def _user(conn, tenant, ctx):
    row = conn.execute(
        "INSERT INTO users (tenant_id, username, email, role, password_hash) VALUES (%s, %s, %s, 'viewer', 'x') RETURNING id",
        [tenant, f"u{uuid.uuid4().hex[:6]}", f"{uuid.uuid4().hex[:6]}@x.test"]).fetchone()
    ctx["user_id"] = row[0]


def _session(conn, tenant, ctx):
    conn.execute("INSERT INTO sessions (id, user_id, tenant_id, expires_at) VALUES (%s, %s, %s, now() + interval '1 hour')",
                 [uuid.uuid4().hex, ctx["user_id"], tenant])


def _audit(conn, tenant, ctx):
    conn.execute("INSERT INTO audit_log (tenant_id, actor_name, action, target_type) VALUES (%s, 'x', 'test', 'user')",
                 [tenant])


# One row of each tenant table per tenant, in dependency order. New tenant tables add a factory.
ROW_FACTORIES: dict[str, Factory] = {
    "users": _user,
    "sessions": _session,
    "audit_log": _audit,
}


def tenant_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
        ORDER BY 1""").fetchall()
    return [r[0] for r in rows]


def all_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1""").fetchall()
    return [r[0] for r in rows]


def test_every_table_is_tenant_scoped_or_declared_global(owner_conn) -> None:
    scoped = set(tenant_tables(owner_conn)) | {"tenants"}
    unexplained = [t for t in all_tables(owner_conn) if t not in scoped and t not in GLOBAL_TABLES]
    assert unexplained == [], f"tables without tenant_id and not declared global: {unexplained}"


def test_every_tenant_table_forces_rls_with_a_policy(owner_conn) -> None:
    problems = []
    for table in tenant_tables(owner_conn) + ["tenants"]:
        rls, forced = owner_conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = %s AND relnamespace = 'public'::regnamespace",
            [table]).fetchone()
        policies = owner_conn.execute("SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND tablename = %s",
                                      [table]).fetchone()[0]
        if not (rls and forced and policies):
            problems.append(f"{table}: rls={rls} forced={forced} policies={policies}")
    assert problems == []


async def test_bare_select_sees_only_own_tenant(owner_conn, db: Database) -> None:
    tables = tenant_tables(owner_conn)
    missing = [t for t in tables if t not in ROW_FACTORIES]
    assert missing == [], f"add a row factory for new tenant tables: {missing}"

    tenants = []
    for slug in ("rls-a", "rls-b"):
        tid = owner_conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s) RETURNING id", [slug, slug]).fetchone()[0]
        ctx: dict = {}
        for table in ROW_FACTORIES:
            ROW_FACTORIES[table](owner_conn, tid, ctx)
        tenants.append(tid)
    # a platform owner (tenant_id null) must not be visible to tenants either
    owner_conn.execute("INSERT INTO users (tenant_id, username, email, role, password_hash) "
                       "VALUES (NULL, 'rls-owner', 'rls-owner@x.test', 'platform_owner', 'x')")
    a, b = tenants

    async with db.tenant(a) as conn:
        assert (await (await conn.execute("SELECT current_user AS u")).fetchone())["u"] == "optria_app"
        for table in tables:
            rows = await (await conn.execute(sql.SQL("SELECT tenant_id FROM {}").format(sql.Identifier(table)))).fetchall()
            seen = {r["tenant_id"] for r in rows}
            assert seen == {a}, f"{table}: tenant A's transaction saw {seen}"
        ids = {r["id"] for r in await (await conn.execute("SELECT id FROM tenants")).fetchall()}
        assert ids == {a}

    async with db.platform("test") as conn:
        for table in tables:
            rows = await (await conn.execute(sql.SQL("SELECT DISTINCT tenant_id FROM {}").format(sql.Identifier(table)))).fetchall()
            assert {a, b} <= {r["tenant_id"] for r in rows}, f"platform scope must see every tenant in {table}"


async def test_no_scope_sees_nothing(owner_conn, db: Database) -> None:
    owner_conn.execute("INSERT INTO tenants (slug, name) VALUES ('rls-c', 'c')")
    async with db.pool.connection() as conn:
        rows = await (await conn.execute("SELECT id FROM tenants")).fetchall()
        assert rows == []


async def test_cannot_write_into_another_tenant(owner_conn, db: Database) -> None:
    a = owner_conn.execute("INSERT INTO tenants (slug, name) VALUES ('rls-w-a', 'a') RETURNING id").fetchone()[0]
    b = owner_conn.execute("INSERT INTO tenants (slug, name) VALUES ('rls-w-b', 'b') RETURNING id").fetchone()[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with db.tenant(a) as conn:
            await conn.execute("INSERT INTO users (tenant_id, username, email, role, password_hash) "
                               "VALUES (%s, 'intruder', 'i@x.test', 'viewer', 'x')", [b])
    victim = owner_conn.execute("INSERT INTO users (tenant_id, username, email, role, password_hash) "
                                "VALUES (%s, 'victim', 'v@x.test', 'viewer', 'x') RETURNING id", [b]).fetchone()[0]
    async with db.tenant(a) as conn:
        cur = await conn.execute("UPDATE users SET is_active = false WHERE id = %s", [victim])
        assert cur.rowcount == 0
    assert owner_conn.execute("SELECT is_active FROM users WHERE id = %s", [victim]).fetchone()[0] is True
