"""SQL for tenant user management, the audit log view, identity providers and SSO accounts.

Every statement that touches tenant rows filters by ``tenant_id`` even though row-level
security also does; callers run them inside ``db.tenant(tenant_id)``. The cross-tenant
user list for platform owners is a separate statement run in ``db.platform(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from optria.db import fetch_all, fetch_one, fetch_page, like_pattern

USER_COLUMNS = """
u.id, u.tenant_id, u.username, u.email, u.display_name, u.role, u.is_active, u.auth_source,
u.must_change_password, u.identity_provider_id, p.name AS provider_name, u.last_login_at, u.created_at,
u.updated_at
"""

# Filters: a NULL parameter means "no filter". %(q)s is a LIKE pattern with wildcards escaped.
_USER_FILTERS = """
  AND (%(q)s::text IS NULL OR u.username ILIKE %(q)s OR u.email ILIKE %(q)s OR u.display_name ILIKE %(q)s)
  AND (%(role)s::text IS NULL OR u.role = %(role)s)
  AND (%(active)s::boolean IS NULL OR u.is_active = %(active)s)
  AND (%(source)s::text IS NULL OR u.auth_source = %(source)s)
"""

LIST_TENANT_USERS = f"""
SELECT {USER_COLUMNS}, count(*) OVER () AS total
FROM users u
LEFT JOIN identity_providers p ON p.tenant_id = u.tenant_id AND p.id = u.identity_provider_id
WHERE u.tenant_id = %(tenant_id)s
{_USER_FILTERS}
ORDER BY u.username
LIMIT %(limit)s OFFSET %(offset)s
"""

COUNT_TENANT_USERS = f"""
SELECT count(*) AS total FROM users u WHERE u.tenant_id = %(tenant_id)s {_USER_FILTERS}
"""

LIST_ALL_USERS = f"""
SELECT {USER_COLUMNS}, t.slug AS tenant_slug, t.name AS tenant_name, count(*) OVER () AS total
FROM users u
LEFT JOIN tenants t ON t.id = u.tenant_id
LEFT JOIN identity_providers p ON p.tenant_id = u.tenant_id AND p.id = u.identity_provider_id
WHERE (%(tenant_id)s::uuid IS NULL OR u.tenant_id = %(tenant_id)s)
{_USER_FILTERS}
ORDER BY t.slug NULLS FIRST, u.username
LIMIT %(limit)s OFFSET %(offset)s
"""

COUNT_ALL_USERS = f"""
SELECT count(*) AS total FROM users u WHERE (%(tenant_id)s::uuid IS NULL OR u.tenant_id = %(tenant_id)s) {_USER_FILTERS}
"""

GET_TENANT_USER = f"""
SELECT {USER_COLUMNS}
FROM users u
LEFT JOIN identity_providers p ON p.tenant_id = u.tenant_id AND p.id = u.identity_provider_id
WHERE u.tenant_id = %(tenant_id)s AND u.id = %(id)s
"""

LOCK_TENANT_USER = """
SELECT id, username, role, is_active, auth_source FROM users
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
FOR UPDATE
"""

# Locks every active admin of the tenant, so two concurrent demotions cannot both pass the "last admin" check.
LOCK_ACTIVE_ADMINS = """
SELECT id FROM users
WHERE tenant_id = %(tenant_id)s AND role = 'tenant_admin' AND is_active
ORDER BY id
FOR UPDATE
"""

FIND_TAKEN = """
SELECT bool_or(username = %(username)s) AS username_taken, bool_or(email = %(email)s) AS email_taken
FROM users WHERE tenant_id = %(tenant_id)s AND (username = %(username)s OR email = %(email)s)
"""

USERNAME_EXISTS = "SELECT 1 FROM users WHERE tenant_id = %(tenant_id)s AND username = %(username)s"

INSERT_LOCAL_USER = """
INSERT INTO users (tenant_id, username, email, display_name, role, auth_source, password_hash, must_change_password)
VALUES (%(tenant_id)s, %(username)s, %(email)s, %(display_name)s, %(role)s, 'local', %(password_hash)s, true)
RETURNING id
"""

INSERT_SSO_USER = """
INSERT INTO users (tenant_id, username, email, display_name, role, auth_source, password_hash, must_change_password,
                   identity_provider_id, external_issuer, external_subject)
