"""JSON API for tenant user management, mirroring Management → Users (and the audit log).

The tenant is always the signed-in admin's; no route takes a tenant from the path, query or
body (unknown body fields are refused). A user id of another tenant answers 404. Errors are
``{"error": {"code", "message", "details"?}}``:

- ``GET    /api/tenant/users``  ?q=&role=&status=active|disabled&source=local|sso&page=&per_page= → UserList
- ``POST   /api/tenant/users``  {username, email, role, display_name?, password?} → 201 UserCreated
  (``temporary_password`` is returned once when no password was given; the user must change it at first sign-in)
- ``GET    /api/tenant/users/{id}`` → User
- ``PATCH  /api/tenant/users/{id}`` {role?, is_active?, display_name?} → User. Enable/disable is
  ``{"is_active": true|false}``; disabling revokes the user's sessions at once. 409 ``cannot_disable_self``,
  ``cannot_change_own_role``, ``last_admin``; 422 ``unknown_role`` (``platform_owner`` included).
- ``POST   /api/tenant/users/{id}/reset-password`` → PasswordReset (new temporary password, shown once;
  409 ``sso_user`` for single sign-on users)
- ``GET    /api/tenant/audit``  ?action=&target_id=&q=&page=&per_page= → AuditList
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from msgspec import UNSET, UnsetType

from optria.identity import users
from optria.identity.guards import requires
from optria.identity.models import UserOut
from optria.identity.rbac import Permission
from optria.identity.users import NewUser, UserChanges, UserError
from optria.web.errors import ApiError
from optria.web.request_context import client_addr


class User(UserOut):
    must_change_password: bool


class UserList(msgspec.Struct):
    items: list[User]
    total: int
    page: int
    per_page: int
    pages: int


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    email: str
    role: str
    display_name: str = ""
    password: str = ""


class UserCreated(msgspec.Struct):
    user: User
    temporary_password: str | None


class UserPatch(msgspec.Struct, forbid_unknown_fields=True):
    role: str | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET
    display_name: str | None | UnsetType = UNSET


class PasswordReset(msgspec.Struct):
    user: User
    temporary_password: str


class AuditEntry(msgspec.Struct):
    id: int
    action: str
    actor_name: str
    actor_user_id: UUID | None
    target_type: str
    target_id: str | None
    target_name: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditList(msgspec.Struct):
    items: list[AuditEntry]
    total: int
    page: int
    per_page: int
    pages: int


def to_user(row: dict[str, Any]) -> User:
    return User(id=row["id"], username=row["username"], email=row["email"], display_name=row["display_name"],
                role=row["role"], is_active=row["is_active"], auth_source=row["auth_source"],
                must_change_password=row["must_change_password"], identity_provider=row.get("provider_name"),
                last_login_at=row["last_login_at"], created_at=row["created_at"])


def api_error(err: UserError) -> ApiError:
    return ApiError(err.status, err.code, err.message, extra={"fields": err.errors} if err.errors else None)


def _check_filter(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value and value not in allowed:
        raise ApiError(400, "invalid_filter", f"Unknown {name} {value[:40]!r}; use one of: {', '.join(allowed)}.")


GUARD = [requires(Permission.MANAGE_USERS)]


@get("/api/tenant/users", guards=GUARD, name="api_users_list")
async def api_users_list(request: Request, q: FromQuery[str] = "", role: FromQuery[str] = "",
                         status: FromQuery[str] = "", source: FromQuery[str] = "", page: FromQuery[int] = 1,
                         per_page: FromQuery[int] = users.PAGE_SIZE) -> UserList:
    """Users of the caller's tenant; filters are exact (unknown values → 400)."""
    _check_filter("role", role, users.ROLE_VALUES)
    _check_filter("status", status, users.STATUSES)
    _check_filter("source", source, users.SOURCES)
    f = users.parse_filter(q_text=q[:100], role=role, status=status, source=source)
    result = await users.list_users(request.app.state.db, request.scope["user"], f, page, per_page)
    return UserList([to_user(r) for r in result.items], result.total, result.page, result.per_page, result.pages)


@post("/api/tenant/users", guards=GUARD, name="api_users_create", status_code=201)
async def api_users_create(request: Request, data: JSONBody[UserCreate]) -> UserCreated:
    """Create a local user; without ``password`` a temporary one is generated and returned once."""
    try:
        row, temporary = await users.create_user(
            request.app.state.db, request.scope["user"],
            NewUser(username=data.username[:100], email=data.email[:300], role=data.role[:50],
                    display_name=data.display_name[:200], password=data.password[:512]),
            addr=client_addr(request))
    except UserError as err:
        raise api_error(err) from None
    return UserCreated(user=to_user(row), temporary_password=temporary)


@get("/api/tenant/users/{user_id:uuid}", guards=GUARD, name="api_users_get")
async def api_users_get(request: Request, user_id: FromPath[UUID]) -> User:
    try:
        return to_user(await users.get_user(request.app.state.db, request.scope["user"], user_id))
    except UserError as err:
        raise api_error(err) from None


@patch("/api/tenant/users/{user_id:uuid}", guards=GUARD, name="api_users_patch")
async def api_users_patch(request: Request, user_id: FromPath[UUID], data: JSONBody[UserPatch]) -> User:
    """Change role, active flag and/or display name in one transaction (all or nothing)."""
    changes = UserChanges(
        role=None if data.role is UNSET else data.role,
        is_active=None if data.is_active is UNSET else data.is_active,
        display_name=None if data.display_name is UNSET else data.display_name,
        set_display_name=data.display_name is not UNSET,
    )
    try:
        row = await users.update_user(request.app.state.db, request.scope["user"], user_id, changes,
                                      addr=client_addr(request))
    except UserError as err:
        raise api_error(err) from None
    return to_user(row)


@post("/api/tenant/users/{user_id:uuid}/reset-password", guards=GUARD, name="api_users_reset_password",
      status_code=200)
async def api_users_reset_password(request: Request, user_id: FromPath[UUID]) -> PasswordReset:
    try:
        row, temporary = await users.reset_password(request.app.state.db, request.scope["user"], user_id,
                                                     addr=client_addr(request))
    except UserError as err:
        raise api_error(err) from None
    return PasswordReset(user=to_user(row), temporary_password=temporary)


@get("/api/tenant/audit", guards=[requires(Permission.VIEW_AUDIT)], name="api_audit_list")
async def api_audit_list(request: Request, action: FromQuery[str] = "", target_id: FromQuery[str] = "",
                         q: FromQuery[str] = "", page: FromQuery[int] = 1,
                         per_page: FromQuery[int] = users.PAGE_SIZE) -> AuditList:
    result = await users.list_audit(request.app.state.db, request.scope["user"], action=action[:100] or None,
                                    target_id=target_id[:100] or None, q_text=q[:100], page=page, per_page=per_page)
    items = [AuditEntry(id=r["id"], action=r["action"], actor_name=r["actor_name"], actor_user_id=r["actor_user_id"],
                        target_type=r["target_type"], target_id=r["target_id"], target_name=r["target_name"],
                        details=r["details"] or {}, created_at=r["created_at"]) for r in result.items]
    return AuditList(items, result.total, result.page, result.per_page, result.pages)


ROUTES = [api_users_list, api_users_create, api_users_get, api_users_patch, api_users_reset_password, api_audit_list]
