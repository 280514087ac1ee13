"""Integrations → Data Sources pages: the cards, create/edit forms, the detail page with the action
log, and the card buttons Test and Demo stream (Map lives in mapping_routes; AI Run in optimization).

Handlers are thin: parse the form, call the service in one tenant transaction, then redirect
with a one-time message, or re-render the form with field messages (422) or a conflict (409).
"""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Redirect

from optria.connectors import opcua
from optria.identity.auth import safe_next
from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.integrations import kinds, service, store
from optria.integrations.errors import N_, Conflict, InputError, NotFound, form_problem
from optria.integrations.models import (
    ACTION_LABELS,
    KIND_LABELS,
    KINDS,
    QUALITY_LABELS,
    REASON_LABELS,
    ROLE_LABELS,
    ROLES,
    SOURCE_LABELS,
)
from optria.integrations.views import integration_view, mapping_view
from optria.integrations.web import (
    actor_of,
    box_of,
    can,
    check_id,
    db_of,
    int_param,
    page_flags,
    row_or_404,
    settings_of,
    tenant_of,
)
from optria.web import flash
from optria.web.i18n import gettext, verbatim
from optria.web.templating import render

FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
PAGE_SIZE = 30
LOG_PAGE_SIZE = 25
CRUMB = ("Integrations", "/integrations")

M_CREATED = N_("Integration %(name)s was created. Test it, then map its tags to your assets.")
M_SAVED = N_("Integration %(name)s was saved.")
M_TEST_OK = N_("Connection test of %(name)s succeeded.")
M_TEST_FAILED = N_("Connection test of %(name)s failed: %(reason)s.")
M_STREAM_ON = N_("Demo stream of %(name)s started: simulator data flows to its mapped tags within seconds.")
M_STREAM_OFF = N_("Demo stream of %(name)s stopped.")
MESSAGES = (M_CREATED, M_SAVED, M_TEST_OK, M_TEST_FAILED, M_STREAM_ON, M_STREAM_OFF)


class IntegrationForm(msgspec.Struct):
    """Every field of every kind; the kind's own fields are read (see kinds.FIELDS)."""

    name: str = ""
    kind: str = ""
    enabled: str = ""
    endpoint_url: str = ""
    security_policy: str = ""
    security_mode: str = ""
    auth_type: str = ""
    username: str = ""
    password: str = ""
    clear_password: str = ""
    timeout_s: str = ""
    publishing_interval_ms: str = ""
    sampling_interval_ms: str = ""
    base_url: str = ""
    skip_tls_verify: str = ""
    data_server: str = ""
    poll_interval_s: str = ""
    dsn: str = ""
    query: str = ""
    tags_query: str = ""


class NextForm(msgspec.Struct):
    next: str = ""
    on: str = ""


def form_config(kind: str, form: IntegrationForm) -> dict[str, Any]:
    config = {name: getattr(form, name) for name in kinds.FIELDS[kind] if name != "verify_tls"}
    if kind == "pi" and form.skip_tls_verify:
        config["verify_tls"] = False
    return config


def form_values(row: dict[str, Any] | None) -> dict[str, str]:
    """The form's values for an existing integration (never its password)."""
    values = {f: "" for f in IntegrationForm.__struct_fields__}
    if row is None:
        values["enabled"] = "on"
        return values
    values.update({k: "" if v is None else str(v) for k, v in row["config"].items() if k in values})
    values.update(name=row["name"], kind=row["kind"], enabled="on" if row["enabled"] else "",
                  skip_tls_verify="on" if row["config"].get("verify_tls") is False else "")
    return values


def _translated(errors: dict[str, str]) -> dict[str, str]:
    return {k: gettext(v) for k, v in errors.items()}


def client_thumbprint(request: Request) -> str | None:
    """The platform's OPC-UA client certificate thumbprint (created on first use), for server admins."""
    try:
        return opcua.client_certificate_thumbprint(service.pki_dir(settings_of(request)))
    except Exception:  # an unwritable data directory must not break the form
        return None


def global_defaults(request: Request) -> dict[str, Any]:
    settings = settings_of(request)
    return {"opcua": kinds.endpoint_info("opcua", {}, settings), "pi": kinds.endpoint_info("pi", {}, settings),
            "opcua_login": bool(getattr(settings, "opcua_username", None))}


def ai_run_available(request: Request) -> bool:
    """Whether the optimization module's AI Run route is installed in this app."""
    try:
        request.app.route_reverse("integration_ai_run", integration_id=1)
    except Exception:
        return False
    return True


