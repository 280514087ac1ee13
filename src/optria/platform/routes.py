"""Platform-owner routes: configuration status (flags only)."""

from __future__ import annotations

from litestar import Request, get

from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.platform.config_status import ConfigStatus, config_status
from optria.platform.store import PlatformStore


@get("/internal/config/status", guards=[requires(Permission.PLATFORM_CONSOLE)], name="config_status")
async def config_status_route(request: Request) -> ConfigStatus:
    tier = await PlatformStore(request.app.state.db).storage_tier()
    return config_status(request.app.state.settings, tier)


ROUTES = [config_status_route]
