"""SQL historian → ingest → database, against a real PostgreSQL source database.

The source has tags written on time, a tag the historian writes late (its rows arrive with
times older than the other tags' newest), and a tag nobody mapped. Whatever the form of the
query (the simple ``%(watermark)s`` one with a LIMIT read in pages, or the per-tag form), what
is stored must be exactly the mapped tags' source rows: none missing, none twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql as pgsql

from tests.fix_ingest import arrange_integration, ingest_settings, running_supervisor, wait_for

MAPPED = ["FT-101", "TT-102", "PT-LATE"]
LATE_BY = timedelta(seconds=3)

SIMPLE = "SELECT tag, ts, value FROM historian WHERE ts > %(watermark)s ORDER BY ts LIMIT 300"
PER_TAG = """
SELECT h.tag, h.ts, h.value
FROM historian h
JOIN unnest(%(tags)s::text[], %(watermarks)s::timestamptz[]) AS w(tag, since) ON h.tag = w.tag AND h.ts > w.since
WHERE h.ts > %(watermark)s
ORDER BY h.ts LIMIT 100
"""


@pytest.fixture
def source_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A historian database of its own on the test server: historian(tag, ts, value)."""
    name = f"historian_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(pg_admin_dsn, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE historian (tag text NOT NULL, ts timestamptz NOT NULL, value float8, "
                     "PRIMARY KEY (tag, ts))")
    yield dsn
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))


def _value(tag: str, t: datetime) -> float:
    return zlib.crc32(f"{tag}@{t.isoformat()}".encode()) % 100_000 / 100


def _rows(tag: str, start: datetime, end: datetime, step: timedelta) -> list[tuple]:
    out, t = [], start
    while t <= end:
        out.append((tag, t, _value(tag, t)))
        t += step
    return out


async def _insert(conn: psycopg.AsyncConnection, rows: list[tuple]) -> None:
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO historian VALUES (%s, %s, %s)", rows)


async def _historian(dsn: str, stop: asyncio.Event) -> None:
    """Writes FT-101/TT-102 every 0.2 s at the current time, and PT-LATE every 1.5 s up to 3 s ago."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        late_from = datetime.now(timezone.utc) - timedelta(minutes=2)
        last_late = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            now = datetime.now(timezone.utc)
            rows = [("FT-101", now, _value("FT-101", now)), ("TT-102", now, _value("TT-102", now)),
                    ("XX-UNMAPPED", now, 1.0)]
            if loop.time() - last_late >= 1.5:
                late = _rows("PT-LATE", late_from, now - LATE_BY, timedelta(milliseconds=250))
                late_from = late[-1][1] + timedelta(milliseconds=250) if late else late_from
                rows += late
                last_late = loop.time()
            await _insert(conn, rows)
            await asyncio.sleep(0.2)


def _kill_worker_session(dsn: str) -> int:
    """End the ingest worker's session on the source (the client that is not the historian's writer;
    its last statement is a read of the historian or the end of a poll's snapshot)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return len(conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "AND query NOT ILIKE 'INSERT%'").fetchall())


