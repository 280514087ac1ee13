"""Pages of the shell: the sections later work fills in (the home page is the dashboard, in optria.assets).

A section not built yet answers with a clear "not available yet" page behind the same
permission it will have, so navigation, RBAC and the route contract are right from day one.
"""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.web.templating import NAV, render


def coming_soon(path: str, permission: Permission, title: str) -> HTTPRouteHandler:
    async def handler(request: Request) -> Response:
        return render(request, "coming_soon.html", title=title, breadcrumbs=[(title, path)])

    handler.__name__ = "coming_soon_" + path.strip("/").replace("/", "_").replace("-", "_")
    return get(path, guards=[requires(permission)], name=handler.__name__)(handler)


# Sections still to be built; each entry is removed when its real page lands.
PENDING_SECTIONS: set[str] = set()

# The home page ("/") is the dashboard, in optria.assets.dashboard.
ROUTES = [coming_soon(item.href, item.permission, item.label) for item in NAV if item.href in PENDING_SECTIONS]
