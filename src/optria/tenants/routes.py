"""Platform owner: tenants (list, create with a first tenant admin) and all users across tenants.

Pages ``/platform/tenants`` and ``/platform/users`` and their JSON twins:

- ``GET  /api/platform/tenants`` ?q=&page=&per_page= → TenantList
- ``POST /api/platform/tenants`` {slug, name, admin_username, admin_email, admin_display_name?} → 201 TenantCreated
  (the first admin's ``temporary_password`` is returned once; they must change it at first sign-in)
- ``GET  /api/platform/users`` ?tenant=<slug>&q=&role=&status=&source=&page=&per_page= → PlatformUserList

All of it runs in the explicit platform scope and requires PLATFORM_CONSOLE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
import psycopg
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery, JSONBody
from litestar.response import Redirect

from optria.identity import users
from optria.identity.guards import requires
from optria.identity.models import UserOut
from optria.identity.rbac import Permission, Role
from optria.identity.users import Page, UserError
from optria.identity.users_store import UserFilter
from optria.tenants.store import TenantsStore
from optria.web import flash, i18n
from optria.web.errors import ApiError
from optria.web.request_context import client_addr
from optria.web.templating import render

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
GUARD = [requires(Permission.PLATFORM_CONSOLE)]
ALL_ROLES = tuple(r.value for r in Role)

M_SLUG = "Use 2 to 63 lowercase Latin letters, digits or dashes, starting with a letter or digit."
M_SLUG_TAKEN = "An organization with this identifier already exists."
M_TENANT_NAME = "Enter the organization's name (1 to 200 characters)."
M_TENANT_CREATED = "Organization %(name)s was created with its first administrator %(username)s."
MESSAGES = (M_SLUG, M_SLUG_TAKEN, M_TENANT_NAME, M_TENANT_CREATED)


@dataclass
class NewTenant:
    slug: str
    name: str
    admin_username: str
    admin_email: str
    admin_display_name: str = ""


def validate_new_tenant(data: NewTenant) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not SLUG_RE.match(data.slug):
        errors["slug"] = [M_SLUG]
    if not 1 <= len(data.name) <= 200:
        errors["name"] = [M_TENANT_NAME]
    if problem := users.check_username(data.admin_username):
        errors["admin_username"] = [problem]
    if problem := users.check_email(data.admin_email):
        errors["admin_email"] = [problem]
    if len(data.admin_display_name) > 100:
        errors["admin_display_name"] = [users.M_DISPLAY_NAME]
    return errors


async def create_tenant(request: Request, data: NewTenant) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Validate, then create the tenant and its first admin; returns (tenant, admin, temporary password)."""
    data = NewTenant(slug=data.slug.strip().lower(), name=data.name.strip(), admin_username=data.admin_username.strip(),
                     admin_email=data.admin_email.strip(), admin_display_name=data.admin_display_name.strip())
    errors = validate_new_tenant(data)
    store = TenantsStore(request.app.state.db)
    if "slug" not in errors and await store.slug_taken(data.slug):
        errors["slug"] = [M_SLUG_TAKEN]
    if errors:
        duplicate = next(iter(errors.values())) == [M_SLUG_TAKEN]
        raise users.invalid(errors, status=409 if duplicate else 422, code="duplicate" if duplicate else "validation_error")
    temporary = users.generate_temporary_password()
    password_hash = await users.hash_in_thread(temporary)
    try:
        tenant, admin = await store.create_tenant_with_admin(
            actor=request.scope["user"], slug=data.slug, name=data.name, admin_username=data.admin_username,
            admin_email=data.admin_email, admin_display_name=data.admin_display_name or None,
            password_hash=password_hash, addr=client_addr(request))
    except psycopg.errors.UniqueViolation:  # a concurrent create took the slug
        raise UserError(409, "duplicate", M_SLUG_TAKEN, "slug") from None
    return tenant, admin, temporary


# -- pages ------------------------------------------------------------------------------------------

class NewTenantForm(msgspec.Struct):
    slug: str = ""
    name: str = ""
    admin_username: str = ""
    admin_email: str = ""
    admin_display_name: str = ""


