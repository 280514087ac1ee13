"""The migration runner: ordered, checksummed, additive-only SQL files.

``sql/migrations/NNNN_name.sql`` apply in order, each in its own transaction, and are
recorded with a SHA-256 checksum; changing an applied file is an error, not a silent
drift. A session advisory lock serialises concurrent runners (two web replicas starting
together). A file whose first line is ``-- optria:no-transaction`` runs outside a
transaction (TimescaleDB continuous aggregates need that). ``sql/timescale/`` files
apply only where TimescaleDB is present. The storage tier is detected here and recorded
in ``storage_capabilities``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from optria.config import PROJECT_ROOT
from optria.db import APP_ROLE, INGEST_ROLE

log = logging.getLogger("optria.migrations")

SQL_DIR = PROJECT_ROOT / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
TIMESCALE_DIR = SQL_DIR / "timescale"          # any TimescaleDB (Apache-licensed features)
TIMESCALE_TSL_DIR = SQL_DIR / "timescale-tsl"  # community license only: caggs, compression, retention
LOCK_KEY = 0x0715_7A1A  # advisory lock id shared by every runner
NO_TX_MARKER = "-- optria:no-transaction"
FILENAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
TIERS = ("timescale", "timescale-apache", "postgres")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    key: str          # "0001_core" or "timescale/0001_hypertables"
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        return not self.sql.lstrip().startswith(NO_TX_MARKER)


def discover(directory: Path, prefix: str = "") -> list[Migration]:
    found = []
    seen: set[str] = set()
    for path in sorted(directory.glob("*.sql")):
        m = FILENAME.match(path.name)
        if not m:
            raise MigrationError(f"migration file {path.name} must be named NNNN_lower_snake.sql")
        if m.group(1) in seen:
            raise MigrationError(f"two migrations share number {m.group(1)} in {directory.name}/")
        seen.add(m.group(1))
        found.append(Migration(key=prefix + path.stem, path=path, sql=path.read_text()))
    return found


def all_migrations(tier: str) -> list[Migration]:
    ms = discover(MIGRATIONS_DIR)
    if tier in ("timescale", "timescale-apache") and TIMESCALE_DIR.exists():
        ms += discover(TIMESCALE_DIR, prefix="timescale/")
    if tier == "timescale" and TIMESCALE_TSL_DIR.exists():
        ms += discover(TIMESCALE_TSL_DIR, prefix="timescale-tsl/")
    return ms


BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    key text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS storage_capabilities (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    tier text NOT NULL,
    timescaledb_version text,
    license text,
    detected_at timestamptz NOT NULL DEFAULT now()
);
"""


def ensure_app_role(conn: psycopg.Connection) -> None:
    """Create the non-superuser role the app ``SET ROLE``s to, and let the DSN's user assume it."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone()
    if not exists:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(APP_ROLE)))
    is_member = conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [APP_ROLE]).fetchone()[0]
    if not is_member:
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(APP_ROLE)))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(APP_ROLE)))
    ensure_ingest_role(conn)


def ensure_ingest_role(conn: psycopg.Connection) -> bool:
    """The ingest writer's role: BYPASSRLS, because PostgreSQL refuses COPY FROM into a table
    with row-level security, and COPY is the ingest fast path. The writer checks every row's
    (tenant, signal) pair against ``signals`` itself. Creating a BYPASSRLS role needs a
    superuser; where that is not allowed the writer falls back to a staging table under RLS."""
    role = sql.Identifier(INGEST_ROLE)
    try:
        with conn.transaction():
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [INGEST_ROLE]).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER BYPASSRLS").format(role))
            if not conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [INGEST_ROLE]).fetchone()[0]:
                conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        return True
    except psycopg.Error as exc:
        log.warning("migrations.ingest_role_unavailable", extra={"error": str(exc).splitlines()[0][:200]})
        return False


def detect_tier(conn: psycopg.Connection) -> tuple[str, str | None, str | None]:
    """(tier, timescaledb version, license) — creating the extension where it is available."""
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if not available:
        return "postgres", None, None
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        log.warning("migrations.timescaledb_unusable", extra={"error": str(exc).splitlines()[0]})
        return "postgres", None, None
    version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()[0]
    license_ = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()[0]
    return ("timescale" if license_ == "timescale" else "timescale-apache"), version, license_


def grant_app_privileges(conn: psycopg.Connection, tier: str = "postgres") -> None:
    for name in (APP_ROLE, INGEST_ROLE):
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone():
            continue
        role = sql.Identifier(name)
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(role))
        conn.execute(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role))
        conn.execute(sql.SQL("REVOKE INSERT, UPDATE, DELETE ON schema_migrations, storage_capabilities FROM {}").format(role))
    if tier in ("timescale", "timescale-apache"):
        seal_chunks(conn)


APP_CHUNK_GRANTS = """
SELECT c.oid::regclass::text AS chunk
FROM _timescaledb_catalog.chunk ch
JOIN pg_class c ON c.oid = ch.relid
WHERE EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = %(role)s::regrole)
   OR EXISTS (SELECT 1 FROM pg_attribute att, aclexplode(att.attacl) a
              WHERE att.attrelid = c.oid AND a.grantee = %(role)s::regrole)
