"""The mapping page of an integration: browse or search its tags, pick many, assign them to an asset
(or map whole folders), the current mappings with latest values, edit/delete, CSV import and export.

The tag picker is server-rendered (a folder link opens it, PI search pages with ``start``),
so it works without JavaScript; ``/static/integrations.js`` only expands folders in place
through the browse API and adds select-all. Each checkbox carries the tag's id, name,
path and unit as a small JSON value, so the assign form needs no second browse.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect

from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.integrations import csv_io, mapping, service, store
from optria.integrations.errors import N_, Conflict, ImportRejected, InputError, NotFound, SourceError
from optria.integrations.mapping_api import COMMON_FIELDS, folder_items
from optria.integrations.routes import CRUMB, common_context
from optria.integrations.views import integration_view, mapping_view
from optria.integrations.web import (
    actor_of,
    box_of,
    check_id,
    db_of,
    int_param,
    read_upload,
    row_or_404,
    settings_of,
    tenant_of,
)
from optria.web import flash
from optria.web.i18n import gettext, verbatim
from optria.web.templating import render

FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
MAPPINGS_PAGE_SIZE = 50
SEARCH_PAGE_SIZE = 50

M_MAPPED = N_("%(created)s tags mapped to %(asset)s, %(updated)s re-mapped, %(skipped)s already mapped were skipped.")
M_MAPPING_SAVED = N_("Mapping of %(name)s saved.")
M_MAPPING_DELETED = N_("Mapping of %(name)s removed. The tag's stored history is kept.")
M_IMPORTED = N_("CSV imported: %(creates)s mappings created, %(updates)s updated.")
MESSAGES = (M_MAPPED, M_MAPPING_SAVED, M_MAPPING_DELETED, M_IMPORTED)


class MappingForm(msgspec.Struct):
    asset_id: str = ""
    metric_role: str = ""
    unit: str = ""
    scale: str = "1"
    offset: str = "0"
    warn_low: str = ""
    warn_high: str = ""
    crit_low: str = ""
    crit_high: str = ""
    expected_interval_s: str = "60"
    enabled: str = ""


def _translated(errors: dict[str, str]) -> dict[str, str]:
    return {k: gettext(v) for k, v in errors.items()}


def map_link(integration_id: int, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"/integrations/{integration_id}/map" + (f"?{query}" if query else "")


async def _browse(request: Request, card: dict[str, Any], node: str | None, q: str, start: int) -> dict[str, Any]:
    """The picker's content, or the reason the source could not be read (never a page error)."""
    try:
        result = await service.browse(db_of(request), box_of(request), settings_of(request), tenant_of(request),
                                      card["id"], node_id=node, q=q or "*", start=start, count=SEARCH_PAGE_SIZE)
    except (SourceError, Conflict) as exc:
        return {"items": [], "error": exc.message}
    return result | {"error": None}


async def map_page(request: Request, integration_id: int, *, status: int = 200, **extra: Any) -> Response:
    tenant_id = tenant_of(request)
    params = request.query_params
    node = (params.get("node") or "").strip() or None
    q = (params.get("q") or "").strip()[:200]
    start = int_param(request, "start", 0, 0, 10_000_000)
    mq = (params.get("mq") or "").strip()[:100]
    mpage = int_param(request, "mpage", 1, 1, 100_000)
    async with db_of(request).tenant(tenant_id) as conn:
        row = await store.get_integration(conn, tenant_id, check_id(integration_id))
        if row is None:
            raise NotFoundException()
        assets = await store.asset_choices(conn, tenant_id)
        rows, total = await store.list_mappings(conn, tenant_id, row["id"], q=mq or None, page=mpage,
                                                page_size=MAPPINGS_PAGE_SIZE)
    card = integration_view(row, settings_of(request))
    browse = await _browse(request, card, node, q, start)
    pages = max(1, math.ceil(total / MAPPINGS_PAGE_SIZE))
    note, _ = flash.pop(request)
    context: dict[str, Any] = {
        "card": card, "assets": assets, "browse": browse, "node": node, "q": q, "start": start,
        "mappings": [mapping_view(r) for r in rows], "mapping_total": total, "mq": mq, "flash": note,
        "mpager": {"page": mpage, "pages": pages, "has_prev": mpage > 1, "has_next": mpage < pages},
        "mpage_link": lambda n: map_link(row["id"], node=node, q=q, start=start or None, mq=mq, mpage=n) + "#mappings",
        "map_link": lambda **kw: map_link(row["id"], **kw), "here": map_link(row["id"], node=node, q=q,
                                                                                start=start or None),
        "assign": {"asset_id": "", "metric_role": "", "unit": "", "scale": "1", "offset": "0", "warn_low": "",
                   "warn_high": "", "crit_low": "", "crit_high": "", "expected_interval_s": "60", "replace": ""},
        "assign_errors": {}, "selected": set(), "report": None, "csv_text": "", "import_error": None,
    }
    context.update(extra)
    return render(request, "integrations/map.html", status_code=status,
                  breadcrumbs=[CRUMB, (verbatim(row["name"]), f"/integrations/{row['id']}"), ("Map tags", None)],
                  **context, **common_context(request))


