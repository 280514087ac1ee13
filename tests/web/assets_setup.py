"""Arranging asset data for the assets tests: a small plant per tenant, written through the store.

Not fixtures (tests call these with the tenant they need), and not the code under test:
the pages and API are exercised through HTTP by the tests themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from optria.assets import lifecycle, store
from optria.assets.lifecycle import Actor
from optria.db import Database


@dataclass
class PlantIds:
    tenant_id: UUID
    site_id: int
    other_site_id: int
    unit_id: int
    other_unit_id: int      # a unit of other_site
    assets: dict[str, int] = field(default_factory=dict)   # code -> id
    alert_id: int | None = None
    work_order_id: int | None = None


def asset_values(site_id: int, unit_id: int | None, code: str, name: str, **extra: Any) -> dict[str, Any]:
    values = {"site_id": site_id, "unit_id": unit_id, "code": code, "name": name, "name_ar": None,
              "asset_type": "pump", "criticality": "medium", "description": "", "expected_interval_s": 60}
    values.update(extra)
    return values


async def make_plant(db: Database, tenant_id: UUID, *, tag: str = "A", assets: int = 3,
                     with_activity: bool = False) -> PlantIds:
    """Two sites (``{tag}-North`` with unit ``{tag}-U1``, ``{tag}-South`` with ``{tag}-U2``) and ``assets``
    pumps ``{tag}-P-1..n`` in the north unit; with_activity adds an alert and a work order on the first."""
    async with db.tenant(tenant_id) as conn:
        north = await store.insert_site(conn, tenant_id, {"code": f"{tag}-North", "name": f"{tag} North Plant",
                                                          "name_ar": None, "description": "", "timezone": "UTC"})
        south = await store.insert_site(conn, tenant_id, {"code": f"{tag}-South", "name": f"{tag} South Plant",
                                                          "name_ar": None, "description": "", "timezone": "UTC"})
        u1 = await store.insert_unit(conn, tenant_id, {"site_id": north, "code": f"{tag}-U1", "name": f"{tag} Unit One",
                                                       "name_ar": None})
        u2 = await store.insert_unit(conn, tenant_id, {"site_id": south, "code": f"{tag}-U2", "name": f"{tag} Unit Two",
                                                       "name_ar": None})
        ids = PlantIds(tenant_id, north, south, u1, u2)
        for n in range(1, assets + 1):
            code = f"{tag}-P-{n}"
            ids.assets[code] = await store.insert_asset(conn, tenant_id, asset_values(north, u1, code, f"{tag} Pump {n}"), None)
        if with_activity and ids.assets:
            first = next(iter(ids.assets.values()))
            actor = Actor.system("test")
            ids.alert_id = await lifecycle.raise_alert(conn, tenant_id, first, {
                "severity": "high", "title": f"{tag} bearing hot", "description": "", "source": "manual",
                "source_ref": None}, actor)
            ids.work_order_id = await lifecycle.open_work_order(conn, tenant_id, first, {
                "title": f"{tag} inspect bearing", "description": "", "priority": "high", "alert_id": ids.alert_id}, actor)
    return ids


async def set_health(db: Database, tenant_id: UUID, asset_id: int, status: str, score: float | None,
                     probability: float | None, *, age_s: float = 0) -> None:
    async with db.tenant(tenant_id) as conn:
        await store.record_health(conn, tenant_id, asset_id, time=datetime.now(timezone.utc) - timedelta(seconds=age_s),
                                  status=status, health_score=score, failure_probability=probability)


def rows(owner_conn, sql: str, *params: Any) -> list[tuple]:
    return owner_conn.execute(sql, params).fetchall()
