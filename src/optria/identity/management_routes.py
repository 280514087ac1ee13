"""Management → Users and Audit log pages for a tenant admin (the JSON twin lives in api.py).

Handlers are thin: they parse the form, call ``identity.users`` and turn a refusal into the
same page with the message next to the field (422/409), or a 404 page for a user id that is
not in the admin's tenant. Successful changes redirect with a one-time message; a temporary
password travels in that one-time message and is shown exactly once.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect

from optria.identity import passwords, users
from optria.identity.audit_details import describe_details
from optria.identity.guards import requires
from optria.identity.rbac import ROLE_LABELS, TENANT_ROLES, Permission, Role
from optria.identity.users import NewUser, UserChanges, UserError
from optria.web import flash, i18n
from optria.web.errors import ApiError
from optria.web.request_context import client_addr
from optria.web.templating import render
from optria.web.i18n import verbatim

FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
USERS_CRUMB = ("Users", "/management/users")

M_CREATED = "User %(username)s was created."
M_ROLE_CHANGED = "The role of %(username)s is now %(role)s."
M_DISABLED = "%(username)s is disabled and was signed out everywhere."
M_ENABLED = "%(username)s can sign in again."
M_RESET = "A new temporary password was set for %(username)s."
MESSAGES = (M_CREATED, M_ROLE_CHANGED, M_DISABLED, M_ENABLED, M_RESET)


class NewUserForm(msgspec.Struct):
    username: str = ""
    email: str = ""
    role: str = ""
    display_name: str = ""
    password: str = ""


class RoleForm(msgspec.Struct):
    role: str = ""


def _roles() -> list[str]:
    return [r.value for r in TENANT_ROLES]


def _translate(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: [i18n.gettext(m) for m in v] for k, v in errors.items()}


def audit_label(action: str) -> str:
    return users.AUDIT_ACTIONS.get(action, action)


# Readable names for the keys and values that identity writes into audit details (English msgids).
def _not_found(err: UserError) -> ApiError:
    return ApiError(404, "not_found", err.message)


@get("/management/users", guards=[requires(Permission.MANAGE_USERS)], name="users_page")
async def users_page(request: Request, q: FromQuery[str] = "", role: FromQuery[str] = "",
                     status: FromQuery[str] = "", source: FromQuery[str] = "", page: FromQuery[int] = 1) -> Response:
    """Users of the admin's tenant only: search (username, email, name), filters, 25 per page."""
    f = users.parse_filter(q_text=q[:100], role=role, status=status, source=source)
    result = await users.list_users(request.app.state.db, request.scope["user"], f, page)
    note, _ = flash.pop(request)
    filters = {"q": q[:100], "role": f.role or "", "status": status if status in users.STATUSES else "",
               "source": f.source or ""}
    return render(request, "management/users.html", result=result, filters=filters, roles=_roles(),
                  filtered=any(filters.values()), flash=note,
                  page_link=lambda n: "/management/users?" + users.filter_query(**filters, page=n), breadcrumbs=[USERS_CRUMB])


def _new_user_page(request: Request, values: dict[str, str], errors: dict[str, list[str]] | None = None,
                   status: int = 200) -> Response:
    return render(request, "management/user_new.html", status_code=status, values=values, roles=_roles(),
                  errors=_translate(errors or {}), rules=passwords.RULES_TEXT,
                  breadcrumbs=[USERS_CRUMB, ("Add user", None)])


@get("/management/users/new", guards=[requires(Permission.MANAGE_USERS)], name="user_new_page")
async def user_new_page(request: Request) -> Response:
    return _new_user_page(request, {"username": "", "email": "", "role": "viewer", "display_name": ""})


@post("/management/users", guards=[requires(Permission.MANAGE_USERS)], name="user_create")
async def user_create(request: Request, data: Annotated[NewUserForm, FormBody]) -> Response:
    """Create a local user in the admin's tenant (any tenant field sent with the form is ignored)."""
    new = NewUser(username=data.username[:100], email=data.email[:300], role=data.role[:50],
                  display_name=data.display_name[:200], password=data.password[:512])
    try:
        user, temporary = await users.create_user(request.app.state.db, request.scope["user"], new,
                                                  addr=client_addr(request))
    except UserError as err:
        values = {"username": data.username, "email": data.email, "role": data.role, "display_name": data.display_name}
        return _new_user_page(request, values, err.errors or {"username": [err.message]}, status=err.status)
    once = {"username": user["username"], "password": temporary} if temporary else None
    flash.push(request, "success", M_CREATED, once=once, username=user["username"])
    return Redirect(f"/management/users/{user['id']}")