def common_context(request: Request) -> dict[str, Any]:
    """Labels and permission flags every integrations page uses."""
    return {"kind_labels": KIND_LABELS, "reason_labels": REASON_LABELS, "action_labels": ACTION_LABELS,
            "source_labels": SOURCE_LABELS, "roles": ROLES, "role_labels": ROLE_LABELS,
            "quality_labels": QUALITY_LABELS, "sql_enabled": service.sql_enabled(settings_of(request)),
            "ai_run": ai_run_available(request), "can_run_ai": can(request, Permission.RUN_OPTIMIZATION),
            "engine_on": bool(getattr(settings_of(request), "optimization_engine_enabled", True)),
            **page_flags(request)}


# ----------------------------------------------------------------------------- Data Sources


@get("/integrations", guards=[requires(Permission.VIEW_INTEGRATIONS)], name="integrations_page")
async def integrations_page(request: Request) -> Response:
    tenant_id = tenant_of(request)
    kind = request.query_params.get("kind", "")
    kind = kind if kind in KINDS else ""
    q = (request.query_params.get("q") or "").strip()[:100]
    page = int_param(request, "page", 1, 1, 100_000)
    async with db_of(request).tenant(tenant_id) as conn:
        rows, total = await store.list_integrations(conn, tenant_id, kind=kind or None, q=q or None, page=page,
                                                    page_size=PAGE_SIZE)
    note, _ = flash.pop(request)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    filters = {"kind": kind, "q": q}
    return render(request, "integrations/index.html", cards=[integration_view(r, settings_of(request)) for r in rows],
                  total=total, filters=filters, filtered=bool(kind or q), flash=note,
                  pager={"page": page, "pages": pages, "has_prev": page > 1, "has_next": page < pages},
                  page_link=lambda n: "/integrations?" + urlencode({**filters, "page": n}), here=_here(request),
                  breadcrumbs=[CRUMB], **common_context(request))


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


# ----------------------------------------------------------------------------- create / edit


def _form_page(request: Request, *, kind: str, values: dict[str, str], errors: dict[str, str] | None = None,
               integration: dict[str, Any] | None = None, status: int = 200) -> Response:
    crumbs = [CRUMB, ("Add integration", None)] if integration is None else [
        CRUMB, (verbatim(integration["name"]), f"/integrations/{integration['id']}"), ("Edit", None)]
    return render(request, "integrations/form.html", status_code=status, kind=kind, values=values,
                  errors=_translated(errors or {}), integration=integration, editing=integration is not None,
                  defaults=global_defaults(request),
                  thumbprint=client_thumbprint(request) if kind == "opcua" else None,
                  policies=opcua.SECURITY_POLICIES, modes=opcua.SECURITY_MODES, auth_types=kinds.AUTH_TYPES,
                  breadcrumbs=crumbs, **common_context(request))


@get("/integrations/new", guards=[requires(Permission.MANAGE_INTEGRATIONS)], name="integration_new_page")
async def integration_new_page(request: Request) -> Response:
    kind = request.query_params.get("kind", "")
    if kind not in KINDS:
        return render(request, "integrations/choose_kind.html", breadcrumbs=[CRUMB, ("Add integration", None)],
                      defaults=global_defaults(request), **common_context(request))
    return _form_page(request, kind=kind, values=form_values(None) | {"kind": kind})


@post("/integrations", guards=[requires(Permission.MANAGE_INTEGRATIONS)], name="integration_create_page")
async def integration_create_page(request: Request, data: Annotated[IntegrationForm, FormBody]) -> Response:
    tenant_id = tenant_of(request)
    kind = data.kind if data.kind in KINDS else "opcua"
    values = msgspec.structs.asdict(data) | {"password": ""}
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            integration_id = await service.create_integration(
                conn, box_of(request), settings_of(request), tenant_id, kind=data.kind, name=data.name,
                config=form_config(kind, data), password=data.password or None, enabled=bool(data.enabled),
                actor=actor_of(request))
    except (InputError, Conflict) as exc:
        errors, status = form_problem(exc)
        return _form_page(request, kind=kind, values=values, errors=errors, status=status)
    flash.push(request, "success", M_CREATED, name=" ".join(data.name.split()))
    return Redirect(f"/integrations/{integration_id}", status_code=303)


@get("/integrations/{integration_id:int}/edit", guards=[requires(Permission.MANAGE_INTEGRATIONS)],
     name="integration_edit_page")
async def integration_edit_page(request: Request, integration_id: FromPath[int]) -> Response:
    row = await row_or_404(request, store.get_integration, integration_id)
    return _form_page(request, kind=row["kind"], values=form_values(row),
                      integration=integration_view(row, settings_of(request)))


@post("/integrations/{integration_id:int}/edit", guards=[requires(Permission.MANAGE_INTEGRATIONS)],
      name="integration_update_page")
