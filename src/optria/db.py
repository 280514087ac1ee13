"""Connection pool, the two kinds of transaction every store uses, and the helpers stores read rows with.

Tenant isolation has two locks: each store filters by ``tenant_id``, and PostgreSQL
row-level security checks the ``optria.tenant_id`` setting that :meth:`Database.tenant`
sets with ``SET LOCAL``. Pool connections ``SET ROLE optria_app`` (no superuser, no
BYPASSRLS) so the policies bind even when the DSN's user owns the tables. Platform-owner
code asks for :meth:`Database.platform` by name; there is no "forgot the filter" path.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from optria import embedded_pg
from optria.config import Settings

log = logging.getLogger("optria.db")

APP_ROLE = "optria_app"
INGEST_ROLE = "optria_ingest"  # BYPASSRLS, used only by the ingest writer (see migrations.ensure_ingest_role)
EMBEDDED_DBNAME = "optria"

Conn = psycopg.AsyncConnection[dict[str, Any]]
PIPELINES = psycopg.AsyncPipeline.is_supported()   # libpq 14 or later (the binary wheel's is)
Query = str | sql.Composable


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message says what to check, never the password."""


def resolve_dsn(settings: Settings, *, start_embedded: bool = True) -> str:
    """DATABASE_URL or PG* settings; otherwise the embedded server under ``data_dir``."""
    dsn = settings.database_dsn()
    if dsn:
        return dsn
    if start_embedded:
        server = embedded_pg.ensure_server(settings.embedded_pg_dir, timescale=settings.timescale)
        if server.started_here:
            import atexit

            atexit.register(server.stop)  # whoever started the embedded server stops it cleanly
        ensure_database(server.dsn(), EMBEDDED_DBNAME)
    else:
        server = embedded_pg.running_server(settings.embedded_pg_dir)
        if server is None:
            raise DatabaseUnavailable("no DATABASE_URL and the embedded PostgreSQL is not running; run `optria migrate` first")
    return server.dsn(EMBEDDED_DBNAME)


def ensure_database(admin_dsn: str, dbname: str) -> None:
    """Create ``dbname`` on the server of ``admin_dsn`` if it does not exist (embedded default)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def describe_dsn(dsn: str) -> str:
    """host:port/dbname of a DSN, for messages (no user, no password)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparseable DATABASE_URL)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


async def _configure(conn: psycopg.AsyncConnection) -> None:
    await conn.execute(f"SET ROLE {APP_ROLE}")
    # Our queries use optional filters (``%(x)s IS NULL OR col = %(x)s``); a generic plan chosen
    # after a few executions of a prepared statement ignores the values and runs several times slower.
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    await conn.commit()


def _scope_sql(setting: str, cached_plans: bool) -> str:
    """The statement opening a scoped transaction; with ``cached_plans`` it lets PostgreSQL keep a
    prepared statement's plan for the transaction (the pool's default plans every execution)."""
    plans = ", set_config('plan_cache_mode', 'auto', true)" if cached_plans else ""
    return f"SELECT set_config('{setting}', %s, true){plans}"


