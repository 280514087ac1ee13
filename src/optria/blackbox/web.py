"""Request plumbing shared by the Black Box pages and API: tenant, ids, what the user may see and do."""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.exceptions import NotFoundException

from optria.blackbox.filters import MAX_ID, ListFilter
from optria.db import Database
from optria.identity.rbac import Permission, has_permission


def db_of(request: Request) -> Database:
    return request.app.state.db


def tenant_of(request: Request) -> UUID:
    user = request.scope["user"]
    if user.tenant_id is None:   # platform owners hold no black box permission; defensive only
        raise NotFoundException()
    return user.tenant_id


def check_id(value: int) -> int:
    """Path ids outside bigint are not found (never a database error)."""
    if not 0 < value <= MAX_ID:
        raise NotFoundException()
    return value


def client_addr(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def can(request: Request, permission: Permission) -> bool:
    user: Any = request.scope.get("user")
    return user is not None and has_permission(user.role, permission)


def sees_details(request: Request) -> bool:
    """Payloads and actors are for roles with black box details; viewers get the read-only summary."""
    return can(request, Permission.VIEW_BLACKBOX_DETAILS)


def page_flags(request: Request) -> dict[str, bool]:
    return {
        "can_details": sees_details(request),
        "can_act": can(request, Permission.ACT_ON_INCIDENTS),
        "can_view_twin": can(request, Permission.VIEW_TWIN),
        "can_view_assets": can(request, Permission.VIEW_ASSETS),
        "can_view_integrations": can(request, Permission.VIEW_INTEGRATIONS),
    }


def pager(f: ListFilter, total: int, page_size: int, base: str, *, capped: bool = False) -> dict[str, Any]:
    pages = max(1, math.ceil(total / page_size))
    first = (f.page - 1) * page_size + 1
    has_next = f.page < pages or (capped and f.page * page_size < total)
    return {
        "page": f.page, "pages": pages, "total": total, "capped": capped,
        "first": first if total else 0, "last": min(total, f.page * page_size),
        "prev": base + f.query(page=f.page - 1) if f.page > 1 else None,
        "next": base + f.query(page=f.page + 1) if has_next else None,
    }


def display_name(row: dict[str, Any], prefix: str, lang: str) -> str:
    name_ar = row.get(prefix + "name_ar")
    return name_ar if lang == "ar" and name_ar else (row.get(prefix + "name") or "")
