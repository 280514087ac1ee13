"""Request plumbing of the integrations pages and API: the kit's (tenant, ids) and the permission check,
plus the secret box, settings, the acting user, paging numbers and uploads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from litestar import Request
from litestar.exceptions import NotFoundException

from optria.identity.guards import can
from optria.identity.rbac import Permission
from optria.integrations.service import Actor
from optria.secretbox import SecretBox
from optria.web.request_context import check_id, db_of, tenant_of

__all__ = ["actor_of", "box_of", "can", "check_id", "db_of", "int_param", "page_flags", "read_upload",
           "row_or_404", "settings_of", "tenant_of"]


def box_of(request: Request) -> SecretBox:
    return request.app.state.secretbox


def settings_of(request: Request) -> Any:
    return request.app.state.settings


def actor_of(request: Request) -> Actor:
    return Actor(request.scope["user"], request.client.host if request.client else None)


def page_flags(request: Request) -> dict[str, bool]:
    return {
        "can_manage": can(request, Permission.MANAGE_INTEGRATIONS),
        "can_test": can(request, Permission.TEST_INTEGRATIONS),
        "can_map": can(request, Permission.EDIT_MAPPINGS),
    }


async def row_or_404(request: Request, read: Callable[[Any, UUID, int], Awaitable[dict[str, Any] | None]],
                     row_id: int) -> dict[str, Any]:
    """The tenant's row that ``read`` (a store getter: integration, mapping) finds for a path id; 404 when
    there is none, another tenant's included."""
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        row = await read(conn, tenant_id, check_id(row_id))
    if row is None:
        raise NotFoundException()
    return row


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
