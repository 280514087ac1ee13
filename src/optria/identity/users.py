"""Tenant user management: the rules a tenant admin works under, written once for the pages and the API.

The tenant always comes from the signed-in admin (``actor.tenant_id``), never from a form
field, query string or body, and every look-up by id is scoped to it, so another tenant's
user id simply does not exist here (404). Each change and its audit record commit in one
transaction. A tenant admin cannot disable or demote themself, nor the tenant's last active
admin (the active admins are locked first, so two concurrent demotions cannot both pass),
and ``platform_owner`` is not a role this module knows how to assign.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from math import ceil
from typing import Any
from uuid import UUID

import psycopg

from optria.db import Database
from optria.identity import passwords
from optria.identity import users_store as q
from optria.identity.rbac import TENANT_ROLES, Role
from optria.identity.store import CurrentUser, write_audit

log = logging.getLogger("optria.identity.users")

PAGE_SIZE = 25
ROLE_VALUES = tuple(r.value for r in TENANT_ROLES)
SOURCES = ("local", "sso")
STATUSES = ("active", "disabled")
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_TEMP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

# User-facing messages (English msgids, translated on pages; listed in shell/i18n_sources.py).
M_NOT_FOUND = "This user does not exist in your organization."
M_USERNAME_FORMAT = ("A username has 2 to 64 characters: Latin letters, digits, dot, dash or underscore, "
                     "starting with a letter or digit.")
M_USERNAME_TAKEN = "This username is already used in your organization."
M_EMAIL_FORMAT = "Enter a valid email address, for example name@company.com."
M_EMAIL_TAKEN = "This email address is already used in your organization."
M_ROLE_UNKNOWN = "Choose one of the listed roles."
M_DISPLAY_NAME = "The display name can have at most 100 characters."
M_SELF_DISABLE = "You cannot disable your own account."
M_SELF_DEMOTE = "You cannot change your own role."
M_LAST_ADMIN = ("This is the organization's last active administrator. Make another user an administrator first.")
M_SSO_NO_PASSWORD = "This user signs in with single sign-on and has no password here to reset."
M_NOTHING_TO_CHANGE = "Nothing to change: send a role, an active flag or a display name."
MESSAGES = (M_NOT_FOUND, M_USERNAME_FORMAT, M_USERNAME_TAKEN, M_EMAIL_FORMAT, M_EMAIL_TAKEN, M_ROLE_UNKNOWN,
            M_DISPLAY_NAME, M_SELF_DISABLE, M_SELF_DEMOTE, M_LAST_ADMIN, M_SSO_NO_PASSWORD, M_NOTHING_TO_CHANGE)

# Audit actions written by identity, with their labels (English msgids).
AUDIT_ACTIONS = {
    "user.created": "User created",
    "user.role_changed": "Role changed",
    "user.disabled": "User disabled",
    "user.enabled": "User enabled",
    "user.password_reset": "Password reset",
    "user.display_name_changed": "Display name changed",
    "user.sso_provisioned": "User created at first single sign-on",
    "user.sso_profile_refreshed": "Name and email refreshed at single sign-on",
    "identity_provider.created": "Identity provider added",
    "identity_provider.updated": "Identity provider changed",
    "tenant.created": "Organization created",
}


class UserError(Exception):
    """A refused request: ``status`` and ``code`` for the API, ``message`` (msgid) and ``field`` for forms."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.errors = errors or ({field: [message]} if field else {})


def invalid(errors: dict[str, list[str]], *, status: int = 422, code: str = "validation_error") -> UserError:
    """A UserError carrying every field's messages; the first one is the summary message."""
    first = next(iter(errors))
    return UserError(status, code, errors[first][0], first, errors)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def filter_query(**params: Any) -> str:
    """The query string of a list page's filters (empty values and page 1 left out), for pager links."""
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in params.items() if v not in (None, "", 1)})


def page_bounds(page: int, per_page: int = PAGE_SIZE) -> tuple[int, int, int]:
    """(page, limit, offset) with page >= 1 and 1 <= per_page <= 100."""
    page = max(1, min(int(page or 1), 100_000))
    per_page = max(1, min(int(per_page or PAGE_SIZE), 100))
    return page, per_page, (page - 1) * per_page


@dataclass
class NewUser:
    username: str
    email: str
    role: str
    display_name: str = ""
    password: str = ""   # empty: a temporary password is generated


@dataclass
class UserChanges:
    role: str | None = None
    is_active: bool | None = None
    display_name: str | None = None
    set_display_name: bool = False


def generate_temporary_password() -> str:
    """Four groups of four characters from an alphabet without look-alikes (0/O, 1/l/I); meets the password rules."""
    while True:
        groups = ["".join(secrets.choice(_TEMP_ALPHABET) for _ in range(4)) for _ in range(4)]
        candidate = "-".join(groups)
        if not passwords.password_problems(candidate):
            return candidate


