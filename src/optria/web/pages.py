"""Pages of the shell: the home page and the sections later work fills in.

A section not built yet answers with a clear "not available yet" page behind the same
permission it will have, so navigation, RBAC and the route contract are right from day one.
"""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect

from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.web.templating import NAV, render


@get("/", guards=[requires(Permission.AUTHENTICATED)], name="home")
async def home(request: Request) -> Response:
    user = request.scope["user"]
    if user.is_platform_owner:
        return Redirect("/platform")
    return render(request, "home.html", breadcrumbs=[])


def coming_soon(path: str, permission: Permission, title: str) -> HTTPRouteHandler:
    async def handler(request: Request) -> Response:
        return render(request, "coming_soon.html", title=title, breadcrumbs=[(title, path)])

    handler.__name__ = "coming_soon_" + path.strip("/").replace("/", "_").replace("-", "_")
    return get(path, guards=[requires(permission)], name=handler.__name__)(handler)


# Sections still to be built; each entry is removed when its real page lands.
PENDING_SECTIONS = {"/digital-twin", "/assets", "/blackbox", "/integrations", "/optimization", "/management/users",
                    "/management/audit", "/platform", "/platform/tenants", "/platform/users", "/platform/ingestion",
                    "/platform/poc"}

ROUTES = [home] + [coming_soon(item.href, item.permission, item.label) for item in NAV if item.href in PENDING_SECTIONS]
