"""Every route the web application serves, area by area: the one place that imports the areas'
route modules (their ``ROUTES`` lists). Static files are mounted by the app factory."""

from __future__ import annotations

from optria.assets import api as assets_api
from optria.assets import dashboard as assets_dashboard
from optria.assets import routes as assets_routes
from optria.blackbox import routes as blackbox_routes
from optria.identity import api as identity_api
from optria.identity import management_routes, sso_routes
from optria.identity import routes as identity_routes
from optria.integrations import api as integrations_api
from optria.integrations import mapping_api as integrations_mapping_api
from optria.integrations import mapping_routes as integrations_mapping_routes
from optria.integrations import routes as integrations_routes
from optria.optimization import api as optimization_api
from optria.optimization import routes as optimization_routes
from optria.platform import console as platform_console
from optria.platform import ingestion as platform_ingestion
from optria.platform import poc_routes as platform_poc
from optria.platform import routes as platform_routes
from optria.shell import favicon, health
from optria.tenants import routes as tenants_routes
from optria.twin import routes as twin_routes

ROUTES = [
    *health.ROUTES, *identity_routes.ROUTES, *platform_routes.ROUTES, *platform_ingestion.ROUTES, *favicon.ROUTES,
    *assets_dashboard.ROUTES, *assets_routes.ROUTES, *assets_api.ROUTES,
    *management_routes.ROUTES, *sso_routes.ROUTES, *identity_api.ROUTES, *tenants_routes.ROUTES,
    *twin_routes.ROUTES, *blackbox_routes.ROUTES,
    *optimization_routes.ROUTES, *optimization_api.ROUTES, *platform_console.ROUTES, *platform_poc.ROUTES,
    *integrations_routes.ROUTES, *integrations_mapping_routes.ROUTES, *integrations_api.ROUTES,
    *integrations_mapping_api.ROUTES,
]