def check_username(username: str) -> str | None:
    return None if USERNAME_RE.match(username) else M_USERNAME_FORMAT


def check_email(email: str) -> str | None:
    return None if len(email) <= 254 and EMAIL_RE.match(email) else M_EMAIL_FORMAT


def check_role(role: str) -> str | None:
    """Only tenant roles: ``platform_owner`` is as unknown here as a typo."""
    return None if role in ROLE_VALUES else M_ROLE_UNKNOWN


def validate_new_user(data: NewUser) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name, problem in (("username", check_username(data.username)), ("email", check_email(data.email)),
                          ("role", check_role(data.role))):
        if problem:
            errors[name] = [problem]
    if len(data.display_name) > 100:
        errors["display_name"] = [M_DISPLAY_NAME]
    if data.password:
        problems = passwords.password_problems(data.password, username=data.username)
        if problems:
            errors["password"] = problems
    return errors


def normalise(data: NewUser) -> NewUser:
    return NewUser(username=data.username.strip(), email=data.email.strip(), role=data.role.strip(),
                   display_name=data.display_name.strip(), password=data.password)


async def hash_in_thread(password: str) -> str:
    """Argon2 costs tens of milliseconds of CPU: keep it off the event loop."""
    return await asyncio.to_thread(passwords.hash_password, password)


def tenant_of(actor: CurrentUser) -> UUID:
    """The actor's tenant: every tenant-scoped action runs there and nowhere else."""
    if actor.tenant_id is None:  # guards keep platform owners out; this is the last line
        raise UserError(403, "forbidden", "Your role does not allow this action.")
    return actor.tenant_id


# -- reads ----------------------------------------------------------------------------------------

async def list_users(db: Database, actor: CurrentUser, f: q.UserFilter, page: int = 1,
                     per_page: int = PAGE_SIZE) -> Page:
    tenant_id = tenant_of(actor)
    page, limit, offset = page_bounds(page, per_page)
    async with db.tenant(tenant_id) as conn:
        rows, total = await q.list_tenant_users(conn, tenant_id, f, limit=limit, offset=offset)
    return Page(rows, total, page, limit)


async def get_user(db: Database, actor: CurrentUser, user_id: UUID) -> dict[str, Any]:
    tenant_id = tenant_of(actor)
    async with db.tenant(tenant_id) as conn:
        row = await q.get_tenant_user(conn, tenant_id, user_id)
    if row is None:
        raise UserError(404, "not_found", M_NOT_FOUND)
    return row


async def list_audit(db: Database, actor: CurrentUser, *, action: str | None = None, target_id: str | None = None,
                     q_text: str | None = None, page: int = 1, per_page: int = PAGE_SIZE) -> Page:
    tenant_id = tenant_of(actor)
    page, limit, offset = page_bounds(page, per_page)
    async with db.tenant(tenant_id) as conn:
        rows, total = await q.list_audit(conn, tenant_id, action=action or None, target_id=target_id,
                                         q=q_text, limit=limit, offset=offset)
    return Page(rows, total, page, limit)


# -- changes ----------------------------------------------------------------------------------------

async def create_user(db: Database, actor: CurrentUser, data: NewUser, *, addr: str | None) -> tuple[dict[str, Any], str | None]:
    """Create a local user who must choose a new password at first sign-in.

    Returns the user and the generated temporary password (None when the admin typed one);
    the password is shown once and stored only as a hash.
    """
    tenant_id = tenant_of(actor)
    data = normalise(data)
    errors = validate_new_user(data)
    if errors:
        raise invalid(errors)
    generated = None if data.password else generate_temporary_password()
    password_hash = await hash_in_thread(data.password or generated or "")
    try:
        async with db.tenant(tenant_id) as conn:
            username_taken, email_taken = await q.taken(conn, tenant_id, data.username, data.email)
            if username_taken or email_taken:
                errors = {}
                if username_taken:
                    errors["username"] = [M_USERNAME_TAKEN]
                if email_taken:
                    errors["email"] = [M_EMAIL_TAKEN]
                raise invalid(errors, status=409, code="duplicate")
            user_id = await q.insert_local_user(conn, tenant_id=tenant_id, username=data.username, email=data.email,
                                                display_name=data.display_name or None, role=data.role,
                                                password_hash=password_hash)
            await write_audit(conn, tenant_id=tenant_id, actor=actor, action="user.created", target_type="user",
                              target_id=str(user_id), target_name=data.username,
                              details={"role": data.role, "auth_source": "local",
                                       "password": "generated" if generated else "set by admin"}, addr=addr)
            user = await q.get_tenant_user(conn, tenant_id, user_id)
    except psycopg.errors.UniqueViolation as exc:  # a concurrent create won the race
        field_name = "email" if "email" in (exc.diag.constraint_name or "") else "username"
        message = M_EMAIL_TAKEN if field_name == "email" else M_USERNAME_TAKEN
        raise UserError(409, "duplicate", message, field_name) from None
    log.info("users.created", extra={"tenant_id": str(tenant_id), "user_id": str(user_id), "role": data.role,
                                     "actor_id": str(actor.id)})
    return user, generated