async def _tenants_page(request: Request, *, q: str = "", page: int = 1, values: dict[str, str] | None = None,
                        errors: dict[str, list[str]] | None = None, status: int = 200,
                        note: dict[str, str] | None = None, once: dict[str, Any] | None = None) -> Response:
    page, limit, offset = users.page_bounds(page)
    rows, total = await TenantsStore(request.app.state.db).list_tenants(q or None, limit=limit, offset=offset)
    result = Page(rows, total, page, limit)
    values = values or {"slug": "", "name": "", "admin_username": "", "admin_email": "", "admin_display_name": ""}
    return render(request, "platform/tenants.html", status_code=status, result=result, q=q, values=values,
                  errors={k: [i18n.gettext(m) for m in v] for k, v in (errors or {}).items()}, flash=note, once=once,
                  open_form=bool(errors), page_link=lambda n: "/platform/tenants?" + users.filter_query(q=q, page=n),
                  breadcrumbs=[("Tenants", "/platform/tenants")])


@get("/platform/tenants", guards=GUARD, name="platform_tenants_page")
async def platform_tenants_page(request: Request, q: FromQuery[str] = "", page: FromQuery[int] = 1) -> Response:
    note, once = flash.pop(request)
    return await _tenants_page(request, q=q[:100], page=page, note=note, once=once)


