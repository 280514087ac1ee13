"""Demo tenants in one action: a new organization with the demo plant, its data sources and users.

:func:`create_demo_tenant` makes, in order:

1. the tenant (``is_demo``), a slug derived from its name and made unique (``demo-aramco``,
   ``demo-aramco-2``, ...), a tenant admin and one user per other tenant role, each with a
   generated password that is returned once and never stored in clear; with the audit records
   of all of it, in one transaction;
2. the demo plant's sites, units and assets (:func:`optria.demo.seed_assets.seed_demo_assets`);
3. an OPC-UA integration on the platform's OPC-UA endpoint and a PI Web API integration on the
   platform's PI URL, demo stream on, with the plant's tags mapped to the assets and their
   limits (:func:`optria.demo.seed_integrations.seed_demo_integrations`). The integrations
   name no endpoint of their own, so they follow ``OPCUA_ENDPOINT_URL`` / ``PI_BASE_URL``,
   which ``optria demo`` points at the local simulators when the public ones are unreachable.

Demo users need not change their password at first sign-in: a demo is handed out by the
platform owner, who sees the passwords once. Steps 2 and 3 are idempotent seeds: if one of
them fails the tenant exists and the owner may run them again through ``optria seed``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from uuid import UUID

from optria.db import Database
from optria.demo.seed_assets import seed_demo_assets
from optria.demo.seed_integrations import seed_demo_integrations
from optria.identity.store import CurrentUser, write_audit
from optria.identity.users import generate_temporary_password, hash_in_thread
from optria.platform import store
from optria.secretbox import SecretBox

log = logging.getLogger("optria.platform.demo")

DEFAULT_NAME = "Demo ARAMCO"
# (username, role): the tenant admin first, then one user per other tenant role
DEMO_ROLES: tuple[tuple[str, str], ...] = (
    ("admin", "tenant_admin"), ("optimizer", "optimization_engineer"), ("reliability", "reliability_engineer"),
    ("engineer", "engineer"), ("viewer", "viewer"),
)
M_NAME = "Enter the demo organization's name (1 to 200 characters)."
M_CREATED = "Demo organization %(name)s was created with its plant, data sources and users. Copy the passwords now."
MESSAGES = (M_NAME, M_CREATED)


class DemoTenantError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Login:
    username: str
    role: str
    password: str


@dataclass
class DemoTenant:
    tenant_id: UUID
    slug: str
    name: str
    logins: list[Login] = field(default_factory=list)
    assets_created: int = 0
    mappings_created: int = 0


def slug_base(name: str) -> str:
    """Latin letters, digits and dashes from a name ("Demo ARAMCO" → "demo-aramco"); "demo" when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:50].strip("-")
    return slug if len(slug) >= 2 else "demo"


async def unique_slug(db: Database, name: str) -> str:
    base = slug_base(name)
    taken = await store.slugs_like(db, base)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def create_demo_tenant(db: Database, box: SecretBox, *, name: str, actor: CurrentUser | None,
                             addr: str | None = None) -> DemoTenant:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 200:
        raise DemoTenantError(M_NAME)
    logins = [Login(username, role, generate_temporary_password()) for username, role in DEMO_ROLES]
    hashes = [await hash_in_thread(login.password) for login in logins]
    slug = await unique_slug(db, name)
    async with db.platform("create_demo_tenant") as conn:
        tenant_id = await store.insert_demo_tenant(conn, slug, name)
        for login, password_hash in zip(logins, hashes):
            user_id = await store.insert_demo_user(conn, tenant_id, login.username, f"{login.username}@{slug}.example",
                                                   login.role, password_hash)
            await write_audit(conn, tenant_id=tenant_id, actor=actor, action="user.created", target_type="user",
                              target_id=str(user_id), target_name=login.username,
                              details={"role": login.role, "auth_source": "local", "password": "generated"}, addr=addr)
        await write_audit(conn, tenant_id=tenant_id, actor=actor, action="demo_tenant.created", target_type="tenant",
                          target_id=str(tenant_id), target_name=slug,
                          details={"name": name, "users": [login.username for login in logins]}, addr=addr)
    result = DemoTenant(tenant_id, slug, name, logins)
    result.assets_created = await seed_demo_assets(db, tenant_id)
    result.mappings_created = await seed_demo_integrations(db, tenant_id, box)
    log.info("platform.demo_tenant_created", extra={"tenant_id": str(tenant_id), "slug": slug,
                                                    "assets": result.assets_created,
                                                    "mappings": result.mappings_created})
    return result
