"""SQL for the platform owner's tenant list, tenant creation and the all-users view.

Everything here crosses tenants, so it runs in the explicit ``db.platform(reason)`` scope;
no tenant user ever reaches these statements (the routes require PLATFORM_CONSOLE).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from optria.db import Database, fetch_page, like_pattern
from optria.identity import users_store
from optria.identity.store import CurrentUser, write_audit
from optria.identity.users_store import UserFilter

LIST_TENANTS = """
SELECT t.id, t.slug, t.name, t.is_demo, t.is_active, t.created_at,
       (SELECT count(*) FROM users u WHERE u.tenant_id = t.id) AS user_count,
       (SELECT count(*) FROM users u WHERE u.tenant_id = t.id AND u.role = 'tenant_admin' AND u.is_active) AS admin_count,
       (SELECT count(*) FROM identity_providers p WHERE p.tenant_id = t.id AND p.enabled) AS sso_count,
       count(*) OVER () AS total
FROM tenants t
WHERE (%(q)s::text IS NULL OR t.slug ILIKE %(q)s OR t.name ILIKE %(q)s)
ORDER BY t.created_at DESC, t.slug
LIMIT %(limit)s OFFSET %(offset)s
"""

COUNT_TENANTS = "SELECT count(*) AS total FROM tenants t WHERE (%(q)s::text IS NULL OR t.slug ILIKE %(q)s OR t.name ILIKE %(q)s)"

TENANT_OPTIONS = "SELECT id, slug, name FROM tenants ORDER BY slug"

SLUG_TAKEN = "SELECT 1 FROM tenants WHERE slug = %(slug)s"

TENANT_ID_BY_SLUG = "SELECT id FROM tenants WHERE slug = %(slug)s"

INSERT_TENANT = """
INSERT INTO tenants (slug, name) VALUES (%(slug)s, %(name)s)
RETURNING id, slug, name, is_demo, is_active, created_at
"""

INSERT_FIRST_ADMIN = """
INSERT INTO users (tenant_id, username, email, display_name, role, auth_source, password_hash, must_change_password)
VALUES (%(tenant_id)s, %(username)s, %(email)s, %(display_name)s, 'tenant_admin', 'local', %(password_hash)s, true)
RETURNING id, username, email
"""


class TenantsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_tenants(self, q: str | None, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        async with self.db.platform("platform_tenants") as conn:
            return await fetch_page(conn, LIST_TENANTS, {"q": like_pattern(q)}, limit=limit, offset=offset,
                                    count_query=COUNT_TENANTS)

    async def tenant_options(self) -> list[dict[str, Any]]:
        async with self.db.platform("platform_tenant_options") as conn:
            return await (await conn.execute(TENANT_OPTIONS)).fetchall()

    async def list_users(self, f: UserFilter, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        async with self.db.platform("platform_users") as conn:
            return await users_store.list_all_users(conn, f, limit=limit, offset=offset)

    async def slug_taken(self, slug: str) -> bool:
        async with self.db.platform("platform_tenants") as conn:
            return await (await conn.execute(SLUG_TAKEN, {"slug": slug})).fetchone() is not None

    async def create_tenant_with_admin(self, *, actor: CurrentUser, slug: str, name: str, admin_username: str,
                                       admin_email: str, admin_display_name: str | None, password_hash: str,
                                       addr: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The tenant and its first admin in one transaction, with both recorded in the new tenant's audit log."""
        async with self.db.platform("create_tenant") as conn:
            tenant = await (await conn.execute(INSERT_TENANT, {"slug": slug, "name": name})).fetchone()
            admin = await (await conn.execute(INSERT_FIRST_ADMIN, {
                "tenant_id": tenant["id"], "username": admin_username, "email": admin_email,
                "display_name": admin_display_name, "password_hash": password_hash})).fetchone()
            await write_audit(conn, tenant_id=tenant["id"], actor=actor, action="tenant.created", target_type="tenant",
                              target_id=str(tenant["id"]), target_name=slug, details={"name": name}, addr=addr)
            await write_audit(conn, tenant_id=tenant["id"], actor=actor, action="user.created", target_type="user",
                              target_id=str(admin["id"]), target_name=admin_username,
                              details={"role": "tenant_admin", "auth_source": "local", "password": "generated"},
                              addr=addr)
        return tenant, admin

    async def tenant_id_by_slug(self, slug: str) -> UUID | None:
        async with self.db.platform("platform_users") as conn:
            row = await (await conn.execute(TENANT_ID_BY_SLUG, {"slug": slug})).fetchone()
            return row["id"] if row else None
