"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from litestar import Request, Response, get
from litestar.enums import MediaType

from optria import migrations
from optria.identity.guards import PUBLIC
from optria.web.metrics import DB_UP, render_metrics


@get("/healthz", opt=PUBLIC, name="healthz")
async def healthz() -> dict[str, str]:
    """The process answers; says nothing about dependencies (that is /readyz)."""
    return {"status": "ok"}


@get("/readyz", opt=PUBLIC, name="readyz")
async def readyz(request: Request) -> Response:
    db = request.app.state.db
    checks: dict[str, str] = {}
    ok = await db.ping()
    checks["database"] = "ok" if ok else "unreachable"
    if ok:
        try:
            pending = await asyncio.to_thread(migrations.pending, db.dsn)
            checks["migrations"] = "ok" if not pending else f"{len(pending)} pending"
            ok = not pending
        except Exception:
            checks["migrations"] = "unknown"
            ok = False
    DB_UP.set(1 if checks["database"] == "ok" else 0)
    return Response({"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503,
                    media_type=MediaType.JSON)


@get("/metrics", opt=PUBLIC, name="metrics")
async def metrics(request: Request) -> Response:
    stats = request.app.state.db.pool.get_stats()
    return Response(render_metrics(stats), media_type="text/plain; version=0.0.4; charset=utf-8")


ROUTES = [healthz, readyz, metrics]
