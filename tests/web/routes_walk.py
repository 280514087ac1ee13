"""Walk every route of the app: used by the route contract, RBAC and no-secret tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler

from optria.identity.guards import declared_permission
from optria.identity.rbac import Permission

SKIP_PREFIXES = ("/static", "/api/schema")


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str               # template, e.g. /assets/{asset_id:int}
    handler: HTTPRouteHandler
    permission: Permission | None
    public: bool
    typed_path: str = ""    # the same template with parameter types ({asset_id:int}), used to fill values

    def concrete(self, fill: str | None = None) -> str:
        """The path with every parameter filled by a value of the right type that names nothing real."""
        out = []
        for part in (self.typed_path or self.path).split("/"):
            if part.startswith("{") and part.endswith("}"):
                kind = part[1:-1].split(":")[1] if ":" in part else "str"
                out.append(fill or {"int": "987654321", "uuid": str(uuid.uuid4())}.get(kind, "no-such-thing"))
            else:
                out.append(part)
        return "/".join(out) or "/"


def walk(app: Litestar) -> list[RouteInfo]:
    found = []
    for route in app.routes:
        if route.path.startswith(SKIP_PREFIXES):
            continue
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            for method in sorted(handler.http_methods):
                if method in ("HEAD", "OPTIONS"):
                    continue
                found.append(RouteInfo(method, route.path_format if hasattr(route, "path_format") else route.path,
                                       handler, declared_permission(handler), bool(handler.opt.get("public")),
                                       typed_path=route.path))
    return sorted(found, key=lambda r: (r.path, r.method))


def contract_lines(app: Litestar) -> list[str]:
    return sorted({f"{r.method} {r.path}" for r in walk(app)})
