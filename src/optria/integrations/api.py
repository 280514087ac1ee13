"""JSON API of integrations under /api/integrations: list, create, read, edit, test, browse, action log.

msgspec Structs in and out; errors as ``{"error": {"code", "message"}}``. An integration of
another tenant is answered exactly like one that does not exist (404). Secrets are
write-only: responses say ``has_password``, never the value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, get, patch, post
from litestar.params import FromPath, JSONBody

from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.integrations import service, store
from optria.integrations.errors import (
    NOT_FOUND_MESSAGES,
    Conflict,
    ImportRejected,
    InputError,
    NotFound,
    SourceError,
    api_error,
)
from optria.integrations.models import (
    KINDS,
    BrowseOut,
    IntegrationIn,
    IntegrationList,
    IntegrationOut,
    IntegrationPatch,
    LogEntryOut,
    LogPage,
    TestOut,
)
from optria.integrations.store import Conn
from optria.integrations.views import integration_view
from optria.integrations.web import actor_of, box_of, check_id, db_of, int_param, settings_of, tenant_of
from optria.web.errors import ApiError

MAX_PAGE_SIZE = 100


@asynccontextmanager
async def api_errors() -> AsyncIterator[None]:
    """The area's errors as API errors (the transaction inside has already rolled back)."""
    try:
        yield
    except (NotFound, InputError, Conflict) as exc:
        raise api_error(exc, NOT_FOUND_MESSAGES) from None
    except SourceError as exc:
        raise ApiError(exc.status, exc.code, exc.message, extra={"reason": exc.reason}) from None
    except ImportRejected as exc:
        rejected = len(exc.report["rejected"])
        raise ApiError(422, "rows_rejected", f"{rejected} row(s) are invalid; nothing was imported. Fix them and "
                       "import again.", extra={"report": clean_report(exc.report)}) from None


def clean_report(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "rejected": [{k: r[k] for k in ("line", "external_id", "reason")} for r in report["rejected"]]}


@asynccontextmanager
async def tenant_tx(request: Request) -> AsyncIterator[tuple[Conn, UUID]]:
    tenant_id = tenant_of(request)
    async with api_errors():
        async with db_of(request).tenant(tenant_id) as conn:
            yield conn, tenant_id


def integration_id_of(value: int) -> int:
    try:
        return check_id(value)
    except Exception:
        raise ApiError(404, "integration_not_found", NOT_FOUND_MESSAGES["integration"]) from None


def page_args(request: Request, default_size: int = 25) -> tuple[int, int]:
    return int_param(request, "page", 1, 1, 100_000), int_param(request, "page_size", default_size, 1, MAX_PAGE_SIZE)


async def read_integration(conn: Conn, request: Request, tenant_id: UUID, integration_id: int) -> IntegrationOut:
    row = await store.get_integration(conn, tenant_id, integration_id)
    if row is None:
        raise NotFound("integration")
    return msgspec.convert(integration_view(row, settings_of(request)), IntegrationOut)


@get("/api/integrations/", guards=[requires(Permission.VIEW_INTEGRATIONS)], name="api_integrations_list")
async def api_integrations_list(request: Request) -> IntegrationList:
    page, page_size = page_args(request)
    kind = request.query_params.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise ApiError(400, "invalid_filter", "kind must be one of opcua, pi, sql.")
    async with tenant_tx(request) as (conn, tenant_id):
        rows, total = await store.list_integrations(conn, tenant_id, kind=kind, q=request.query_params.get("q"),
                                                    page=page, page_size=page_size)
    items = [msgspec.convert(integration_view(r, settings_of(request)), IntegrationOut) for r in rows]
    return IntegrationList(items=items, total=total, page=page, page_size=page_size)


