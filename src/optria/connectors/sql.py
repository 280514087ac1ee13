"""SQL historian connector (PostgreSQL): a configured query returning (tag, time, value) rows.

Gated by EXTERNAL_DB_ENABLE. Every session is read-only (``default_transaction_read_only``)
and bounded by a statement timeout, so a tenant's query can neither write nor hang the
worker. The query returns ``tag, time, value`` and optionally a fourth ``quality`` column
(good, questionable, substituted, bad). It receives three named parameters and uses those
it needs:

- ``%(watermark)s`` (timestamptz, required by the integration form): every row still needed
  is newer than it: the oldest of the mapped tags' own watermarks (each tag's newest stored
  time; see :mod:`ingest.workers.sql` for the bound on tags far behind);
- ``%(tags)s`` (text[]): the mapped tags;
- ``%(watermarks)s`` (timestamptz[]): each tag's own watermark, in the order of ``%(tags)s``.

The simple form reads every tag from the oldest watermark; the ingest worker keeps, per tag,
only rows newer than that tag's own watermark::

    SELECT tag, ts, value FROM historian.samples WHERE ts > %(watermark)s ORDER BY ts LIMIT 50000

The per-tag form returns only new rows, so a tag the historian writes late costs nothing::

    SELECT s.tag, s.ts, s.value
    FROM historian.samples s
    JOIN unnest(%(tags)s::text[], %(watermarks)s::timestamptz[]) AS w(tag, since)
      ON s.tag = w.tag AND s.ts > w.since
    WHERE s.ts > %(watermark)s
    ORDER BY s.ts LIMIT 50000

A query with a LIMIT must order by time (the worker reads it again from the newest time of a
full page) and its LIMIT must exceed the rows of one timestamp. Browsing runs the query with
no tags: with the per-tag form, set ``tags_query`` to list the tags.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import psycopg

from optria.connectors.base import BrowseItem, ConnectorError, Sample, TestResult, test_message

log = logging.getLogger("optria.connectors.sql")

DEFAULT_TIMEOUT_S = 10.0
DISABLED = "SQL sources are disabled on this platform (EXTERNAL_DB_ENABLE is off)."


def merge_config(config: Mapping[str, Any] | None, settings: Any = None) -> dict[str, Any]:
    cfg = dict(config or {})
    return {
        "dsn": (cfg.get("dsn") or "").strip(),
        "password": cfg.get("password") or None,
        "query": (cfg.get("query") or "").strip(),
        "tags_query": (cfg.get("tags_query") or "").strip(),
        "poll_interval_s": float(cfg.get("poll_interval_s") or 10.0),
        "timeout_s": float(cfg.get("timeout_s") or DEFAULT_TIMEOUT_S),
        "enabled": bool(getattr(settings, "external_db_enable", False)) if settings is not None else True,
    }


def _conninfo(cfg: Mapping[str, Any]) -> str:
    if not cfg["dsn"]:
        raise ConnectorError("No connection string is configured for this SQL source.", code="no_endpoint")
    try:
        extra: dict[str, Any] = {"connect_timeout": max(1, int(cfg["timeout_s"])),
                                 "options": f"-c default_transaction_read_only=on -c statement_timeout={int(cfg['timeout_s'] * 1000)}"}
        if cfg.get("password"):
            extra["password"] = cfg["password"]
        return psycopg.conninfo.make_conninfo(cfg["dsn"], **extra)
    except psycopg.ProgrammingError:
        raise ConnectorError("The connection string is not valid.", code="invalid_endpoint") from None


def describe(cfg: Mapping[str, Any]) -> str:
    try:
        info = psycopg.conninfo.conninfo_to_dict(cfg["dsn"])
    except psycopg.ProgrammingError:
        return "(invalid connection string)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


async def connect(cfg: Mapping[str, Any]) -> psycopg.AsyncConnection:
    if not cfg.get("enabled", True):
        raise ConnectorError(DISABLED, code="disabled")
    try:
        return await psycopg.AsyncConnection.connect(_conninfo(cfg), autocommit=True)
    except psycopg.OperationalError as exc:
        text = str(exc).lower()
        code = ("bad_credentials" if "password" in text or "authentication" in text else
                "dns_failure" if "could not translate host name" in text else
                "connection_refused" if "refused" in text else
                "timeout" if "timeout" in text else "connection_failed")
        raise ConnectorError(f"Cannot connect to the SQL source at {describe(cfg)} ({code.replace('_', ' ')}).",
                             code=code) from None


async def test_connection(config: Mapping[str, Any], *, timeout: float | None = None) -> TestResult:
    cfg = dict(config)
    if timeout:
        cfg["timeout_s"] = timeout
    started = time.perf_counter()
    details: dict[str, Any] = {"endpoint": describe(cfg) if cfg.get("dsn") else None}
    try:
        async with await connect(cfg) as conn:
            version = (await (await conn.execute("SHOW server_version")).fetchone())[0]
            details["server_version"] = version
            details["read_only"] = (await (await conn.execute("SHOW default_transaction_read_only")).fetchone())[0] == "on"
            if cfg.get("query"):
                cur = await conn.execute(f"SELECT * FROM ({cfg['query']}) AS q LIMIT 0",
                                         query_params(datetime.now(timezone.utc)))
                columns = [c.name for c in cur.description or []]
                details["columns"] = columns
                if len(columns) < 3:
                    return TestResult(success=False, message="The query must return tag, time and value columns.",
                                      details={**details, "reason": "bad_query"})
    except ConnectorError as exc:
        return TestResult(success=False, message=exc.message, details={**details, "reason": exc.code})
    except psycopg.Error as exc:
        return TestResult(success=False, message=f"The query failed: {str(exc).splitlines()[0][:200]}",
                          details={**details, "reason": "bad_query"})
    details["round_trip_ms"] = round((time.perf_counter() - started) * 1000, 1)
    details["msg"] = test_message("connected_sql", version=details["server_version"])
    return TestResult(success=True, message=f"Connected to PostgreSQL {details['server_version']} (read-only).",
                      details=details)


def query_params(watermark: datetime, tags: Sequence[str] = (),
                 watermarks: Sequence[datetime] = ()) -> dict[str, Any]:
    """The named parameters every query receives (it uses those it names)."""
    return {"watermark": watermark, "tags": list(tags), "watermarks": list(watermarks)}


def uses_tag_watermarks(query: str) -> bool:
    """Whether the query filters each tag by its own watermark itself."""
    return "%(watermarks)s" in query


async def fetch_since(conn: psycopg.AsyncConnection, query: str, watermark: datetime, *,
                      tags: Sequence[str] = (), watermarks: Sequence[datetime] = ()) -> list[Sample]:
    """Run the query; rows become Samples with the tag as ``signal_id`` (naive times are UTC)."""
    cur = await conn.execute(query, query_params(watermark, tags, watermarks))
    out = []
    for row in await cur.fetchall():
        tag, t, value = row[0], row[1], row[2]
        if isinstance(t, datetime) and t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        out.append(Sample(signal_id=str(tag), time=t, value=value if not isinstance(value, str) else None,
                          state=value if isinstance(value, str) else None,
                          quality=str(row[3]) if len(row) > 3 and row[3] else "good"))
    return out


async def browse(config: Mapping[str, Any], *, limit: int = 500) -> list[BrowseItem]:
    """Tags from ``tags_query`` (one column of tag names), or the distinct tags of recent rows."""
    cfg = dict(config)
    async with await connect(cfg) as conn:
        if cfg.get("tags_query"):
            rows = await (await conn.execute(cfg["tags_query"])).fetchall()
            tags = [str(r[0]) for r in rows[:limit]]
        else:
            samples = await fetch_since(conn, cfg["query"], datetime(2000, 1, 1, tzinfo=timezone.utc))
            tags = sorted({s.signal_id for s in samples})[:limit]
    return [BrowseItem(id=t, name=t, display_name=t, path=t, is_signal=True) for t in tags]
