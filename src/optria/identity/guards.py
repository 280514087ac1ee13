"""Litestar guards built from the permission matrix.

``requires(Permission.X)`` returns a guard that knows its permission (``guard.permission``)
so the route × role test can read every route's declared permission. Routes open to
anonymous users say so with ``opt={"public": True}``. ``can`` asks the same question for a page
that shows or hides a button.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from optria.identity.rbac import Permission, has_permission
from optria.web.errors import RedirectPages

PUBLIC = {"public": True}


class MustChangePassword(RedirectPages):
    """Signed in, but a new password is required before anything else: pages go to the form for it."""

    location = "/account/password"


def requires(permission: Permission):
    # async although it awaits nothing: Litestar runs a synchronous guard in a worker thread,
    # a thread hop on every guarded request for a few dictionary lookups
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if user is None:
            raise NotAuthorizedException("Sign in to continue.")
        if user.must_change_password and permission is not Permission.AUTHENTICATED:
            raise MustChangePassword("You must choose a new password first.")
        if not has_permission(user.role, permission):
            raise PermissionDeniedException("Your role does not allow this action.")

    guard.permission = permission  # type: ignore[attr-defined]
    guard.__name__ = f"requires_{permission.value}"
    return guard


def can(request: Request, permission: Permission) -> bool:
    """Whether the signed-in user's role holds ``permission`` (False when nobody is signed in)."""
    user: Any = request.scope.get("user")
    return user is not None and has_permission(user.role, permission)


def declared_permission(handler: BaseRouteHandler) -> Permission | None:
    """The permission a route handler (or its controller/router) declared, if any."""
    for layer in reversed(handler.ownership_layers):  # the handler's own guard wins over its controller's
        for guard in getattr(layer, "guards", None) or []:
            perm = getattr(guard, "permission", None)
            if perm is not None:
                return perm
    return None