@post("/api/integrations/", guards=[requires(Permission.MANAGE_INTEGRATIONS)], name="api_integration_create")
async def api_integration_create(request: Request, data: JSONBody[IntegrationIn]) -> IntegrationOut:
    async with tenant_tx(request) as (conn, tenant_id):
        integration_id = await service.create_integration(
            conn, box_of(request), settings_of(request), tenant_id, kind=data.kind, name=data.name,
            config=data.config, password=data.password, enabled=data.enabled, actor=actor_of(request))
        return await read_integration(conn, request, tenant_id, integration_id)


@get("/api/integrations/{integration_id:int}", guards=[requires(Permission.VIEW_INTEGRATIONS)],
     name="api_integration_get")
async def api_integration_get(request: Request, integration_id: FromPath[int]) -> IntegrationOut:
    integration_id = integration_id_of(integration_id)
    async with tenant_tx(request) as (conn, tenant_id):
        return await read_integration(conn, request, tenant_id, integration_id)


@patch("/api/integrations/{integration_id:int}", guards=[requires(Permission.MANAGE_INTEGRATIONS)],
       name="api_integration_update")
async def api_integration_update(request: Request, integration_id: FromPath[int],
                                 data: JSONBody[IntegrationPatch]) -> IntegrationOut:
    integration_id = integration_id_of(integration_id)
    changes = {f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not msgspec.UNSET}
    async with tenant_tx(request) as (conn, tenant_id):
        await service.update_integration(conn, box_of(request), settings_of(request), tenant_id, integration_id,
                                         changes, actor=actor_of(request))
        return await read_integration(conn, request, tenant_id, integration_id)


@post("/api/integrations/{integration_id:int}/test", guards=[requires(Permission.TEST_INTEGRATIONS)], status_code=200,
      name="api_integration_test")
async def api_integration_test(request: Request, integration_id: FromPath[int]) -> TestOut:
    """Merge with the global defaults, run the connector's test, record it; ``success`` false is still a 200."""
    integration_id = integration_id_of(integration_id)
    async with api_errors():
        result = await service.run_test(db_of(request), box_of(request), settings_of(request), tenant_of(request),
                                        integration_id, actor_of(request))
    return msgspec.convert(result, TestOut)


@get("/api/integrations/{integration_id:int}/browse", guards=[requires(Permission.TEST_INTEGRATIONS)],
     name="api_integration_browse")
async def api_integration_browse(request: Request, integration_id: FromPath[int]) -> BrowseOut:
    """OPC-UA: ``node_id`` (default Objects) and ``depth`` (1-5); PI: ``q`` (name filter), ``start``,
    ``count``; SQL: the tags of the tags query."""
    integration_id = integration_id_of(integration_id)
    params = request.query_params
    async with api_errors():
        result = await service.browse(
            db_of(request), box_of(request), settings_of(request), tenant_of(request), integration_id,
            node_id=(params.get("node_id") or "").strip() or None, depth=int_param(request, "depth", 1, 1, 5),
            q=params.get("q"), start=int_param(request, "start", 0, 0, 10_000_000),
            count=int_param(request, "count", 50, 1, 500))
    return msgspec.convert(result, BrowseOut)


@get("/api/integrations/{integration_id:int}/log", guards=[requires(Permission.VIEW_INTEGRATIONS)],
     name="api_integration_log")
async def api_integration_log(request: Request, integration_id: FromPath[int]) -> LogPage:
    integration_id = integration_id_of(integration_id)
    page, page_size = page_args(request)
    async with tenant_tx(request) as (conn, tenant_id):
        if await store.get_integration(conn, tenant_id, integration_id) is None:
            raise NotFound("integration")
        rows, total = await store.list_actions(conn, tenant_id, integration_id, page=page, page_size=page_size)
    return LogPage(items=[msgspec.convert(r, LogEntryOut) for r in rows], total=total, page=page, page_size=page_size)


ROUTES = [
    api_integrations_list, api_integration_create, api_integration_get, api_integration_update, api_integration_test,
    api_integration_browse, api_integration_log,
]
