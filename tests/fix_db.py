"""Database fixtures: one PostgreSQL per test session, a migrated template, a fresh copy per test.

TEST_DATABASE_URL points at an existing server (a role that may CREATE DATABASE); without
it a private embedded server is started under a temporary directory, in the storage tier
that OPTRIA_TEST_TIER names (``postgres``, the default; ``timescale`` and ``timescale-apache``
run TimescaleDB built by ``scripts/timescaledb``). Copying a template database costs a
fraction of a second, so tests never share rows.

TimescaleDB's scheduler keeps a connection to every database with the extension, which
blocks ``CREATE DATABASE … TEMPLATE``; the migrated template is therefore marked a template
(the scheduler leaves templates alone) and its scheduler is ended before the first copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql

from optria.db import Database
from optria.migrations import migrate


TIER_EDITIONS = {"postgres": "off", "timescale": "full", "timescale-apache": "apache"}


def current_tier() -> str:
    """The storage tier this run is for (OPTRIA_TEST_TIER), checked against what migrate detects."""
    tier = os.environ.get("OPTRIA_TEST_TIER", "postgres").strip() or "postgres"
    if tier not in TIER_EDITIONS:
        raise pytest.UsageError(f"OPTRIA_TEST_TIER must be one of {', '.join(TIER_EDITIONS)}")
    return tier


def _with_db(dsn: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from optria.embedded_pg import ensure_server

    # Not under pytest's tmp dir: under root the server runs as another OS user, who must traverse the path.
    base = Path(tempfile.mkdtemp(prefix="optria-test-pg-"))
    base.chmod(0o755)
    server = ensure_server(base, fast_unsafe=True, timescale=TIER_EDITIONS[current_tier()])
    try:
        yield server.dsn("postgres")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def storage_tier() -> str:
    return current_tier()


@pytest.fixture(scope="session")
def template_dsn(pg_admin_dsn: str, storage_tier: str) -> Iterator[str]:
    name = f"optria_tpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = _with_db(pg_admin_dsn, name)
    detected = migrate(dsn)["tier"]
    if detected != storage_tier and not os.environ.get("TEST_DATABASE_URL"):
        pytest.exit(f"OPTRIA_TEST_TIER={storage_tier} but the server gives the {detected!r} tier", returncode=3)
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name)))
        _end_sessions(conn, name)
    yield dsn
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _end_sessions(conn: psycopg.Connection, dbname: str) -> None:
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                 [dbname])


def create_database_from(admin_dsn: str, template_dsn: str, prefix: str = "optria_t") -> str:
    template = psycopg.conninfo.conninfo_to_dict(template_dsn)["dbname"]
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for attempt in range(50):
            try:
                conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                             sql.Identifier(template)))
                break
            except psycopg.errors.ObjectInUse:
                # a TimescaleDB scheduler that started before the template flag was seen: end it, retry
                if attempt == 49:
                    raise
                _end_sessions(conn, template)
                time.sleep(0.1)
    return _with_db(admin_dsn, name)


def drop_database(admin_dsn: str, dsn: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def db_dsn(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    """A freshly migrated database for one test (owner connection string)."""
    dsn = create_database_from(pg_admin_dsn, template_dsn)
    yield dsn
    drop_database(pg_admin_dsn, dsn)


@pytest_asyncio.fixture
async def db(db_dsn: str) -> AsyncIterator[Database]:
    database = Database(db_dsn, min_size=1, max_size=6, name="optria-test")
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def owner_conn(db_dsn: str) -> Iterator[psycopg.Connection]:
    """A plain owner connection (bypasses RLS) for arranging and inspecting test data."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        yield conn


def refresh_aggregates(conn: psycopg.Connection) -> None:
    """Materialize the continuous aggregates now (``timescale`` tier; a no-op elsewhere), as their
    refresh policies would within a cycle. Needs an autocommit owner connection."""
    tier = conn.execute("SELECT tier FROM storage_capabilities").fetchone()[0]
    if tier == "timescale":
        conn.execute("CALL refresh_continuous_aggregate('signal_1m_cagg', NULL, NULL)")
        conn.execute("CALL refresh_continuous_aggregate('signal_1h_cagg', NULL, NULL)")


def platform_rows(conn: psycopg.Connection, query: str, params: list | None = None) -> list[tuple]:
    """Run ``query`` in the platform scope (the tenant views of the TimescaleDB tiers show rows only
    in a tenant or platform scope), for tests that inspect every tenant's rows."""
    with conn.transaction():
        conn.execute("SELECT set_config('optria.platform', 'test', true)")
        return conn.execute(query, params or []).fetchall()
