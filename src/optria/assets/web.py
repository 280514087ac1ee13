"""Request plumbing shared by the assets pages and API: tenant, actor, ids, permission flags."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request
from litestar.exceptions import NotFoundException

from optria.db import Database
from optria.identity.rbac import Permission, has_permission

MAX_ID = 2**63 - 1


def db_of(request: Request) -> Database:
    return request.app.state.db


def tenant_of(request: Request) -> UUID:
    """The signed-in user's tenant; every route of the area is tenant-scoped."""
    user = request.scope["user"]
    if user.tenant_id is None:  # platform owners hold no tenant permission; defensive only
        raise NotFoundException()
    return user.tenant_id


def client_addr(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_id(value: int) -> int:
    """Path ids outside bigint are simply not found (never a database error)."""
    if not 0 < value <= MAX_ID:
        raise NotFoundException()
    return value


def can(request: Request, permission: Permission) -> bool:
    user: Any = request.scope.get("user")
    return user is not None and has_permission(user.role, permission)


def page_flags(request: Request) -> dict[str, bool]:
    """What the signed-in user may do here, for templates that show or hide buttons."""
    return {
        "can_edit": can(request, Permission.EDIT_ASSETS),
        "can_raise": can(request, Permission.RAISE_ALERTS),
        "can_view_twin": can(request, Permission.VIEW_TWIN),
        "can_view_blackbox": can(request, Permission.VIEW_BLACKBOX),
        "can_view_integrations": can(request, Permission.VIEW_INTEGRATIONS),
    }
