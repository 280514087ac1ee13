"""The card grid's signal figures from the scoring job's summary (migration 0018, optria.twin.summary):
the same figures the grid computes from the signals, and used only while they can still be right."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg

from optria.db import Database
from optria.twin import store
from optria.twin.jobs import ScoringJob
from tests.twin_arrange import Mapped, heartbeat, map_signals, write_values
from tests.web.assets_setup import make_plant

ROLES = ["vibration", "temperature", "pressure"]


async def _arrange(db: Database, db_dsn: str, owner_conn, tag: str) -> tuple[tuple[UUID, str], dict[str, int],
                                                                              dict[str, Mapped]]:
    """One asset per way a signal can stand (every figure far from its boundary, so the job's
    judgement and the page's a moment later agree)."""
    slug = f"sum-{tag.lower()}-{datetime.now().microsecond}"
    tenant_id = owner_conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s) RETURNING id",
                                   [slug, tag]).fetchone()[0]
    plant = await make_plant(db, tenant_id, tag=tag, assets=7)
    ids = {k.rsplit("-", 1)[1]: v for k, v in plant.assets.items()}
    now = datetime.now(timezone.utc)
    old, recent = now - timedelta(minutes=30), now - timedelta(seconds=20)
    m = {n: map_signals(owner_conn, tenant_id, ids[n], ROLES) for n in ("1", "2", "3", "4", "5", "6")}
    # 1: a live source vouches for old values; one signal never reported
    heartbeat(owner_conn, m["1"])
    await write_values(db_dsn, m["1"], {"vibration": 2.2, "temperature": 70.0}, at=old)
    # 2: no worker has reported: a recent value, an old one, a bad one
    await write_values(db_dsn, m["2"], {"vibration": 2.2}, at=recent)
    await write_values(db_dsn, m["2"], {"temperature": 70.0}, at=old)
    await write_values(db_dsn, m["2"], {"pressure": 5.0}, at=recent, quality=3)
    # 3: the worker reports but is reconnecting: values judged by their age
    heartbeat(owner_conn, m["3"], connected=False)
    await write_values(db_dsn, m["3"], {"vibration": 2.2, "pressure": 4.0}, at=recent)
    await write_values(db_dsn, m["3"], {"temperature": 70.0}, at=old)
    # 4: the worker is gone (heartbeat lapsed): recent values are not current
    heartbeat(owner_conn, m["4"], ago_s=45)
    await write_values(db_dsn, m["4"], {"vibration": 2.2, "temperature": 70.0, "pressure": 4.0}, at=recent)
    # 5: marked stale by its worker (lost the source), one value still recent
    await write_values(db_dsn, m["5"], {"vibration": 2.2, "temperature": 70.0}, at=recent, quality=4)
    await write_values(db_dsn, m["5"], {"pressure": 4.0}, at=recent)
    # 6: mapped, no data yet; 7: nothing mapped
    return (tenant_id, slug), ids, m


async def _figures(db: Database, tenant_id: UUID, *, summarized: bool) -> dict[int, tuple]:
    """asset id -> (figures, shown signals, from the summary?) of the grid's first page, with or
    without the summaries."""
    async with db.tenant(tenant_id) as conn, conn.transaction(force_rollback=True):
        if not summarized:
            await conn.execute("DELETE FROM asset_signal_summary WHERE tenant_id = %s", [tenant_id])
        rows, _ = await store.grid(conn, tenant_id, site_id=None, unit_id=None, status=None, q=None, page=1,
                                   page_size=50, top=2)
    return {r["id"]: (tuple(r[c] for c in store.SUMMARY_FIGURES), r["signals"], bool(r.get("summarized")))
            for r in rows}


def _summaries(owner_conn, tenant_id: UUID) -> dict[int, dict]:
    cur = owner_conn.cursor(row_factory=psycopg.rows.dict_row)
    return {r["asset_id"]: r for r in cur.execute("SELECT * FROM asset_signal_summary WHERE tenant_id = %s",
                                                  [tenant_id])}


