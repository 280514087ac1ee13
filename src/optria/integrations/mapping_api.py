"""JSON API of signal mappings: list, create, bulk map, edit, delete, CSV export and import.

Mapping to an asset or signal that is not in the caller's tenant answers 422 (a referenced
field) or 404 (a path id), and writes nothing. Bulk map and CSV apply are all or nothing.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.integrations import csv_io, mapping, service, store
from optria.integrations.api import api_errors, clean_report, integration_id_of, page_args, tenant_tx
from optria.integrations.errors import NOT_FOUND_MESSAGES, NotFound
from optria.integrations.models import (
    BulkIn,
    BulkOut,
    DeletedOut,
    ImportReport,
    MappingIn,
    MappingOut,
    MappingPage,
    MappingPatch,
)
from optria.integrations.store import Conn
from optria.integrations.views import mapping_view
from optria.integrations.web import actor_of, box_of, check_id, db_of, read_upload, settings_of, tenant_of
from optria.web.errors import ApiError

COMMON_FIELDS = ("unit", "scale", "offset", "warn_low", "warn_high", "crit_low", "crit_high", "expected_interval_s",
                 "enabled")


def mapping_id_of(value: int) -> int:
    try:
        return check_id(value)
    except Exception:
        raise ApiError(404, "mapping_not_found", NOT_FOUND_MESSAGES["mapping"]) from None


async def read_mapping(conn: Conn, tenant_id: Any, mapping_id: int) -> MappingOut:
    row = await store.get_mapping(conn, tenant_id, mapping_id)
    if row is None:
        raise NotFound("mapping")
    return msgspec.convert(mapping_view(row), MappingOut)


async def _integration_exists(conn: Conn, tenant_id: Any, integration_id: int) -> None:
    if await store.get_integration(conn, tenant_id, integration_id) is None:
        raise NotFound("integration")


@get("/api/integrations/{integration_id:int}/mappings", guards=[requires(Permission.VIEW_INTEGRATIONS)],
     name="api_mappings_list")
async def api_mappings_list(request: Request, integration_id: FromPath[int]) -> MappingPage:
    """Mappings with latest values; ``q`` searches tag and asset, ``asset_id`` filters."""
    integration_id = integration_id_of(integration_id)
    page, page_size = page_args(request, 50)
    raw_asset = request.query_params.get("asset_id")
    if raw_asset not in (None, "") and not raw_asset.isdigit():
        raise ApiError(400, "invalid_filter", "asset_id must be a number.")
    async with tenant_tx(request) as (conn, tenant_id):
        await _integration_exists(conn, tenant_id, integration_id)
        rows, total = await store.list_mappings(conn, tenant_id, integration_id,
                                                asset_id=int(raw_asset) if raw_asset else None,
                                                q=request.query_params.get("q"), page=page, page_size=page_size)
    return MappingPage(items=[msgspec.convert(mapping_view(r), MappingOut) for r in rows], total=total, page=page,
                       page_size=page_size)


@post("/api/integrations/{integration_id:int}/mappings", guards=[requires(Permission.EDIT_MAPPINGS)],
      name="api_mapping_create")
async def api_mapping_create(request: Request, integration_id: FromPath[int], data: JSONBody[MappingIn]) -> MappingOut:
    integration_id = integration_id_of(integration_id)
    if data.signal_id is None and not data.external_id:
        raise ApiError(422, "validation_error", "Give external_id (a tag of the source) or signal_id.",
                       extra={"fields": {"external_id": "Enter the tag's id (NodeId, PI WebId or SQL tag)."}})
    raw = msgspec.structs.asdict(data)
    async with tenant_tx(request) as (conn, tenant_id):
        mapping_id = await mapping.create_mapping(conn, tenant_id, integration_id, raw, actor_of(request))
        return await read_mapping(conn, tenant_id, mapping_id)


@post("/api/integrations/{integration_id:int}/mappings/bulk", guards=[requires(Permission.EDIT_MAPPINGS)],
      status_code=200, name="api_mappings_bulk")
async def api_mappings_bulk(request: Request, integration_id: FromPath[int], data: JSONBody[BulkIn]) -> BulkOut:
    """Many tags to one asset: ``items``, ``external_ids``, an OPC-UA ``folder`` or a PI ``name_filter``."""
    integration_id = integration_id_of(integration_id)
    items: list[dict[str, Any]] = [msgspec.structs.asdict(i) for i in data.items]
    items += [{"external_id": e} for e in data.external_ids]
    if data.folder or data.name_filter:
        async with api_errors():
            items += await folder_items(request, integration_id, folder=data.folder, name_filter=data.name_filter,
                                        depth=data.depth)
    common = {f: getattr(data, f) for f in COMMON_FIELDS}
    async with tenant_tx(request) as (conn, tenant_id):
        result = await mapping.bulk_map(conn, tenant_id, integration_id, items, asset_id=data.asset_id, common=common,
                                        role=data.metric_role, replace=data.replace, actor=actor_of(request))
    return msgspec.convert(result, BulkOut)


async def folder_items(request: Request, integration_id: int, *, folder: str | None, name_filter: str | None,
                       depth: int) -> list[dict[str, Any]]:
    """Every signal under an OPC-UA folder node, or every PI point matching a name filter."""
    source = await service.load_source(db_of(request), box_of(request), settings_of(request), tenant_of(request),
                                       integration_id)
    settings = settings_of(request)
    if source.kind == "pi":
        found, start = [], 0
        while len(found) < mapping.BULK_MAX:
            page = await service.source_items(source, settings, q=name_filter or folder or "*", start=start, count=500)
            found += page
            if len(page) < 500:
                break
            start += 500
    else:
        found = await service.source_items(source, settings, node_id=folder, depth=max(1, min(depth, 6)),
                                           max_items=mapping.BULK_MAX)
    return [{"external_id": i.id, "name": i.name, "path": i.path, "data_type": i.data_type, "eng_unit": i.eng_unit}
            for i in found if i.is_signal]


@patch("/api/mappings/{mapping_id:int}", guards=[requires(Permission.EDIT_MAPPINGS)], name="api_mapping_update")
async def api_mapping_update(request: Request, mapping_id: FromPath[int], data: JSONBody[MappingPatch]) -> MappingOut:
    mapping_id = mapping_id_of(mapping_id)
    async with tenant_tx(request) as (conn, tenant_id):
        await mapping.update_mapping(conn, tenant_id, mapping_id, data.provided(), actor_of(request))
        return await read_mapping(conn, tenant_id, mapping_id)


@delete("/api/mappings/{mapping_id:int}", guards=[requires(Permission.EDIT_MAPPINGS)], status_code=200,
        name="api_mapping_delete")
async def api_mapping_delete(request: Request, mapping_id: FromPath[int]) -> DeletedOut:
    mapping_id = mapping_id_of(mapping_id)
    async with tenant_tx(request) as (conn, tenant_id):
        await mapping.delete_mapping(conn, tenant_id, mapping_id, actor_of(request))
    return DeletedOut(deleted=mapping_id)


@get("/api/integrations/{integration_id:int}/mappings.csv", guards=[requires(Permission.VIEW_INTEGRATIONS)],
     name="api_mappings_export", media_type="text/csv")
async def api_mappings_export(request: Request, integration_id: FromPath[int]) -> Response:
    integration_id = integration_id_of(integration_id)
    async with tenant_tx(request) as (conn, tenant_id):
        integration = await store.get_integration(conn, tenant_id, integration_id)
        if integration is None:
            raise NotFound("integration")
        rows = await store.export_mappings(conn, tenant_id, integration_id)
    filename = f"mappings-{integration_id}.csv"
    return Response(content=csv_io.export_csv(rows).encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


@post("/api/integrations/{integration_id:int}/mappings/import", guards=[requires(Permission.EDIT_MAPPINGS)],
      status_code=200, name="api_mappings_import")
async def api_mappings_import(request: Request, integration_id: FromPath[int]) -> ImportReport:
    """The CSV as the body (text/csv) or as a multipart ``file``; ``?mode=preview`` (default) checks every
    row, ``?mode=apply`` writes them all in one transaction, or nothing when any row is rejected (422)."""
    integration_id = integration_id_of(integration_id)
    mode = request.query_params.get("mode", "preview")
    if mode not in ("preview", "apply"):
        raise ApiError(400, "invalid_mode", "mode must be preview or apply.")
    raw, _ = await read_upload(request)
    async with tenant_tx(request) as (conn, tenant_id):
        report = await csv_io.import_csv(conn, tenant_id, integration_id, csv_io.decode(raw), apply=mode == "apply",
                                         actor=actor_of(request))
    return msgspec.convert(clean_report(report), ImportReport)


ROUTES = [
    api_mappings_list, api_mapping_create, api_mappings_bulk, api_mapping_update, api_mapping_delete,
    api_mappings_export, api_mappings_import,
]