"""


def seal_chunks(conn: psycopg.Connection) -> None:
    """TimescaleDB tiers: the application role reaches no chunk or internal table directly.

    Chunks carry no row-level security, and TimescaleDB copies a hypertable's table-level
    privileges onto every chunk it creates, so a role granted on the hypertable could name a
    chunk and read another tenant's rows. The app therefore holds column-level privileges on the
    hypertables it writes (PostgreSQL checks only the hypertable when a query goes through it,
    and TimescaleDB copies no column privileges to new chunks), none on the samples and
    aggregates (read through the tenant views), and every grant TimescaleDB propagated to an
    existing chunk is taken back here, after each migration run. A hypertable without row
    security (TimescaleDB refuses continuous aggregates over one that has it) gets no privilege
    at all: its rows are read only through views that carry the tenant predicate.
    """
    app = sql.Identifier(APP_ROLE)
    hypertables = [r[0] for r in conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public'")]
    without_rls = {r[0] for r in conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%s) "
        "AND NOT relrowsecurity", [hypertables])}
    caggs = [r[0] for r in conn.execute(
        "SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'public'")]
    for name in hypertables + caggs:
        conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(name), app))
        if name in without_rls or name in caggs:
            continue
        columns = sql.SQL(", ").join(sql.Identifier(r[0]) for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum", [name]))
        conn.execute(sql.SQL("GRANT SELECT ({c}), INSERT ({c}), UPDATE ({c}) ON {t} TO {r}").format(
            c=columns, t=sql.Identifier(name), r=app))
    for (chunk,) in conn.execute(APP_CHUNK_GRANTS, {"role": APP_ROLE}).fetchall():
        conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.SQL(chunk), app))


def migrate(dsn: str) -> dict:
    """Apply pending migrations; returns {"tier", "applied": [...]}. Safe to run concurrently."""
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            with conn.transaction():
                conn.execute(BOOTSTRAP)
                ensure_app_role(conn)
            tier, version, license_ = detect_tier(conn)
            with conn.transaction():
                conn.execute(
                    """INSERT INTO storage_capabilities (id, tier, timescaledb_version, license, detected_at)
                       VALUES (true, %s, %s, %s, now())
                       ON CONFLICT (id) DO UPDATE SET tier = EXCLUDED.tier,
                         timescaledb_version = EXCLUDED.timescaledb_version, license = EXCLUDED.license,
                         detected_at = now()""",
                    [tier, version, license_],
                )
            done = {r[0]: r[1] for r in conn.execute("SELECT key, checksum FROM schema_migrations").fetchall()}
            for m in all_migrations(tier):
                if m.key in done:
                    if done[m.key] != m.checksum:
                        raise MigrationError(
                            f"migration {m.key} was changed after it was applied (checksum mismatch). "
                            "Migrations are additive: restore the file and add a new migration instead."
                        )
                    continue
                _apply(conn, m)
                applied_now.append(m.key)
            with conn.transaction():
                grant_app_privileges(conn, tier)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    if applied_now:
        log.info("migrations.applied", extra={"count": len(applied_now), "keys": applied_now, "tier": tier})
    return {"tier": tier, "applied": applied_now}


def _apply(conn: psycopg.Connection, m: Migration) -> None:
    import time

    started = time.monotonic()
    try:
        if m.transactional:
            with conn.transaction():
                conn.execute(m.sql)
                _record(conn, m, started)
        else:
            for statement in split_statements(m.sql):
                conn.execute(statement)
            _record(conn, m, started)
    except psycopg.Error as exc:
        raise MigrationError(f"migration {m.key} failed: {str(exc).strip()}") from None


def _record(conn: psycopg.Connection, m: Migration, started: float) -> None:
    import time

    conn.execute(
        "INSERT INTO schema_migrations (key, checksum, duration_ms) VALUES (%s, %s, %s)",
        [m.key, m.checksum, int((time.monotonic() - started) * 1000)],
    )


def split_statements(text: str) -> list[str]:
    """Split a non-transactional file on ``;`` at line ends (such files hold simple DDL only)."""
    parts, buf = [], []
    for line in text.splitlines():
        if line.strip().startswith("--") and not buf:
            continue
        buf.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip()
            if stmt:
                parts.append(stmt)
            buf = []
    tail = "\n".join(buf).strip()
    if tail:
        parts.append(tail)
    return parts


def pending(dsn: str) -> list[str]:
    """Keys not yet applied (or changed), for /readyz. Raises on connection failure."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        has_table = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
        if not has_table:
            return [m.key for m in discover(MIGRATIONS_DIR)]
        tier_row = conn.execute("SELECT tier FROM storage_capabilities").fetchone()
        done = {r[0]: r[1] for r in conn.execute("SELECT key, checksum FROM schema_migrations").fetchall()}
    tier = tier_row[0] if tier_row else "postgres"
    return [m.key for m in all_migrations(tier) if done.get(m.key) != m.checksum]


_FORBIDDEN = [
    (re.compile(r"\bDROP\s+(TABLE|COLUMN|VIEW|MATERIALIZED\s+VIEW|INDEX|SCHEMA|TYPE|FUNCTION|TRIGGER|POLICY|"
                r"CONSTRAINT|SEQUENCE|EXTENSION|DATABASE|ROLE)\b", re.I), "drops"),
    (re.compile(r"\bRENAME\b", re.I), "renames"),
    (re.compile(r"\bTRUNCATE\b", re.I), "truncates"),
    (re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b", re.I), "changes a column type"),
    (re.compile(r"\bDELETE\s+FROM\b", re.I), "deletes rows"),
]


def _strip_sql_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def additive_violations(text: str) -> list[str]:
    """What in a migration breaks the additive-only rule (empty when it only adds)."""
    body = _strip_sql_comments(text)
    body = re.sub(r"\$\$.*?\$\$", " ", body, flags=re.S)  # function bodies may legitimately delete rows
    found = []
    for pattern, what in _FORBIDDEN:
        for m in pattern.finditer(body):
            found.append(f"{what}: {' '.join(m.group(0).split())}")
    return found