async def _detail_page(request: Request, user_id: UUID, *, error: str | None = None, status: int = 200,
                       note: dict[str, str] | None = None, once: dict[str, Any] | None = None) -> Response:
    actor = request.scope["user"]
    try:
        user = await users.get_user(request.app.state.db, actor, user_id)
    except UserError as err:
        raise _not_found(err) from None
    history = await users.list_audit(request.app.state.db, actor, target_id=str(user_id), per_page=10)
    return render(request, "management/user_detail.html", status_code=status, target=user, roles=_roles(),
                  history=history, is_self=user["id"] == actor.id, error=i18n.gettext(error) if error else None,
                  audit_label=audit_label,
                  flash=note, once=once, breadcrumbs=[USERS_CRUMB, (verbatim(user["username"]), None)])


@get("/management/users/{user_id:uuid}", guards=[requires(Permission.MANAGE_USERS)], name="user_detail")
async def user_detail(request: Request, user_id: FromPath[UUID]) -> Response:
    note, once = flash.pop(request)
    return await _detail_page(request, user_id, note=note, once=once)


async def _change(request: Request, user_id: UUID, changes: UserChanges, message: str, **params: Any) -> Response:
    try:
        user = await users.update_user(request.app.state.db, request.scope["user"], user_id, changes,
                                       addr=client_addr(request))
    except UserError as err:
        if err.status == 404:
            raise _not_found(err) from None
        return await _detail_page(request, user_id, error=err.message, status=err.status)
    flash.push(request, "success", message, username=user["username"],
               **{k: i18n.gettext(v) for k, v in params.items()})
    return Redirect(f"/management/users/{user_id}")


@post("/management/users/{user_id:uuid}/role", guards=[requires(Permission.MANAGE_USERS)], name="user_change_role")
async def user_change_role(request: Request, user_id: FromPath[UUID], data: Annotated[RoleForm, FormBody]) -> Response:
    label = ROLE_LABELS.get(Role(data.role), data.role) if data.role in users.ROLE_VALUES else data.role
    return await _change(request, user_id, UserChanges(role=data.role[:50]), M_ROLE_CHANGED, role=label)


@post("/management/users/{user_id:uuid}/disable", guards=[requires(Permission.MANAGE_USERS)], name="user_disable")
async def user_disable(request: Request, user_id: FromPath[UUID]) -> Response:
    """Disable now: the user's sessions are revoked, so their next request is already signed out."""
    return await _change(request, user_id, UserChanges(is_active=False), M_DISABLED)


@post("/management/users/{user_id:uuid}/enable", guards=[requires(Permission.MANAGE_USERS)], name="user_enable")
async def user_enable(request: Request, user_id: FromPath[UUID]) -> Response:
    return await _change(request, user_id, UserChanges(is_active=True), M_ENABLED)


@post("/management/users/{user_id:uuid}/reset-password", guards=[requires(Permission.MANAGE_USERS)],
      name="user_reset_password")
async def user_reset_password(request: Request, user_id: FromPath[UUID]) -> Response:
    """Set a new temporary password (shown once on the next page) and force a change at next sign-in."""
    try:
        user, temporary = await users.reset_password(request.app.state.db, request.scope["user"], user_id,
                                                     addr=client_addr(request))
    except UserError as err:
        if err.status == 404:
            raise _not_found(err) from None
        return await _detail_page(request, user_id, error=err.message, status=err.status)
    flash.push(request, "success", M_RESET, once={"username": user["username"], "password": temporary},
               username=user["username"])
    return Redirect(f"/management/users/{user_id}")


@get("/management/audit", guards=[requires(Permission.VIEW_AUDIT)], name="audit_page")
async def audit_page(request: Request, action: FromQuery[str] = "", q: FromQuery[str] = "",
                     page: FromQuery[int] = 1) -> Response:
    """The tenant's audit log, newest first: who did what to whom, and when (no secrets are ever recorded)."""
    result = await users.list_audit(request.app.state.db, request.scope["user"], action=action[:100] or None,
                                    q_text=q[:100], page=page)
    filters = {"action": action[:100], "q": q[:100]}
    return render(request, "management/audit.html", result=result, filters=filters, actions=users.AUDIT_ACTIONS,
                  audit_label=audit_label, describe=describe_details,
                  filtered=any(filters.values()),
                  page_link=lambda n: "/management/audit?" + users.filter_query(**filters, page=n),
                  breadcrumbs=[("Audit log", "/management/audit")])


ROUTES = [users_page, user_new_page, user_create, user_detail, user_change_role, user_disable, user_enable,
          user_reset_password, audit_page]
