"""Ingest fixtures: an integration with mapped signals arranged in SQL, and an in-process supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from ingest.supervisor import Supervisor
from optria.config import Settings
from optria.secretbox import SecretBox

INGEST_SECRET = "ingest-test-secret-" + "z" * 24


@dataclass
class Arranged:
    tenant_id: UUID
    integration_id: int
    asset_id: int
    signals: dict[str, int]      # external id → signal id


def ingest_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(SESSION_SECRET=INGEST_SECRET, APP_ENV="test", OPTRIA_DATA_DIR=str(tmp_path), **overrides)


def arrange_integration(conn: psycopg.Connection, kind: str, config: dict, external_ids: list[str], *,
                        secrets: dict[str, str] | None = None, slug: str | None = None,
                        tenant_id: UUID | None = None) -> Arranged:
    if tenant_id is None:
        tenant_id = conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, 'Ingest') RETURNING id",
                                 [slug or f"ing-{uuid.uuid4().hex[:6]}"]).fetchone()[0]
    site = conn.execute("INSERT INTO sites (tenant_id, code, name) VALUES (%s, %s, 'Site') RETURNING id",
                        [tenant_id, f"S{uuid.uuid4().hex[:4]}"]).fetchone()[0]
    unit = conn.execute("INSERT INTO units (tenant_id, site_id, code, name) VALUES (%s, %s, 'U', 'Unit') RETURNING id",
                        [tenant_id, site]).fetchone()[0]
    asset = conn.execute("INSERT INTO assets (tenant_id, site_id, unit_id, code, name) VALUES (%s, %s, %s, %s, 'Asset') "
                         "RETURNING id", [tenant_id, site, unit, f"A{uuid.uuid4().hex[:5]}"]).fetchone()[0]
    sealed = SecretBox(INGEST_SECRET.encode()).seal_dict(secrets or {}, context=f"{tenant_id}:integration")
    integration = conn.execute(
        "INSERT INTO integrations (tenant_id, kind, name, config, secrets) VALUES (%s, %s, %s, %s, %s) RETURNING id",
        [tenant_id, kind, f"{kind}-{uuid.uuid4().hex[:5]}", Jsonb(config), Jsonb(sealed)]).fetchone()[0]
    signals = {}
    for ext in external_ids:
        sid = conn.execute("INSERT INTO signals (tenant_id, integration_id, external_id, name) VALUES (%s, %s, %s, %s) "
                           "RETURNING id", [tenant_id, integration, ext, ext[-40:]]).fetchone()[0]
        conn.execute("INSERT INTO external_signal_mappings (tenant_id, signal_id, asset_id, metric_role) "
                     "VALUES (%s, %s, %s, 'other')", [tenant_id, sid, asset])
        signals[ext] = sid
    return Arranged(tenant_id, integration, asset, signals)


@contextlib.asynccontextmanager
async def running_supervisor(settings: Settings, dsn: str, **kwargs: Any) -> AsyncIterator[Supervisor]:
    kwargs.setdefault("scan_interval_s", 0.5)
    kwargs.setdefault("health_interval_s", 0.5)
    sup = Supervisor(settings, dsn, **kwargs)
    task = asyncio.create_task(sup.run())
    try:
        yield sup
    finally:
        sup.stop()
        await asyncio.wait_for(task, 60)


async def wait_for(predicate, timeout: float = 20.0, interval: float = 0.2, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def count_samples(dsn: str, signal_ids: list[int]) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM signal_samples WHERE signal_id = ANY(%s)", [signal_ids]).fetchone()[0]


def write_through_writer(conn: psycopg.Connection, samples: list) -> int:
    """Store ``samples`` (ingest.samples.Sample rows) through the real ingest writer, from sync
    arranging code: the rows reach the samples, the latest values, the commit log and each tier's
    aggregates exactly as ingested data does. Returns how many rows were new."""
    import concurrent.futures

    from ingest.writer import BACKFILL, Writer

    dsn = psycopg.conninfo.make_conninfo(conn.info.dsn, password=conn.info.password)

    async def write() -> int:
        writer = Writer(dsn, notify=False)
        try:
            return await writer.write_batch(samples, BACKFILL)
        finally:
            await writer.stop()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, write()).result()
