"""What a run reads: the assets of its scope, their mapped signals with recent aggregates,
their health and open incidents — one tenant's rows only, loaded in one tenant transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from optria.optimization import store
from optria.optimization.analytics import AssetData, Bucket, SignalData
from optria.timeseries import store as ts
from optria.twin.scoring import Limits

MINUTE_WINDOW_H = 3
HOUR_WINDOW_H = 26


@dataclass
class RunInputs:
    assets: list[AssetData]
    meta: dict[int, dict[str, Any]] = field(default_factory=dict)      # asset id → code, name, unit, criticality
    health: dict[int, dict[str, Any]] = field(default_factory=dict)
    incidents: list[dict[str, Any]] = field(default_factory=list)


def _buckets(rows: list[dict[str, Any]]) -> tuple[Bucket, ...]:
    return tuple(Bucket(r["bucket"], int(r["n"] or 0), float(r["avg"]), r["min"], r["max"])
                 for r in rows if r["avg"] is not None)


async def load(conn: store.Conn, tenant_id: UUID, asset_ids: list[int], now: datetime) -> RunInputs:
    if not asset_ids:
        return RunInputs([])
    params = {"tenant_id": tenant_id, "asset_ids": asset_ids}
    assets = await store.fetch_all(conn, store.ASSETS, params)
    signals = await store.fetch_all(conn, store.MAPPED_SIGNALS, params)
    ids = [s["signal_id"] for s in signals]
    minutes = await ts.trend(conn, tenant_id, ids, hours=MINUTE_WINDOW_H, resolution="1m", until=now)
    hours = await ts.trend(conn, tenant_id, ids, hours=HOUR_WINDOW_H, resolution="1h", until=now)
    by_asset: dict[int, list[SignalData]] = {}
    for s in signals:
        by_asset.setdefault(s["asset_id"], []).append(SignalData(
            signal_id=s["signal_id"], name=s["name"], role=s["role"], unit=s["unit"], scale=s["scale"],
            offset=s["offset"], limits=Limits(s["warn_low"], s["warn_high"], s["crit_low"], s["crit_high"]),
            expected_interval_s=s["expected_interval_s"], latest=s["latest"], latest_time=s["latest_time"],
            quality=s["quality"], source_connected=s["source_connected"], source_seen=s["source_seen"], minutes=_buckets(minutes.get(s["signal_id"], [])),
            hours=_buckets(hours.get(s["signal_id"], []))))
    out = RunInputs([])
    for a in assets:
        out.assets.append(AssetData(a["id"], a["code"], a["name"], a["asset_type"], a["criticality"], a["unit_id"],
                                    tuple(by_asset.get(a["id"], []))))
        out.meta[a["id"]] = {"code": a["code"], "name": a["name"], "name_ar": a["name_ar"], "type": a["asset_type"],
                             "criticality": a["criticality"], "unit": a["unit_name"], "unit_code": a["unit_code"]}
    out.health = {h["asset_id"]: h for h in await store.fetch_all(conn, store.HEALTH, params)}
    out.incidents = await store.open_incidents(conn, tenant_id, asset_ids)
    return out


def window_text(now: datetime) -> dict[str, str]:
    return {"minutes_since": (now - timedelta(hours=MINUTE_WINDOW_H)).isoformat(),
            "hours_since": (now - timedelta(hours=HOUR_WINDOW_H)).isoformat(), "until": now.isoformat()}
