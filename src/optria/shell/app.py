"""The Litestar application factory: one place that wires settings, database, routes and middleware.

This is the application shell: it alone imports the areas' routes (optria.shell.routes) and lends
the UI kit (optria.web) what the areas know (optria.shell.template_globals). Its lifespan opens
the database pool and the stores the requests share, and closes them.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.static_files import create_static_files_router

from optria import db as dbmod
from optria import gc_settle
from optria.config import Settings, load_settings, validate_required_secrets
from optria.identity.store import IdentityStore
from optria.logs import register_secrets, settings_secrets, setup_logging
from optria.secretbox import PURPOSE_CSRF, PURPOSE_SESSION_COOKIE, SecretBox, derive_key
from optria.shell import job_queue, routes, template_globals
from optria.shell.middleware import RequestContextMiddleware
from optria.twin import live as twin_live
from optria.web import STATIC_DIR
from optria.web.errors import (data_error_handler, http_exception_handler, integrity_error_handler,
                               internal_error_handler)
from optria.web.openapi_errors import api_openapi_config
from optria.web.security import security_headers_hook

log = logging.getLogger("optria.web")
# after start-up, and once the first pages have compiled their templates (optria.gc_settle)
GC_SETTLE_S = (3.0, 30.0)
GC_YOUNG = 20_000   # young collections after this many new containers (default 700: 4 per twin page)


def create_app(settings: Settings | None = None, database: dbmod.Database | None = None, *,
               dsn: str | None = None) -> Litestar:
    settings = settings or load_settings()
    setup_logging(settings.log_level)
    register_secrets(settings_secrets(settings))
    validate_required_secrets(settings)
    secret = settings.session_key()
    owned_db = database is None

    async def on_startup(app: Litestar) -> None:
        if app.state.get("db") is None:
            resolved = dsn or dbmod.resolve_dsn(settings, start_embedded=False)
            register_secrets([resolved])
            app.state.db = dbmod.Database(resolved, min_size=1, max_size=8, name="optria-web")
            await app.state.db.open()
        app.state.identity = IdentityStore(app.state.db)
        app.state.secretbox = SecretBox(secret)
        gc_settle.young_threshold(GC_YOUNG)
        app.state.gc_settle = asyncio.create_task(gc_settle.settle(GC_SETTLE_S, log, "web.gc_settled"),
                                                  name="gc-settle")

    async def on_shutdown(app: Litestar) -> None:
        if app.state.get("gc_settle") is not None:
            app.state.gc_settle.cancel()
        if owned_db and app.state.get("db") is not None:
            await app.state.db.close()

    session_config = CookieBackendConfig(
        secret=derive_key(secret, PURPOSE_SESSION_COOKIE), key="optria_session", max_age=12 * 3600,
        secure=settings.is_production, httponly=True, samesite="lax",
    )
    csrf = CSRFConfig(secret=derive_key(secret, PURPOSE_CSRF).hex(), cookie_name="optria_csrf", header_name="x-csrf-token",
                      cookie_secure=settings.is_production, cookie_samesite="lax")

    template_globals.install()
    route_handlers = [
        *routes.ROUTES,
        create_static_files_router(path="/static", directories=[STATIC_DIR], opt={"public": True},
                                   name="static", include_in_schema=False),
    ]
    app = Litestar(
        route_handlers=route_handlers,
        middleware=[session_config.middleware, RequestContextMiddleware],
        csrf_config=csrf,
        exception_handlers={HTTPException: http_exception_handler, psycopg.DataError: data_error_handler,
                            psycopg.IntegrityError: integrity_error_handler,
                            Exception: internal_error_handler},
        on_startup=[on_startup, job_queue.start],
        before_send=[security_headers_hook(production=settings.is_production)],
        on_shutdown=[job_queue.stop, twin_live.close_hub, on_shutdown],
        openapi_config=api_openapi_config(),
        logging_config=None,     # our JSON-lines handler (setup_logging) stays the only one: Litestar's
                                 # default would replace it on the root logger with plain text
        debug=False,
    )
    app.state.settings = settings
    app.state.db = database
    return app
