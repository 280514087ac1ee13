"""Database fixtures: one PostgreSQL per test session, a migrated template, a fresh copy per test.

TEST_DATABASE_URL points at an existing server (a role that may CREATE DATABASE); without
it a private embedded server is started under a temporary directory. Copying a template
database costs a fraction of a second, so tests never share rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql

from optria.db import Database
from optria.migrations import migrate


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
    server = ensure_server(base, fast_unsafe=True)
    try:
        yield server.dsn("postgres")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_dsn(pg_admin_dsn: str) -> Iterator[str]:
    name = f"optria_tpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = _with_db(pg_admin_dsn, name)
    migrate(dsn)
    yield dsn
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def create_database_from(admin_dsn: str, template_dsn: str, prefix: str = "optria_t") -> str:
    template = psycopg.conninfo.conninfo_to_dict(template_dsn)["dbname"]
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
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