@get("/integrations/{integration_id:int}/map", guards=[requires(Permission.EDIT_MAPPINGS)], name="integration_map_page")
async def integration_map_page(request: Request, integration_id: FromPath[int]) -> Response:
    return await map_page(request, integration_id)


def _selected(values: list[str]) -> list[dict[str, Any]]:
    """Checkbox values: JSON {id, name, path, unit, type} (a bare id is accepted too)."""
    items = []
    for value in values:
        try:
            data = json.loads(value)
        except ValueError:
            data = {"id": value}
        if not isinstance(data, dict) or not str(data.get("id") or "").strip():
            continue
        items.append({"external_id": str(data["id"]), "name": data.get("name"), "path": data.get("path"),
                      "eng_unit": data.get("unit"), "data_type": data.get("type")})
    return items


@post("/integrations/{integration_id:int}/map", guards=[requires(Permission.EDIT_MAPPINGS)],
      name="integration_map_assign")
async def integration_map_assign(request: Request, integration_id: FromPath[int]) -> Response:
    """Assign the checked tags, and every signal under the checked folders, to one asset."""
    check_id(integration_id)
    form = await request.form()
    fields = {k: form.get(k, "") for k in ("asset_id", "metric_role", *COMMON_FIELDS, "replace", "back")}
    items = _selected(form.getall("sel") if "sel" in form else [])
    folders = [f for f in (form.getall("folder") if "folder" in form else []) if f.strip()]
    common = {k: fields[k] for k in COMMON_FIELDS if k != "enabled"}
    back = fields["back"] if str(fields["back"]).startswith(f"/integrations/{integration_id}/map") else map_link(
        integration_id)
    try:
        for folder in folders:
            items += await folder_items(request, integration_id, folder=folder, name_filter=None, depth=6)
        tenant_id = tenant_of(request)
        async with db_of(request).tenant(tenant_id) as conn:
            result = await mapping.bulk_map(conn, tenant_id, integration_id, items, asset_id=fields["asset_id"] or None,
                                            common=common, role=fields["metric_role"] or None,
                                            replace=bool(fields["replace"]), actor=actor_of(request))
            asset = await store.asset_ref(conn, tenant_id, int(fields["asset_id"]))
    except NotFound:
        raise NotFoundException() from None
    except (InputError, SourceError, Conflict) as exc:
        errors = exc.fields if isinstance(exc, InputError) else {"form": exc.message}
        return await map_page(request, integration_id, status=422 if isinstance(exc, InputError) else 409,
                              assign=fields, assign_errors=_translated(errors),
                              selected={i["external_id"] for i in items})
    flash.push(request, "success", M_MAPPED, created=result["created"], updated=result["updated"],
               skipped=len(result["skipped"]), asset=asset["code"] if asset else "")
    return Redirect(back + "#mappings", status_code=303)


@post("/integrations/{integration_id:int}/import", guards=[requires(Permission.EDIT_MAPPINGS)],
      name="integration_mappings_import_page")