VALUES (%(tenant_id)s, %(username)s, %(email)s, %(display_name)s, %(role)s, 'sso', NULL, false,
        %(provider_id)s, %(issuer)s, %(subject)s)
RETURNING id
"""

FIND_EXTERNAL_USER = """
SELECT id, tenant_id, username, role, is_active, auth_source, email::text AS email, display_name FROM users
WHERE tenant_id = %(tenant_id)s AND external_issuer = %(issuer)s AND external_subject = %(subject)s
"""

# A later single sign-on refreshes the name and email the identity provider holds now.
UPDATE_PROFILE = """
UPDATE users SET display_name = %(display_name)s, email = %(email)s, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

UPDATE_ROLE = "UPDATE users SET role = %(role)s, updated_at = now() WHERE tenant_id = %(tenant_id)s AND id = %(id)s"
UPDATE_ACTIVE = """
UPDATE users SET is_active = %(active)s, updated_at = now(), failed_logins = 0, locked_until = NULL
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""
UPDATE_DISPLAY_NAME = """
UPDATE users SET display_name = %(display_name)s, updated_at = now() WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""
SET_TEMPORARY_PASSWORD = """
UPDATE users SET password_hash = %(password_hash)s, must_change_password = true, failed_logins = 0,
       locked_until = NULL, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s AND auth_source = 'local'
"""
REVOKE_TENANT_USER_SESSIONS = """
UPDATE sessions SET revoked_at = now() WHERE tenant_id = %(tenant_id)s AND user_id = %(id)s AND revoked_at IS NULL
"""

LIST_AUDIT = """
SELECT id, actor_user_id, actor_name, action, target_type, target_id, target_name, details, client_addr, created_at,
       count(*) OVER () AS total
FROM audit_log
WHERE tenant_id = %(tenant_id)s
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(target_id)s::text IS NULL OR target_id = %(target_id)s)
  AND (%(q)s::text IS NULL OR actor_name ILIKE %(q)s OR target_name ILIKE %(q)s)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""

COUNT_AUDIT = """
SELECT count(*) AS total FROM audit_log
WHERE tenant_id = %(tenant_id)s
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(target_id)s::text IS NULL OR target_id = %(target_id)s)
  AND (%(q)s::text IS NULL OR actor_name ILIKE %(q)s OR target_name ILIKE %(q)s)
"""

PROVIDER_COLUMNS = """
p.tenant_id, p.id, p.name, p.discovery_url, p.issuer, p.client_id, p.client_secret_sealed IS NOT NULL AS has_secret,
p.allowed_email_domains, p.allowed_tenant_ids, p.default_role, p.role_mapping, p.enabled, p.last_tested_at,
p.created_at, p.updated_at
"""

LIST_PROVIDERS = f"""
SELECT {PROVIDER_COLUMNS},
       (SELECT count(*) FROM users u WHERE u.tenant_id = p.tenant_id AND u.identity_provider_id = p.id) AS user_count
FROM identity_providers p
WHERE p.tenant_id = %(tenant_id)s
ORDER BY lower(p.name)
"""

SEALED_PROVIDER_SECRETS = """
SELECT id, client_secret_sealed FROM identity_providers
WHERE tenant_id = %(tenant_id)s AND client_secret_sealed IS NOT NULL
"""

LIST_ENABLED_PROVIDERS = """
SELECT p.id, p.name FROM identity_providers p
WHERE p.tenant_id = %(tenant_id)s AND p.enabled
ORDER BY lower(p.name)
"""

GET_PROVIDER = f"""
SELECT {PROVIDER_COLUMNS}, p.client_secret_sealed
FROM identity_providers p
WHERE p.tenant_id = %(tenant_id)s AND p.id = %(id)s
"""

PROVIDER_NAME_TAKEN = """
SELECT 1 FROM identity_providers
WHERE tenant_id = %(tenant_id)s AND lower(name) = lower(%(name)s) AND id IS DISTINCT FROM %(id)s
"""

INSERT_PROVIDER = """
INSERT INTO identity_providers (tenant_id, name, discovery_url, issuer, client_id, client_secret_sealed,
                                allowed_email_domains, allowed_tenant_ids, default_role, role_mapping, enabled,
                                last_tested_at)
VALUES (%(tenant_id)s, %(name)s, %(discovery_url)s, %(issuer)s, %(client_id)s, %(client_secret_sealed)s,
        %(allowed_email_domains)s, %(allowed_tenant_ids)s, %(default_role)s, %(role_mapping)s, %(enabled)s,
        CASE WHEN %(issuer)s::text IS NULL THEN NULL ELSE now() END)
