"""Seed data: the platform owner and the "Demo ARAMCO" tenant with one user per role.

Idempotent: running it again adds nothing and changes no password, so ``./scripts/demo``
can run it on every start.
"""

from __future__ import annotations

from dataclasses import dataclass

from optria.config import load_settings
from optria.db import Database
from optria.demo.seed_assets import seed_demo_assets
from optria.demo.seed_integrations import seed_demo_integrations
from optria.identity.passwords import hash_password
from optria.identity.store import IdentityStore
from optria.secretbox import SecretBox

DEMO_TENANT_SLUG = "demo-aramco"
DEMO_TENANT_NAME = "Demo ARAMCO"


@dataclass(frozen=True)
class DemoLogin:
    organization: str
    username: str
    password: str
    role: str


OWNER = DemoLogin("", "owner", "Owner-Demo-2026", "platform_owner")
DEMO_USERS: tuple[DemoLogin, ...] = (
    DemoLogin(DEMO_TENANT_SLUG, "admin", "Admin-Demo-2026", "tenant_admin"),
    DemoLogin(DEMO_TENANT_SLUG, "optimizer", "Optimizer-Demo-2026", "optimization_engineer"),
    DemoLogin(DEMO_TENANT_SLUG, "reliability", "Reliability-Demo-2026", "reliability_engineer"),
    DemoLogin(DEMO_TENANT_SLUG, "engineer", "Engineer-Demo-2026", "engineer"),
    DemoLogin(DEMO_TENANT_SLUG, "viewer", "Viewer-Demo-2026", "viewer"),
)


async def seed_platform_owner(db: Database, username: str, password: str, email: str | None = None) -> None:
    store = IdentityStore(db)
    await store.ensure_local_user(tenant_id=None, username=username, email=email or f"{username}@optria.local",
                                  role="platform_owner", password_hash=hash_password(password),
                                  display_name="Platform Owner")


async def seed_demo_tenant(db: Database, box: SecretBox | None = None) -> str:
    """Create the Demo ARAMCO tenant, its users, the demo plant's assets and the demo integrations with
    their mappings; returns the tenant id. ``box`` seals integration secrets (default: from SESSION_SECRET,
    the key the web and ingest processes use)."""
    store = IdentityStore(db)
    tenant_id = await store.ensure_tenant(DEMO_TENANT_SLUG, DEMO_TENANT_NAME, is_demo=True)
    for login in DEMO_USERS:
        await store.ensure_local_user(tenant_id=tenant_id, username=login.username,
                                      email=f"{login.username}@demo-aramco.example",
                                      role=login.role, password_hash=hash_password(login.password))
    await seed_demo_assets(db, tenant_id)
    await seed_demo_integrations(db, tenant_id, box or SecretBox(load_settings().session_key()))
    return str(tenant_id)


async def seed_demo(db: Database, box: SecretBox | None = None) -> list[DemoLogin]:
    await seed_platform_owner(db, OWNER.username, OWNER.password)
    await seed_demo_tenant(db, box)
    return [OWNER, *DEMO_USERS]