async def update_user(db: Database, actor: CurrentUser, user_id: UUID, changes: UserChanges, *,
                      addr: str | None) -> dict[str, Any]:
    """Change role, active flag and/or display name of one user of the actor's tenant, with the admin rules."""
    tenant_id = tenant_of(actor)
    if changes.role is None and changes.is_active is None and not changes.set_display_name:
        raise UserError(422, "validation_error", M_NOTHING_TO_CHANGE)
    if changes.role is not None and check_role(changes.role):
        raise UserError(422, "unknown_role", M_ROLE_UNKNOWN, "role")
    if changes.set_display_name and changes.display_name and len(changes.display_name) > 100:
        raise UserError(422, "validation_error", M_DISPLAY_NAME, "display_name")
    async with db.tenant(tenant_id) as conn:
        # admins first, in id order, then the target: one lock order for every request
        active_admins = await q.lock_active_admins(conn, tenant_id)
        target = await q.lock_tenant_user(conn, tenant_id, user_id)
        if target is None:
            raise UserError(404, "not_found", M_NOT_FOUND)
        is_admin = target["role"] == Role.TENANT_ADMIN.value
        demoting = changes.role is not None and is_admin and changes.role != target["role"]
        disabling = changes.is_active is False and target["is_active"]
        is_self = target["id"] == actor.id
        if is_self and disabling:
            raise UserError(409, "cannot_disable_self", M_SELF_DISABLE, "is_active")
        if is_self and changes.role is not None and changes.role != target["role"]:
            raise UserError(409, "cannot_change_own_role", M_SELF_DEMOTE, "role")
        if (demoting or disabling) and target["is_active"] and is_admin and active_admins == [target["id"]]:
            raise UserError(409, "last_admin", M_LAST_ADMIN, "role" if demoting else "is_active")
        audit = lambda action, details: write_audit(  # noqa: E731
            conn, tenant_id=tenant_id, actor=actor, action=action, target_type="user", target_id=str(target["id"]),
            target_name=target["username"], details=details, addr=addr)
        if changes.role is not None and changes.role != target["role"]:
            await q.update_role(conn, tenant_id, user_id, changes.role)
            await audit("user.role_changed", {"from": target["role"], "to": changes.role})
        if changes.is_active is not None and changes.is_active != target["is_active"]:
            await q.update_active(conn, tenant_id, user_id, changes.is_active)
            await audit("user.enabled" if changes.is_active else "user.disabled", {})
        if changes.set_display_name:
            await q.update_display_name(conn, tenant_id, user_id, changes.display_name or None)
            await audit("user.display_name_changed", {})
        user = await q.get_tenant_user(conn, tenant_id, user_id)
    log.info("users.updated", extra={"tenant_id": str(tenant_id), "user_id": str(user_id), "actor_id": str(actor.id),
                                     "role": changes.role, "is_active": changes.is_active})
    return user


async def reset_password(db: Database, actor: CurrentUser, user_id: UUID, *, addr: str | None) -> tuple[dict[str, Any], str]:
    """A new temporary password (returned once), forcing a change at next sign-in; the user's sessions end."""
    tenant_id = tenant_of(actor)
    temporary = generate_temporary_password()
    password_hash = await hash_in_thread(temporary)
    async with db.tenant(tenant_id) as conn:
        target = await q.lock_tenant_user(conn, tenant_id, user_id)
        if target is None:
            raise UserError(404, "not_found", M_NOT_FOUND)
        if target["auth_source"] != "local":
            raise UserError(409, "sso_user", M_SSO_NO_PASSWORD)
        await q.set_temporary_password(conn, tenant_id, user_id, password_hash)
        await write_audit(conn, tenant_id=tenant_id, actor=actor, action="user.password_reset", target_type="user",
                          target_id=str(user_id), target_name=target["username"], details={}, addr=addr)
        user = await q.get_tenant_user(conn, tenant_id, user_id)
    log.info("users.password_reset", extra={"tenant_id": str(tenant_id), "user_id": str(user_id),
                                            "actor_id": str(actor.id)})
    return user, temporary


def parse_filter(*, q_text: str = "", role: str = "", status: str = "", source: str = "") -> q.UserFilter:
    """Query-string filters; unknown values are ignored on pages (the API checks them first)."""
    return q.UserFilter(q=q_text or None, role=role if role in ROLE_VALUES or role == "platform_owner" else None,
                        active={"active": True, "disabled": False}.get(status),
                        source=source if source in SOURCES else None)
