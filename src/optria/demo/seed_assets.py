"""Demo plant assets: the sites, units and assets of optria.demo.plant in a tenant.

Asset codes are the plant's codes (P-101, K-201, ...), so tag paths such as
``RasTanura.CrudeUnit.P-101.Vibration`` map to them by code. Idempotent: rows are inserted
by code when absent and never overwritten, so edits made in the UI survive a re-seed.
"""

from __future__ import annotations

import logging
from uuid import UUID

from optria.assets import store
from optria.db import Database
from optria.demo.plant import ASSETS, ROLE_AR, SITES

log = logging.getLogger("optria.demo")

DEMO_TIMEZONE = "Asia/Riyadh"
SITE_DESCRIPTION = "Simulated site of the demo plant; its data comes from the OPC-UA and PI Web API simulators."
SITE_DESCRIPTION_AR = "موقع محاكى من محطة العرض؛ تأتي بياناته من محاكيَي OPC-UA وPI Web API."


async def seed_demo_assets(db: Database, tenant_id: UUID | str) -> int:
    """Create the demo plant's sites, units and assets in ``tenant_id``; returns how many assets were new."""
    created = 0
    async with db.tenant(tenant_id) as conn:
        for site in SITES:
            await store.ensure_site(conn, tenant_id, {"code": site.code, "name": site.name, "name_ar": site.name_ar,
                                                      "description": SITE_DESCRIPTION, "description_ar": SITE_DESCRIPTION_AR,
                                                      "timezone": DEMO_TIMEZONE})
        site_ids = await store.site_ids_by_code(conn, tenant_id)
        for site in SITES:
            for code, name, name_ar in site.units:
                await store.ensure_unit(conn, tenant_id, {"site_id": site_ids[site.code.lower()], "code": code,
                                                          "name": name, "name_ar": name_ar})
        unit_ids = await store.unit_ids_by_code(conn, tenant_id)
        for asset in ASSETS:
            values = {
                "site_id": site_ids[asset.site.lower()],
                "unit_id": unit_ids[(asset.site.lower(), asset.unit.lower())],
                "code": asset.code, "name": asset.name, "name_ar": asset.name_ar, "asset_type": asset.asset_type,
                "criticality": asset.criticality,
                "description": f"{asset.name} ({asset.code}) of the demo plant. Signals: {', '.join(asset.roles)}.",
                "description_ar": f"{asset.name_ar} ({asset.code}) في محطة العرض. الإشارات: "
                                  f"{'، '.join(ROLE_AR[r] for r in asset.roles)}.",
            }
            created += await store.ensure_asset(conn, tenant_id, values)
    if created:
        log.info("demo.assets_seeded", extra={"tenant_id": str(tenant_id), "assets_created": created})
    return created
