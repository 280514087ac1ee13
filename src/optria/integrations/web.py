"""Request plumbing shared by the integrations pages and API: tenant, actor, ids, permission flags."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request
from litestar.exceptions import NotFoundException

from optria.db import Database
from optria.identity.rbac import Permission, has_permission
from optria.integrations.service import Actor
from optria.secretbox import SecretBox

MAX_ID = 2**63 - 1


def db_of(request: Request) -> Database:
    return request.app.state.db


def box_of(request: Request) -> SecretBox:
    return request.app.state.secretbox


def settings_of(request: Request) -> Any:
    return request.app.state.settings


def tenant_of(request: Request) -> UUID:
    """The signed-in user's tenant; every integrations route is tenant-scoped."""
    user = request.scope["user"]
    if user.tenant_id is None:  # platform owners hold no tenant permission; defensive only
        raise NotFoundException()
    return user.tenant_id


def actor_of(request: Request) -> Actor:
    return Actor(request.scope["user"], request.client.host if request.client else None)


def check_id(value: int) -> int:
    """Path ids outside bigint are simply not found (never a database error)."""
    if not 0 < value <= MAX_ID:
        raise NotFoundException()
    return value


def can(request: Request, permission: Permission) -> bool:
    user: Any = request.scope.get("user")
    return user is not None and has_permission(user.role, permission)


def page_flags(request: Request) -> dict[str, bool]:
    return {
        "can_manage": can(request, Permission.MANAGE_INTEGRATIONS),
        "can_test": can(request, Permission.TEST_INTEGRATIONS),
        "can_map": can(request, Permission.EDIT_MAPPINGS),
    }


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """A query parameter as an int clamped to [low, high]; junk gives the default."""
    raw = request.query_params.get(name, "")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return default
    return max(low, min(high, value))


async def read_upload(request: Request, field: str = "file") -> tuple[bytes, dict[str, Any]]:
    """The bytes of an uploaded file (multipart ``field``, or a ``csv_text`` form field), else the raw body;
    with the other form fields (empty for a raw body)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get(field)
        if upload is not None and not isinstance(upload, str):
            data = await upload.read()
            if data:
                return data, fields
        return (fields.get("csv_text") or "").encode(), fields
    return await request.body(), {}