def _source(dsn: str, tags: list[str] = MAPPED) -> dict[str, set[tuple]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT tag, ts, value FROM historian WHERE tag = ANY(%s)", [tags]).fetchall()
    out: dict[str, set[tuple]] = {t: set() for t in tags}
    for tag, ts, value in rows:
        out[tag].add((ts, value))
    return out


def _stored(dsn: str, signals: dict[str, int]) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        return {tag: [tuple(r) for r in conn.execute(
            "SELECT time, value FROM signal_samples WHERE signal_id = %s ORDER BY time", [sid]).fetchall()]
            for tag, sid in signals.items()}


@pytest.mark.parametrize("query", [SIMPLE, PER_TAG], ids=["simple-query-paged", "per-tag-query"])
async def test_sql_tags_are_stored_exactly_with_a_watermark_per_tag(query, source_dsn, db_dsn, owner_conn,
                                                                    tmp_path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    history = (_rows("FT-101", now - timedelta(minutes=10), now, timedelta(seconds=1))
               + _rows("TT-102", now - timedelta(minutes=10), now, timedelta(seconds=1))
               + _rows("PT-LATE", now - timedelta(minutes=10), now - timedelta(minutes=2), timedelta(seconds=1))
               + _rows("XX-UNMAPPED", now - timedelta(minutes=10), now, timedelta(seconds=1)))
    async with await psycopg.AsyncConnection.connect(source_dsn, autocommit=True) as conn:
        await _insert(conn, history)
    arranged = arrange_integration(owner_conn, "sql", {"dsn": source_dsn, "query": query, "poll_interval_s": 0.5},
                                   MAPPED)
    stop = asyncio.Event()
    async with running_supervisor(ingest_settings(tmp_path, EXTERNAL_DB_ENABLE="true"), db_dsn) as sup:
        run = await wait_for(lambda: sup.running.get(arranged.integration_id), what="the worker")
        writer = asyncio.create_task(_historian(source_dsn, stop))
        try:
            await wait_for(lambda: run.health.state == "streaming" and run.health.samples_total > 0, timeout=20,
                           what="the first pass")
            # the first pass reads the history back as backfill (committed in a few transactions, pages)
            await wait_for(lambda: run.health.backfill_total >= 10 * 60 * 2, timeout=20, what="the history read back")
            backfilled = run.health.backfill_total
            await asyncio.sleep(4)
            # the source drops the worker's session: it reconnects and reads on from each tag's watermark
            assert _kill_worker_session(source_dsn) == 1
            await wait_for(lambda: run.health.reconnects >= 1 and run.health.state == "streaming", timeout=15,
                           what="the worker to reconnect")
            await asyncio.sleep(4)
        finally:
            stop.set()
            await writer
        source = _source(source_dsn)
        expected = sum(len(v) for v in source.values())
        with contextlib.suppress(AssertionError):   # the comparison below says what is missing
            await wait_for(lambda: sum(len(v) for v in _stored(db_dsn, arranged.signals).values()) >= expected,
                           timeout=15, what="the last rows")
        health = run.health.last_error, run.health.state, dict(run.health.rejected_reasons)
        live = run.health.samples_total - run.health.backfill_total
    stored = _stored(db_dsn, arranged.signals)
    report = {}
    for tag in MAPPED:
        rows = stored[tag]
        missing, extra = source[tag] - set(rows), set(rows) - source[tag]
        report[tag] = f"source {len(source[tag])}, stored {len(rows)}, missing {len(missing)}, " \
                      f"duplicates {len(rows) - len(set(rows))}, not in source {len(extra)}"
        assert not missing and not extra and len(rows) == len(set(rows)) == len(source[tag]), (tag, report[tag])
    print(report, f"backfilled {backfilled}, live {live}")
    assert health == (None, "streaming", {}), "the error is resolved; rows of unmapped tags are not rejects"
    assert backfilled >= 10 * 60 * 2, "the first pass reads the history as backfill"
    assert live >= 8 * 2 * 4, "then every poll's rows are live"
    # the late tag really was late: rows newer than its own watermark but older than the others'
    assert len(source["PT-LATE"]) > 8 * 60 + 8 * 3


async def test_rows_a_late_tag_commits_between_two_pages_of_a_poll_are_read(source_dsn, db_dsn, owner_conn, tmp_path,
                                                                            monkeypatch) -> None:
    """The race a loaded run hit, made certain: the late tag holds the query's floor minutes back, so
    each poll pages through the other tag's rows (3 pages of 300); its writer commits a batch right
    after a poll's first page. Those rows must all be stored (they were lost when a later page read
    the batch's newer rows and moved the tag's watermark over the older ones)."""
    from optria.connectors import sql as connector
    now = datetime.now(timezone.utc).replace(microsecond=0)
    await _insert_history(source_dsn, _rows("FT-101", now - timedelta(minutes=3), now, timedelta(milliseconds=200))
                          + _rows("PT-LATE", now - timedelta(minutes=10), now - timedelta(minutes=3),
                                  timedelta(seconds=1)))
    tags = ["FT-101", "PT-LATE"]
    arranged = arrange_integration(owner_conn, "sql", {"dsn": source_dsn, "query": SIMPLE, "poll_interval_s": 0.5},
                                   tags)
    batch = _rows("PT-LATE", now - timedelta(minutes=3) + timedelta(milliseconds=250), now - LATE_BY,
                  timedelta(milliseconds=250))
    real = connector.fetch_since
    state = {"armed": False, "pages": 0, "committed": False}

    async def fetch_since(conn, query, watermark, **kw):
        if state["armed"] and not state["committed"]:
            state["pages"] += 1
            if state["pages"] == 2:            # the second page of an armed poll: the batch commits first
                await _insert_history(source_dsn, batch)
                state["committed"] = True
        return await real(conn, query, watermark, **kw)

    monkeypatch.setattr(connector, "fetch_since", fetch_since)
    async with running_supervisor(ingest_settings(tmp_path, EXTERNAL_DB_ENABLE="true"), db_dsn) as sup:
        run = await wait_for(lambda: sup.running.get(arranged.integration_id), what="the worker")
        await wait_for(lambda: run.health.state == "streaming" and run.health.backfill_total >= 900 + 421,
                       timeout=20, what="the history read back")
        await asyncio.sleep(1.0)              # between polls: the next one starts with its first page
        state["armed"] = True
        await wait_for(lambda: state["committed"], timeout=10, what="the batch committed mid-poll")
        source = _source(source_dsn, tags)
        await wait_for(lambda: len(_stored(db_dsn, arranged.signals)["PT-LATE"]) >= len(source["PT-LATE"]),
                       timeout=10, what="the late tag's rows")
    stored = _stored(db_dsn, arranged.signals)
    assert set(stored["PT-LATE"]) == source["PT-LATE"] and len(stored["PT-LATE"]) == len(source["PT-LATE"])
    assert set(stored["FT-101"]) == source["FT-101"]


async def _insert_history(dsn: str, rows: list[tuple]) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        async with conn.transaction():
            await _insert(conn, rows)