async def integration_mappings_import_page(request: Request, integration_id: FromPath[int]) -> Response:
    """CSV import from the mapping page: ``mode=preview`` shows the report, ``mode=apply`` writes it."""
    check_id(integration_id)
    raw, fields = await read_upload(request)
    apply = fields.get("mode") == "apply"
    tenant_id = tenant_of(request)
    text = ""
    try:
        text = csv_io.decode(raw)
        async with db_of(request).tenant(tenant_id) as conn:
            report = await csv_io.import_csv(conn, tenant_id, integration_id, text, apply=apply,
                                             actor=actor_of(request))
    except NotFound:
        raise NotFoundException() from None
    except InputError as exc:
        return await map_page(request, integration_id, status=422, import_error=gettext(exc.message), csv_text=text)
    except ImportRejected as exc:
        return await map_page(request, integration_id, status=422, report=exc.report, csv_text=text)
    if not apply:
        return await map_page(request, integration_id, report=report, csv_text=text)
    flash.push(request, "success", M_IMPORTED, creates=report["creates"], updates=report["updates"])
    return Redirect(map_link(integration_id) + "#mappings", status_code=303)


# ----------------------------------------------------------------------------- one mapping


async def _mapping_form(request: Request, row: dict[str, Any], values: dict[str, str], errors: dict[str, str],
                        status: int = 200) -> Response:
    tenant_id = tenant_of(request)
    async with db_of(request).tenant(tenant_id) as conn:
        assets = await store.asset_choices(conn, tenant_id)
        integration = await store.get_integration(conn, tenant_id, row["integration_id"])
    view = mapping_view(row)
    return render(request, "integrations/mapping_form.html", status_code=status, m=view, values=values,
                  errors=_translated(errors), assets=assets, integration=integration,
                  breadcrumbs=[CRUMB, (verbatim(integration["name"]), f"/integrations/{integration['id']}"),
                               ("Map tags", map_link(integration["id"])), (verbatim(view["signal"]["name"]), None)],
                  **common_context(request))


@get("/mappings/{mapping_id:int}/edit", guards=[requires(Permission.EDIT_MAPPINGS)], name="mapping_edit_page")
async def mapping_edit_page(request: Request, mapping_id: FromPath[int]) -> Response:
    row = await row_or_404(request, store.get_mapping, mapping_id)
    values = {f: "" if row.get(f) is None else str(row[f]) for f in MappingForm.__struct_fields__}
    values["enabled"] = "on" if row["enabled"] else ""
    return await _mapping_form(request, row, values, {})


@post("/mappings/{mapping_id:int}/edit", guards=[requires(Permission.EDIT_MAPPINGS)], name="mapping_update_page")
async def mapping_update_page(request: Request, mapping_id: FromPath[int],
                              data: Annotated[MappingForm, FormBody]) -> Response:
    row = await row_or_404(request, store.get_mapping, mapping_id)
    changes = msgspec.structs.asdict(data) | {"enabled": bool(data.enabled)}
    if not data.asset_id.strip():
        changes.pop("asset_id")
    tenant_id = tenant_of(request)
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            await mapping.update_mapping(conn, tenant_id, row["id"], changes, actor_of(request))
    except NotFound:
        raise NotFoundException() from None
    except InputError as exc:
        return await _mapping_form(request, row, msgspec.structs.asdict(data), exc.fields, 422)
    flash.push(request, "success", M_MAPPING_SAVED, name=row["signal_name"])
    return Redirect(map_link(row["integration_id"]) + "#mappings", status_code=303)


@post("/mappings/{mapping_id:int}/delete", guards=[requires(Permission.EDIT_MAPPINGS)], name="mapping_delete_page")
async def mapping_delete_page(request: Request, mapping_id: FromPath[int]) -> Response:
    row = await row_or_404(request, store.get_mapping, mapping_id)
    tenant_id = tenant_of(request)
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            await mapping.delete_mapping(conn, tenant_id, row["id"], actor_of(request))
    except NotFound:
        raise NotFoundException() from None
    flash.push(request, "success", M_MAPPING_DELETED, name=row["signal_name"])
    return Redirect(map_link(row["integration_id"]) + "#mappings", status_code=303)


ROUTES = [
    integration_map_page, integration_map_assign, integration_mappings_import_page, mapping_edit_page,
    mapping_update_page, mapping_delete_page,
]
