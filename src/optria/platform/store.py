"""SQL for the platform-owner console (explicit platform scope throughout)."""

from __future__ import annotations

from optria.db import Database

STORAGE_TIER = "SELECT tier FROM storage_capabilities"


class PlatformStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def storage_tier(self) -> str:
        async with self.db.platform("config_status") as conn:
            cur = await conn.execute(STORAGE_TIER)
            row = await cur.fetchone()
            return row["tier"] if row else "unknown"