async def test_the_summary_gives_the_figures_the_grid_computes(db: Database, db_dsn: str, owner_conn) -> None:
    (tenant_id, _), ids, m = await _arrange(db, db_dsn, owner_conn, "S")
    computed = await _figures(db, tenant_id, summarized=False)
    await ScoringJob(db, notify=False).run_once()
    kept = _summaries(owner_conn, tenant_id)
    assert set(kept) == {ids[n] for n in ("1", "2", "3", "4", "5", "6")}   # every mapped asset; not the unmapped one
    assert kept[ids["1"]]["live_sources"] == [m["1"].integration_id] and kept[ids["3"]]["live_sources"] == []
    summarized = await _figures(db, tenant_id, summarized=True)
    assert {a for a, f in summarized.items() if f[2]} == set(kept)    # read from the summaries
    assert not any(f[2] for f in computed.values())
    assert {a: f[:2] for a, f in summarized.items()} == {a: f[:2] for a, f in computed.items()}   # same cards
    by_name = {n: computed[ids[n]][0] for n in ids}
    assert [f[:3] for f in by_name.values()] == [(3, 2, 2), (3, 3, 1), (3, 3, 2), (3, 3, 0), (3, 3, 1), (3, 0, 0),
                                                 (0, 0, 0)]
    assert by_name["1"][5] is None and by_name["2"][4] is not None   # a live source: no time when all go stale


async def test_the_grid_reads_the_summary_only_while_it_holds(db: Database, db_dsn: str, owner_conn, web,
                                                             accounts) -> None:
    tenant, ids, m = await _arrange(db, db_dsn, owner_conn, "V")
    tenant_id, asset = tenant[0], ids["1"]               # a live source vouches for 2 of its 3 signals
    await ScoringJob(db, notify=False).run_once()

    def tamper(n: int, **extra: str) -> None:
        """A summary that says ``n`` signals are current (the signals say 2, or 0 once the source drops)."""
        sets = ", ".join(f"{k} = {v}" for k, v in {"n_fresh": n, **extra}.items())
        owner_conn.execute(f"UPDATE asset_signal_summary SET {sets} WHERE asset_id = %s", [asset])

    async def n_fresh() -> int:
        return (await _figures(db, tenant_id, summarized=True))[asset][0][2]

    assert await n_fresh() == 2
    tamper(0)
    assert await n_fresh() == 0                        # the grid takes the figures from the summary
    await web.login(await accounts.user("viewer", tenant))
    html = (await web.get("/digital-twin")).text
    card = re.search(rf'<article class="twin-card" data-asset-id="{asset}"[^>]*>', html)
    assert card and 'data-data="all"' in card.group(0)   # ... and so does the page ("data is stale")

    tamper(1, valid_until="now() - interval '1 second'")
    assert await n_fresh() == 2                        # too old (the job stopped): computed from the signals
    tamper(1, valid_until="now() + interval '1 minute'")
    assert await n_fresh() == 1
    heartbeat(owner_conn, m["1"], connected=False)    # the source that vouched drops: its old values are not current
    assert await n_fresh() == 0
    heartbeat(owner_conn, m["1"])
    assert await n_fresh() == 1                        # live again, as the summary says: it holds again

    owner_conn.execute("UPDATE external_signal_mappings SET warn_high = 8.0 WHERE asset_id = %s AND metric_role = "
                       "'vibration'", [asset])
    assert asset not in _summaries(owner_conn, tenant_id)   # a mapping changed: the asset's summary is gone
    assert await n_fresh() == 2

    await write_values(db_dsn, m["1"], {"pressure": 4.0})
    await ScoringJob(db, notify=False).run_once()       # the job writes it again, with the new data
    assert _summaries(owner_conn, tenant_id)[asset]["n_with_data"] == 3 and await n_fresh() == 3