@post("/platform/tenants", guards=GUARD, name="platform_tenant_create")
async def platform_tenant_create(request: Request,
                                 data: Annotated[NewTenantForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    """Create a tenant and its first tenant admin; the admin's temporary password is shown once after the redirect."""
    new = NewTenant(slug=data.slug[:100], name=data.name[:300], admin_username=data.admin_username[:100],
                    admin_email=data.admin_email[:300], admin_display_name=data.admin_display_name[:200])
    try:
        tenant, admin, temporary = await create_tenant(request, new)
    except UserError as err:
        values = {"slug": data.slug, "name": data.name, "admin_username": data.admin_username,
                  "admin_email": data.admin_email, "admin_display_name": data.admin_display_name}
        return await _tenants_page(request, values=values, errors=err.errors, status=err.status)
    flash.push(request, "success", M_TENANT_CREATED, name=tenant["name"], username=admin["username"],
               once={"organization": tenant["slug"], "username": admin["username"], "password": temporary})
    return Redirect("/platform/tenants")


@get("/platform/users", guards=GUARD, name="platform_users_page")
async def platform_users_page(request: Request, tenant: FromQuery[str] = "", q: FromQuery[str] = "",
                              role: FromQuery[str] = "", status: FromQuery[str] = "", source: FromQuery[str] = "",
                              page: FromQuery[int] = 1) -> Response:
    """Every user of every tenant (and the platform owners), filtered by tenant, role, status and source."""
    store = TenantsStore(request.app.state.db)
    options = await store.tenant_options()
    by_slug = {str(o["slug"]): o["id"] for o in options}
    base = users.parse_filter(q_text=q[:100], role=role if role in ALL_ROLES else "", status=status, source=source)
    f = UserFilter(q=base.q, role=base.role, active=base.active, source=base.source,
                                     tenant_id=by_slug.get(tenant))
    page, limit, offset = users.page_bounds(page)
    rows, total = await store.list_users(f, limit=limit, offset=offset)
    filters = {"tenant": tenant if tenant in by_slug else "", "q": q[:100], "role": f.role or "",
               "status": status if status in users.STATUSES else "", "source": f.source or ""}
    return render(request, "platform/users.html", result=Page(rows, total, page, limit), filters=filters,
                  tenants=options, roles=list(ALL_ROLES), filtered=any(filters.values()),
                  page_link=lambda n: "/platform/users?" + users.filter_query(**filters, page=n),
                  breadcrumbs=[("All users", "/platform/users")])


# -- API ------------------------------------------------------------------------------------------------

class Tenant(msgspec.Struct):
    id: UUID
    slug: str
    name: str
    is_demo: bool
    is_active: bool
    created_at: datetime
    user_count: int = 0
    admin_count: int = 0


class TenantList(msgspec.Struct):
    items: list[Tenant]
    total: int
    page: int
    per_page: int
    pages: int


class TenantCreate(msgspec.Struct, forbid_unknown_fields=True):
    slug: str
    name: str
    admin_username: str
    admin_email: str
    admin_display_name: str = ""


class FirstAdmin(msgspec.Struct):
    id: UUID
    username: str
    email: str
    temporary_password: str


class TenantCreated(msgspec.Struct):
    tenant: Tenant
    admin: FirstAdmin


class PlatformUser(UserOut):
    tenant_id: UUID | None
    tenant_slug: str | None


class PlatformUserList(msgspec.Struct):
    items: list[PlatformUser]
    total: int
    page: int
    per_page: int
    pages: int


def _tenant(row: dict[str, Any]) -> Tenant:
    return Tenant(id=row["id"], slug=str(row["slug"]), name=row["name"], is_demo=row["is_demo"],
                  is_active=row["is_active"], created_at=row["created_at"], user_count=int(row.get("user_count") or 0),
                  admin_count=int(row.get("admin_count") or 0))


@get("/api/platform/tenants", guards=GUARD, name="api_platform_tenants")
async def api_platform_tenants(request: Request, q: FromQuery[str] = "", page: FromQuery[int] = 1,
                               per_page: FromQuery[int] = users.PAGE_SIZE) -> TenantList:
    page, limit, offset = users.page_bounds(page, per_page)
    rows, total = await TenantsStore(request.app.state.db).list_tenants(q[:100] or None, limit=limit, offset=offset)
    result = Page(rows, total, page, limit)
    return TenantList([_tenant(r) for r in rows], total, page, limit, result.pages)


@post("/api/platform/tenants", guards=GUARD, name="api_platform_tenant_create", status_code=201)
async def api_platform_tenant_create(request: Request, data: JSONBody[TenantCreate]) -> TenantCreated:
    new = NewTenant(slug=data.slug[:100], name=data.name[:300], admin_username=data.admin_username[:100],
                    admin_email=data.admin_email[:300], admin_display_name=data.admin_display_name[:200])
    try:
        tenant, admin, temporary = await create_tenant(request, new)
    except UserError as err:
        raise ApiError(err.status, err.code, err.message, extra={"fields": err.errors} if err.errors else None) from None
    return TenantCreated(tenant=_tenant(tenant), admin=FirstAdmin(id=admin["id"], username=str(admin["username"]),
                                                                   email=str(admin["email"]),
                                                                   temporary_password=temporary))


@get("/api/platform/users", guards=GUARD, name="api_platform_users")
async def api_platform_users(request: Request, tenant: FromQuery[str] = "", q: FromQuery[str] = "",
                             role: FromQuery[str] = "", status: FromQuery[str] = "", source: FromQuery[str] = "",
                             page: FromQuery[int] = 1, per_page: FromQuery[int] = users.PAGE_SIZE) -> PlatformUserList:
    for name, value, allowed in (("role", role, ALL_ROLES), ("status", status, users.STATUSES),
                                 ("source", source, users.SOURCES)):
        if value and value not in allowed:
            raise ApiError(400, "invalid_filter", f"Unknown {name} {value[:40]!r}; use one of: {', '.join(allowed)}.")
    store = TenantsStore(request.app.state.db)
    tenant_id = None
    if tenant:
        tenant_id = await store.tenant_id_by_slug(tenant.strip().lower()[:64])
        if tenant_id is None:
            raise ApiError(404, "not_found", "No organization has this identifier.")
    base = users.parse_filter(q_text=q[:100], role=role, status=status, source=source)
    f = UserFilter(q=base.q, role=base.role, active=base.active, source=base.source,
                                     tenant_id=tenant_id)
    page, limit, offset = users.page_bounds(page, per_page)
    rows, total = await store.list_users(f, limit=limit, offset=offset)
    items = [PlatformUser(id=r["id"], tenant_id=r["tenant_id"], tenant_slug=str(r["tenant_slug"]) if r["tenant_slug"] else None,
                          username=str(r["username"]), email=str(r["email"]), display_name=r["display_name"],
                          role=r["role"], is_active=r["is_active"], auth_source=r["auth_source"],
                          identity_provider=r["provider_name"], last_login_at=r["last_login_at"],
                          created_at=r["created_at"]) for r in rows]
    return PlatformUserList(items, total, page, limit, Page(rows, total, page, limit).pages)


ROUTES = [platform_tenants_page, platform_tenant_create, platform_users_page, api_platform_tenants,
          api_platform_tenant_create, api_platform_users]