RETURNING id
"""

UPDATE_PROVIDER = """
UPDATE identity_providers SET
  name = %(name)s, discovery_url = %(discovery_url)s, issuer = coalesce(%(issuer)s, issuer), client_id = %(client_id)s,
  client_secret_sealed = CASE WHEN %(replace_secret)s THEN %(client_secret_sealed)s ELSE client_secret_sealed END,
  allowed_email_domains = %(allowed_email_domains)s, allowed_tenant_ids = %(allowed_tenant_ids)s,
  default_role = %(default_role)s, role_mapping = %(role_mapping)s, enabled = %(enabled)s,
  last_tested_at = CASE WHEN %(issuer)s::text IS NULL THEN last_tested_at ELSE now() END, updated_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""

MARK_PROVIDER_TESTED = """
UPDATE identity_providers SET issuer = %(issuer)s, last_tested_at = now()
WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""


@dataclass(frozen=True)
class UserFilter:
    q: str | None = None
    role: str | None = None
    active: bool | None = None
    source: str | None = None
    tenant_id: UUID | None = None   # platform view only

    def params(self) -> dict[str, Any]:
        return {"q": like_pattern(self.q), "role": self.role, "active": self.active, "source": self.source}


# -- statements as functions of a connection: the service composes them inside one transaction ----------

async def list_tenant_users(conn: AsyncConnection, tenant_id: UUID, f: UserFilter, *, limit: int,
                            offset: int) -> tuple[list[dict[str, Any]], int]:
    return await fetch_page(conn, LIST_TENANT_USERS, {"tenant_id": tenant_id, **f.params()}, limit=limit,
                            offset=offset, count_query=COUNT_TENANT_USERS)


async def list_all_users(conn: AsyncConnection, f: UserFilter, *, limit: int,
                         offset: int) -> tuple[list[dict[str, Any]], int]:
    return await fetch_page(conn, LIST_ALL_USERS, {"tenant_id": f.tenant_id, **f.params()}, limit=limit,
                            offset=offset, count_query=COUNT_ALL_USERS)


async def get_tenant_user(conn: AsyncConnection, tenant_id: UUID, user_id: UUID) -> dict[str, Any] | None:
    return await fetch_one(conn, GET_TENANT_USER, {"tenant_id": tenant_id, "id": user_id})


async def lock_tenant_user(conn: AsyncConnection, tenant_id: UUID, user_id: UUID) -> dict[str, Any] | None:
    return await fetch_one(conn, LOCK_TENANT_USER, {"tenant_id": tenant_id, "id": user_id})


async def lock_active_admins(conn: AsyncConnection, tenant_id: UUID) -> list[UUID]:
    return [r["id"] for r in await fetch_all(conn, LOCK_ACTIVE_ADMINS, {"tenant_id": tenant_id})]


async def taken(conn: AsyncConnection, tenant_id: UUID, username: str, email: str) -> tuple[bool, bool]:
    row = await fetch_one(conn, FIND_TAKEN, {"tenant_id": tenant_id, "username": username, "email": email})
    return bool(row and row["username_taken"]), bool(row and row["email_taken"])


async def username_exists(conn: AsyncConnection, tenant_id: UUID, username: str) -> bool:
    return await fetch_one(conn, USERNAME_EXISTS, {"tenant_id": tenant_id, "username": username}) is not None


async def insert_local_user(conn: AsyncConnection, *, tenant_id: UUID, username: str, email: str,
                            display_name: str | None, role: str, password_hash: str) -> UUID:
    row = await fetch_one(conn, INSERT_LOCAL_USER, {"tenant_id": tenant_id, "username": username, "email": email,
                                                    "display_name": display_name, "role": role,
                                                    "password_hash": password_hash})
    return row["id"]


async def insert_sso_user(conn: AsyncConnection, *, tenant_id: UUID, username: str, email: str,
                          display_name: str | None, role: str, provider_id: int, issuer: str, subject: str) -> UUID:
    row = await fetch_one(conn, INSERT_SSO_USER, {"tenant_id": tenant_id, "username": username, "email": email,
                                                  "display_name": display_name, "role": role,
                                                  "provider_id": provider_id, "issuer": issuer, "subject": subject})
    return row["id"]


async def find_external_user(conn: AsyncConnection, tenant_id: UUID, issuer: str, subject: str) -> dict[str, Any] | None:
    return await fetch_one(conn, FIND_EXTERNAL_USER, {"tenant_id": tenant_id, "issuer": issuer, "subject": subject})


async def update_profile(conn: AsyncConnection, tenant_id: UUID, user_id: UUID, *, display_name: str | None,
                         email: str) -> None:
    await conn.execute(UPDATE_PROFILE, {"tenant_id": tenant_id, "id": user_id, "display_name": display_name,
                                        "email": email})


async def update_role(conn: AsyncConnection, tenant_id: UUID, user_id: UUID, role: str) -> None:
    await conn.execute(UPDATE_ROLE, {"tenant_id": tenant_id, "id": user_id, "role": role})
    # a session started under the old role ends: the user signs in again and meets the new one
    await conn.execute(REVOKE_TENANT_USER_SESSIONS, {"tenant_id": tenant_id, "id": user_id})


async def update_active(conn: AsyncConnection, tenant_id: UUID, user_id: UUID, active: bool) -> None:
    await conn.execute(UPDATE_ACTIVE, {"tenant_id": tenant_id, "id": user_id, "active": active})
    if not active:
        await conn.execute(REVOKE_TENANT_USER_SESSIONS, {"tenant_id": tenant_id, "id": user_id})


async def update_display_name(conn: AsyncConnection, tenant_id: UUID, user_id: UUID, display_name: str | None) -> None:
    await conn.execute(UPDATE_DISPLAY_NAME, {"tenant_id": tenant_id, "id": user_id, "display_name": display_name})


async def set_temporary_password(conn: AsyncConnection, tenant_id: UUID, user_id: UUID, password_hash: str) -> bool:
    cur = await conn.execute(SET_TEMPORARY_PASSWORD, {"tenant_id": tenant_id, "id": user_id,
                                                      "password_hash": password_hash})
    # the old password stops working now; sessions opened with it end too
    await conn.execute(REVOKE_TENANT_USER_SESSIONS, {"tenant_id": tenant_id, "id": user_id})
    return cur.rowcount == 1


async def list_audit(conn: AsyncConnection, tenant_id: UUID, *, action: str | None, target_id: str | None,
                     q: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    params = {"tenant_id": tenant_id, "action": action, "target_id": target_id, "q": like_pattern(q)}
    return await fetch_page(conn, LIST_AUDIT, params, limit=limit, offset=offset, count_query=COUNT_AUDIT)


async def list_providers(conn: AsyncConnection, tenant_id: UUID) -> list[dict[str, Any]]:
    return await fetch_all(conn, LIST_PROVIDERS, {"tenant_id": tenant_id})


async def sealed_provider_secrets(conn: AsyncConnection, tenant_id: UUID) -> dict[int, str]:
    return {r["id"]: r["client_secret_sealed"] for r in await fetch_all(conn, SEALED_PROVIDER_SECRETS,
                                                                        {"tenant_id": tenant_id})}


async def list_enabled_providers(conn: AsyncConnection, tenant_id: UUID) -> list[dict[str, Any]]:
    return await fetch_all(conn, LIST_ENABLED_PROVIDERS, {"tenant_id": tenant_id})


async def get_provider(conn: AsyncConnection, tenant_id: UUID, provider_id: int) -> dict[str, Any] | None:
    return await fetch_one(conn, GET_PROVIDER, {"tenant_id": tenant_id, "id": provider_id})


async def provider_name_taken(conn: AsyncConnection, tenant_id: UUID, name: str, provider_id: int | None) -> bool:
    params = {"tenant_id": tenant_id, "name": name, "id": provider_id}
    return await fetch_one(conn, PROVIDER_NAME_TAKEN, params) is not None


async def insert_provider(conn: AsyncConnection, values: dict[str, Any]) -> int:
    row = await fetch_one(conn, INSERT_PROVIDER, {**values, "role_mapping": Jsonb(values["role_mapping"])})
    return row["id"]


async def update_provider(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(UPDATE_PROVIDER, {**values, "role_mapping": Jsonb(values["role_mapping"])})


async def mark_provider_tested(conn: AsyncConnection, tenant_id: UUID, provider_id: int, issuer: str) -> None:
    await conn.execute(MARK_PROVIDER_TESTED, {"tenant_id": tenant_id, "id": provider_id, "issuer": issuer})