async def integration_update_page(request: Request, integration_id: FromPath[int],
                                  data: Annotated[IntegrationForm, FormBody]) -> Response:
    row = await row_or_404(request, store.get_integration, integration_id)
    tenant_id, kind = tenant_of(request), row["kind"]
    changes = {"name": data.name, "enabled": bool(data.enabled), "config": form_config(kind, data),
               "password": data.password or None, "clear_password": bool(data.clear_password)}
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            await service.update_integration(conn, box_of(request), settings_of(request), tenant_id, row["id"],
                                             changes, actor=actor_of(request), replace_config=True)
    except NotFound:
        raise NotFoundException() from None
    except (InputError, Conflict) as exc:
        errors, status = form_problem(exc)
        values = msgspec.structs.asdict(data) | {"password": "", "kind": kind}
        return _form_page(request, kind=kind, values=values, errors=errors,
                          integration=integration_view(row, settings_of(request)), status=status)
    flash.push(request, "success", M_SAVED, name=" ".join(data.name.split()))
    return Redirect(f"/integrations/{row['id']}", status_code=303)


# ----------------------------------------------------------------------------- detail


@get("/integrations/{integration_id:int}", guards=[requires(Permission.VIEW_INTEGRATIONS)],
     name="integration_detail_page")
async def integration_detail_page(request: Request, integration_id: FromPath[int]) -> Response:
    tenant_id = tenant_of(request)
    page = int_param(request, "page", 1, 1, 100_000)
    async with db_of(request).tenant(tenant_id) as conn:
        row = await store.get_integration(conn, tenant_id, check_id(integration_id))
        if row is None:
            raise NotFoundException()
        actions, total = await store.list_actions(conn, tenant_id, row["id"], page=page, page_size=LOG_PAGE_SIZE)
        mappings, mapping_total = await store.list_mappings(conn, tenant_id, row["id"], page_size=10)
        errors = await store.error_history(conn, tenant_id, row["id"])
    note, _ = flash.pop(request)
    pages = max(1, math.ceil(total / LOG_PAGE_SIZE))
    card = integration_view(row, settings_of(request))
    return render(request, "integrations/detail.html", card=card, actions=actions, log_total=total, flash=note,
                  errors=errors,
                  mappings=[mapping_view(m) for m in mappings], mapping_total=mapping_total, here=_here(request),
                  pager={"page": page, "pages": pages, "has_prev": page > 1, "has_next": page < pages},
                  page_link=lambda n: f"/integrations/{row['id']}?page={n}#log",
                  breadcrumbs=[CRUMB, (verbatim(row["name"]), None)], **common_context(request))


# ----------------------------------------------------------------------------- card buttons


def _back(request: Request, target: str, integration_id: int) -> Redirect:
    path = safe_next(target, "/integrations")
    if "#" not in path and path.split("?")[0] == "/integrations":
        path += f"#integration-{integration_id}"
    return Redirect(path, status_code=303)


@post("/integrations/{integration_id:int}/test", guards=[requires(Permission.TEST_INTEGRATIONS)],
      name="integration_test_page")
async def integration_test_page(request: Request, integration_id: FromPath[int],
                                data: Annotated[NextForm, FormBody]) -> Response:
    """Run the test; its result shows on the card (last test) after the redirect."""
    row = await row_or_404(request, store.get_integration, integration_id)
    try:
        result = await service.run_test(db_of(request), box_of(request), settings_of(request), tenant_of(request),
                                        row["id"], actor_of(request))
    except Conflict as exc:
        flash.push(request, "error", exc.message)
        return _back(request, data.next, row["id"])
    if result["success"]:
        flash.push(request, "success", M_TEST_OK, name=row["name"])
    else:
        reason = REASON_LABELS.get(result["details"].get("reason", ""), "")
        flash.push(request, "error", M_TEST_FAILED, name=row["name"],
                   reason=gettext(reason) if reason else result["message"])
    return _back(request, data.next, row["id"])


@post("/integrations/{integration_id:int}/demo-stream", guards=[requires(Permission.MANAGE_INTEGRATIONS)],
      name="integration_demo_stream_page")
async def integration_demo_stream_page(request: Request, integration_id: FromPath[int],
                                       data: Annotated[NextForm, FormBody]) -> Response:
    row = await row_or_404(request, store.get_integration, integration_id)
    tenant_id, on = tenant_of(request), data.on == "1"
    try:
        async with db_of(request).tenant(tenant_id) as conn:
            await service.update_integration(conn, box_of(request), settings_of(request), tenant_id, row["id"],
                                             {"demo_stream": on}, actor=actor_of(request))
    except (InputError, Conflict) as exc:
        flash.push(request, "error", exc.message)
        return _back(request, data.next, row["id"])
    flash.push(request, "success", M_STREAM_ON if on else M_STREAM_OFF, name=row["name"])
    return _back(request, data.next, row["id"])


ROUTES = [
    integrations_page, integration_new_page, integration_create_page, integration_edit_page, integration_update_page,
    integration_detail_page, integration_test_page, integration_demo_stream_page,
]
