"""SQL for identity: users, sessions, login throttling and the audit log.

Authentication happens before any tenant is known, so its look-ups run in the explicit
``platform("auth")`` scope; everything a signed-in tenant user does runs in their tenant.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from optria.db import Database

SESSION_TTL = timedelta(hours=12)
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in user as re-read from the database on every request."""

    id: UUID
    tenant_id: UUID | None
    tenant_slug: str | None
    tenant_name: str | None
    username: str
    email: str
    display_name: str | None
    role: str
    auth_source: str
    must_change_password: bool
    session_id: str

    @property
    def name(self) -> str:
        return self.display_name or self.username

    @property
    def is_platform_owner(self) -> bool:
        return self.role == "platform_owner"


def session_key(raw: str) -> str:
    """Sessions are stored by hash so a database dump holds no usable cookie."""
    return hashlib.sha256(raw.encode()).hexdigest()


TENANT_BY_SLUG = "SELECT id, slug, name, is_active FROM tenants WHERE slug = %(slug)s"

USER_FOR_LOGIN = """
SELECT u.id, u.tenant_id, u.username, u.role, u.is_active, u.auth_source, u.password_hash, u.locked_until
FROM users u
WHERE u.tenant_id IS NOT DISTINCT FROM %(tenant_id)s
  AND (u.username = %(login)s OR u.email = %(login)s)
ORDER BY (u.username = %(login)s) DESC
LIMIT 1
"""

RECENT_FAILURES = """
SELECT
  (SELECT count(*) FROM login_attempts
    WHERE account_key = %(account)s AND NOT success AND attempted_at > now() - %(window)s
      AND attempted_at > coalesce((SELECT max(attempted_at) FROM login_attempts
                                    WHERE account_key = %(account)s AND success), '-infinity')) AS account_failures,
  (SELECT count(*) FROM login_attempts
    WHERE client_addr = %(addr)s AND NOT success AND attempted_at > now() - %(window)s) AS addr_failures
"""

RECORD_ATTEMPT = """
INSERT INTO login_attempts (account_key, client_addr, success) VALUES (%(account)s, %(addr)s, %(success)s)
"""

CREATE_SESSION = """
INSERT INTO sessions (id, user_id, tenant_id, expires_at, client_addr, user_agent)
VALUES (%(id)s, %(user_id)s, %(tenant_id)s, now() + %(ttl)s, %(addr)s, %(ua)s)
"""

MARK_LOGIN = "UPDATE users SET last_login_at = now(), password_hash = coalesce(%(rehash)s, password_hash) WHERE id = %(id)s"

REVOKE_SESSION = "UPDATE sessions SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL"
REVOKE_USER_SESSIONS = "UPDATE sessions SET revoked_at = now() WHERE user_id = %(user_id)s AND revoked_at IS NULL"
REVOKE_OTHER_SESSIONS = """
UPDATE sessions SET revoked_at = now() WHERE user_id = %(user_id)s AND id <> %(keep)s AND revoked_at IS NULL
"""

SESSION_USER = """
SELECT u.id, u.tenant_id, t.slug AS tenant_slug, t.name AS tenant_name, u.username, u.email, u.display_name,
       u.role, u.auth_source, u.must_change_password, s.last_seen_at
FROM sessions s
JOIN users u ON u.id = s.user_id
LEFT JOIN tenants t ON t.id = u.tenant_id
WHERE s.id = %(id)s AND s.revoked_at IS NULL AND s.expires_at > now()
  AND u.is_active AND (u.tenant_id IS NULL OR t.is_active)
"""

TOUCH_SESSION = "UPDATE sessions SET last_seen_at = now(), expires_at = now() + %(ttl)s WHERE id = %(id)s"

INSERT_USER = """
INSERT INTO users (tenant_id, username, email, display_name, role, auth_source, password_hash, must_change_password)
VALUES (%(tenant_id)s, %(username)s, %(email)s, %(display_name)s, %(role)s, 'local', %(password_hash)s,
        %(must_change_password)s)
ON CONFLICT DO NOTHING
RETURNING id
"""

SET_PASSWORD = """
UPDATE users SET password_hash = %(password_hash)s, must_change_password = %(must_change)s, updated_at = now(),
       failed_logins = 0, locked_until = NULL
WHERE id = %(id)s
"""

USER_PASSWORD_HASH = "SELECT password_hash FROM users WHERE id = %(id)s"

INSERT_AUDIT = """
INSERT INTO audit_log (tenant_id, actor_user_id, actor_name, action, target_type, target_id, target_name, details,
                       client_addr)
VALUES (%(tenant_id)s, %(actor_id)s, %(actor_name)s, %(action)s, %(target_type)s, %(target_id)s, %(target_name)s,
        %(details)s, %(addr)s)
"""

INSERT_TENANT = """
INSERT INTO tenants (slug, name, is_demo) VALUES (%(slug)s, %(name)s, %(is_demo)s)
ON CONFLICT (slug) DO UPDATE SET name = tenants.name
RETURNING id
"""


class IdentityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def tenant_by_slug(self, slug: str) -> dict[str, Any] | None:
        async with self.db.platform("auth") as conn:
            cur = await conn.execute(TENANT_BY_SLUG, {"slug": slug})
            return await cur.fetchone()

    async def user_for_login(self, tenant_id: UUID | None, login: str) -> dict[str, Any] | None:
        async with self.db.platform("auth") as conn:
            cur = await conn.execute(USER_FOR_LOGIN, {"tenant_id": tenant_id, "login": login})
            return await cur.fetchone()

    async def recent_failures(self, account: str, addr: str) -> tuple[int, int]:
        async with self.db.platform("auth") as conn:
            cur = await conn.execute(RECENT_FAILURES, {"account": account, "addr": addr, "window": THROTTLE_WINDOW})
            row = await cur.fetchone()
            return int(row["account_failures"]), int(row["addr_failures"])

    async def record_attempt(self, account: str, addr: str, success: bool) -> None:
        async with self.db.platform("auth") as conn:
            await conn.execute(RECORD_ATTEMPT, {"account": account, "addr": addr, "success": success})

    async def start_session(self, user_id: UUID, tenant_id: UUID | None, addr: str, user_agent: str,
                            rehash: str | None = None, replaces: str | None = None) -> str:
        """A new session id on every login (rotation); the one it replaces is revoked."""
        raw = secrets.token_urlsafe(32)
        async with self.db.platform("auth") as conn:
            if replaces:
                await conn.execute(REVOKE_SESSION, {"id": session_key(replaces)})
            await conn.execute(CREATE_SESSION, {"id": session_key(raw), "user_id": user_id, "tenant_id": tenant_id,
                                                "ttl": SESSION_TTL, "addr": addr[:64], "ua": user_agent[:300]})
            await conn.execute(MARK_LOGIN, {"id": user_id, "rehash": rehash})
        return raw

    async def session_user(self, raw: str) -> CurrentUser | None:
        sid = session_key(raw)
        async with self.db.platform("auth") as conn:
            cur = await conn.execute(SESSION_USER, {"id": sid})
            row = await cur.fetchone()
            if row is None:
                return None
            if row["last_seen_at"] < datetime.now(timezone.utc) - timedelta(minutes=1):
                await conn.execute(TOUCH_SESSION, {"id": sid, "ttl": SESSION_TTL})
        row.pop("last_seen_at")
        return CurrentUser(session_id=raw, **row)

    async def revoke_session(self, raw: str) -> None:
        async with self.db.platform("auth") as conn:
            await conn.execute(REVOKE_SESSION, {"id": session_key(raw)})

    async def password_hash(self, user_id: UUID) -> str | None:
        async with self.db.platform("auth") as conn:
            cur = await conn.execute(USER_PASSWORD_HASH, {"id": user_id})
            row = await cur.fetchone()
            return row["password_hash"] if row else None

    async def set_password(self, user_id: UUID, password_hash: str, *, must_change: bool,
                           keep_session: str | None = None) -> int:
        """Store a new password and end every session of the user but ``keep_session`` (the one that
        changed it); returns how many sessions ended. A stolen session dies with the old password."""
        async with self.db.platform("auth") as conn:
            await conn.execute(SET_PASSWORD, {"id": user_id, "password_hash": password_hash, "must_change": must_change})
            cur = await conn.execute(REVOKE_OTHER_SESSIONS, {"user_id": user_id,
                                                             "keep": session_key(keep_session) if keep_session else ""})
            return cur.rowcount

    async def ensure_tenant(self, slug: str, name: str, *, is_demo: bool = False) -> UUID:
        async with self.db.platform("seed") as conn:
            cur = await conn.execute(INSERT_TENANT, {"slug": slug, "name": name, "is_demo": is_demo})
            return (await cur.fetchone())["id"]

    async def ensure_local_user(self, *, tenant_id: UUID | None, username: str, email: str, role: str,
                                password_hash: str, display_name: str | None = None,
                                must_change_password: bool = False) -> UUID | None:
        """Insert a local user unless one with that username/email exists (seeding is idempotent)."""
        async with self.db.platform("seed") as conn:
            cur = await conn.execute(INSERT_USER, {
                "tenant_id": tenant_id, "username": username, "email": email, "display_name": display_name,
                "role": role, "password_hash": password_hash, "must_change_password": must_change_password})
            row = await cur.fetchone()
            return row["id"] if row else None


async def write_audit(conn, *, tenant_id: UUID | None, actor: CurrentUser | None, action: str, target_type: str,
                      target_id: str | None = None, target_name: str | None = None,
                      details: dict[str, Any] | None = None, addr: str | None = None) -> None:
    """Append to the audit log inside the caller's transaction, so the action and its record commit together."""
    await conn.execute(INSERT_AUDIT, {
        "tenant_id": tenant_id, "actor_id": actor.id if actor else None,
        "actor_name": actor.username if actor else "system", "action": action, "target_type": target_type,
        "target_id": target_id, "target_name": target_name, "details": Jsonb(details or {}), "addr": addr})
