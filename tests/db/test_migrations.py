"""The migration runner and the additive-only rule."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from optria import migrations
from optria.migrations import (
    MIGRATIONS_DIR,
    TIMESCALE_DIR,
    TIMESCALE_TSL_DIR,
    MigrationError,
    additive_violations,
    migrate,
)
from tests.fix_db import create_database_from, drop_database


def _all_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("*.sql")) + sorted(TIMESCALE_DIR.glob("*.sql")) + sorted(TIMESCALE_TSL_DIR.glob("*.sql"))


@pytest.mark.parametrize("path", _all_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_migration_is_additive(path: Path) -> None:
    assert additive_violations(path.read_text()) == [], f"{path.name} is not additive"


@pytest.mark.parametrize("statement", [
    "DROP TABLE users;",
    "ALTER TABLE users DROP COLUMN email;",
    "ALTER TABLE users RENAME COLUMN email TO mail;",
    "ALTER TABLE users RENAME TO people;",
    "TRUNCATE audit_log;",
    "ALTER TABLE users ALTER COLUMN role TYPE varchar(20);",
    "alter table users alter column role set data type text;",
    "drop index users_email_per_tenant;",
    "DELETE FROM users;",
])
def test_lint_rejects_destructive_statements(statement: str) -> None:
    assert additive_violations(statement), statement


def test_lint_accepts_additions_and_ignores_comments() -> None:
    text = """
    -- we never DROP TABLE here
    CREATE TABLE x (id int);
    ALTER TABLE x ADD COLUMN y text;
    CREATE INDEX x_y ON x (y);
    /* RENAME nothing */
    CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM x WHERE false $$;
    """
    assert additive_violations(text) == []


def test_files_are_named_and_numbered_in_order() -> None:
    keys = [m.key for m in migrations.discover(MIGRATIONS_DIR)]
    numbers = [int(k.split("_", 1)[0]) for k in keys]
    assert numbers == list(range(1, len(numbers) + 1)), "migrations must be numbered 0001, 0002, ... without gaps"


def test_migrate_is_idempotent_and_records_checksums(db_dsn: str) -> None:
    result = migrate(db_dsn)
    assert result["applied"] == []
    assert result["tier"] in ("postgres", "timescale", "timescale-apache")
    with psycopg.connect(db_dsn) as conn:
        rows = conn.execute("SELECT key, checksum FROM schema_migrations ORDER BY key").fetchall()
    expected = {m.key: m.checksum for m in migrations.all_migrations(result["tier"])}
    assert dict(rows) == expected


def test_edited_applied_migration_is_a_clear_error(db_dsn: str) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE key = '0001_core'")
    with pytest.raises(MigrationError, match="0001_core was changed after it was applied"):
        migrate(db_dsn)


def test_concurrent_runners_apply_each_migration_once(pg_admin_dsn: str) -> None:
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE optria_concurrent_mig")
    dsn = psycopg.conninfo.make_conninfo(pg_admin_dsn, dbname="optria_concurrent_mig")
    results: list[dict] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(dsn))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        applied = sorted(k for r in results for k in r["applied"])
        assert applied == sorted(m.key for m in migrations.all_migrations(results[0]["tier"]))
    finally:
        drop_database(pg_admin_dsn, dsn)


def test_failed_migration_rolls_back_and_is_not_recorded(pg_admin_dsn: str, template_dsn: str, tmp_path, monkeypatch) -> None:
    dsn = create_database_from(pg_admin_dsn, template_dsn)
    try:
        bad_dir = tmp_path / "migrations"
        bad_dir.mkdir()
        for f in MIGRATIONS_DIR.glob("*.sql"):
            (bad_dir / f.name).write_text(f.read_text())
        n = len(list(MIGRATIONS_DIR.glob("*.sql"))) + 1
        (bad_dir / f"{n:04d}_broken.sql").write_text("CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
        monkeypatch.setattr(migrations, "MIGRATIONS_DIR", bad_dir)
        with pytest.raises(MigrationError, match="broken failed"):
            migrate(dsn)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT to_regclass('half_done')").fetchone()[0] is None
            assert conn.execute("SELECT count(*) FROM schema_migrations WHERE key LIKE %s", [f"{n:04d}_%"]).fetchone()[0] == 0
    finally:
        drop_database(pg_admin_dsn, dsn)


def test_split_statements_for_non_transactional_files() -> None:
    text = "-- optria:no-transaction\nCREATE TABLE a (x int);\nCREATE INDEX a_x\n  ON a (x);\n"
    assert migrations.split_statements(text) == ["CREATE TABLE a (x int);", "CREATE INDEX a_x\n  ON a (x);"]