class Database:
    """Owns the pool; hands out tenant-scoped or platform-scoped transactions."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10, name: str = "optria") -> None:
        self.dsn = dsn
        self.pool = AsyncConnectionPool(
            dsn, min_size=min_size, max_size=max_size, open=False, configure=_configure,
            kwargs={"row_factory": dict_row, "autocommit": False, "application_name": name},
            name=name, timeout=10,
        )

    async def open(self, wait_s: float = 10.0) -> None:
        try:
            await self.pool.open(wait=True, timeout=wait_s)
        except Exception as exc:  # psycopg_pool.PoolTimeout and friends
            await self.pool.close()
            raise DatabaseUnavailable(
                f"cannot connect to PostgreSQL at {describe_dsn(self.dsn)}: check that it is running and that "
                "DATABASE_URL is right, then run `optria migrate`"
            ) from exc

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def tenant(self, tenant_id: UUID | str, *, cached_plans: bool = False, pipeline: bool = False
                     ) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        """A transaction that can only see and write rows of ``tenant_id``.

        ``cached_plans``: for a transaction whose queries have no optional filters, PostgreSQL may
        keep a prepared statement's plan instead of planning it on every execution (the pool's
        default, see ``_configure``): the twin's card grid took 3 ms to plan for 4 ms of work.

        ``pipeline``: statements go out without waiting for the ones before (libpq pipeline mode);
        reading a result waits. BEGIN and the scope travel with the first query and COMMIT goes
        alone: two round trips fewer for a page that reads, each one a wait for a busy server
        (a failed statement raises when its result is read, and aborts the transaction as usual).
        For reading pages only: a COPY or a server-side cursor cannot run in a pipeline."""
        if not tenant_id:
            raise ValueError("a tenant transaction needs a tenant id")
        async with self.pool.connection() as conn:
            async with (conn.pipeline() if pipeline and PIPELINES else nullcontext()), conn.transaction():
                await conn.execute(_scope_sql("optria.tenant_id", cached_plans), [str(tenant_id)])
                yield conn

    @asynccontextmanager
    async def platform(self, reason: str, *, cached_plans: bool = False
                       ) -> AsyncIterator[psycopg.AsyncConnection[dict[str, Any]]]:
        """A transaction across tenants, for platform-owner views, login and the ingest supervisor.

        ``reason`` names the caller so the explicit scope is visible in code review and
        in ``pg_stat_activity`` (application_name is not touched; the setting is).
        ``cached_plans``: as for :meth:`tenant`, for the ingest jobs, which run the same
        fixed-shape queries every second or two: planning them cost PostgreSQL more than running
        them (the Black Box collectors' rounds: ~22 ms of PostgreSQL CPU a second, ~10 ms with plans kept).
        """
        async with self.pool.connection() as conn:
            async with conn.transaction():
                await conn.execute(_scope_sql("optria.platform", cached_plans), [reason or "platform"])
                yield conn

    async def ping(self) -> bool:
        try:
            async with self.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
                await conn.rollback()
            return True
        except Exception:
            return False


# ----------------------------------------------------------------------------- reading rows
# Stores keep their SQL as named constants and run it through these, so every area reads rows,
# pages and search patterns the same way.


async def fetch_one(conn: Conn, query: Query, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
    return await (await conn.execute(query, params)).fetchone()  # type: ignore[arg-type]


async def fetch_all(conn: Conn, query: Query, params: dict[str, Any] | None = None, *,
                    prepare: bool | None = None) -> list[dict[str, Any]]:
    """Rows as dicts. ``prepare=False`` for a query with optional parameters ("%(x)s IS NULL
    OR ..."): once prepared, PostgreSQL may switch to a generic plan blind to which are set."""
    return await (await conn.execute(query, params, prepare=prepare)).fetchall()  # type: ignore[arg-type]


async def fetch_page(conn: Conn, query: Query, params: dict[str, Any], *, limit: int, offset: int,
                     count_query: Query | None = None) -> tuple[list[dict[str, Any]], int]:
    """One page of rows and the total over all pages.

    ``query`` takes ``%(limit)s`` and ``%(offset)s`` and carries the total on every row
    (``count(*) OVER () AS total``), so one round trip serves a page; the column is taken off the
    rows. A page past the end has no row to carry it: the total then comes from ``count_query``
    (a ``total`` column), or without one from the first row of the same query.
    """
    rows = await fetch_all(conn, query, {**params, "limit": limit, "offset": offset})
    if rows:
        total = int(rows[0]["total"])
        for row in rows:
            row.pop("total", None)
        return rows, total
    if offset <= 0:
        return [], 0
    if count_query is not None:
        row = await fetch_one(conn, count_query, params)
    else:
        first = await fetch_all(conn, query, {**params, "limit": 1, "offset": 0})
        row = first[0] if first else None
    return [], int(row["total"]) if row else 0


def like_pattern(q: str | None) -> str | None:
    """``%q%`` for ``LIKE``/``ILIKE`` with the wildcards in the user's text escaped (a search for
    "a_b" finds "a_b" only), or None for an empty search (the query's "no filter")."""
    q = (q or "").strip()
    if not q:
        return None
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
