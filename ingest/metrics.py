"""Prometheus metrics of the ingest process, served on their own port (``/metrics``)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
SAMPLES = Counter("optria_ingest_samples_total", "Samples committed (live and backfilled)", ["integration"],
                  registry=REGISTRY)
BACKFILLED = Counter("optria_ingest_backfilled_total", "Samples committed from backfill (history reads, replays)",
                     ["integration"], registry=REGISTRY)
REJECTED = Counter("optria_ingest_rejected_total", "Samples rejected, by reason", ["integration", "reason"],
                   registry=REGISTRY)
LAG = Histogram("optria_ingest_lag_seconds", "Commit time minus source time of live samples", ["integration"],
                registry=REGISTRY, buckets=(0.05, 0.1, 0.15, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300))
TASK_RESTARTS = Counter("optria_ingest_task_restarts_total", "Supervised tasks restarted after a crash", ["task"],
                        registry=REGISTRY)
QUEUE = Gauge("optria_ingest_queue_depth", "Samples waiting in the writer queue", registry=REGISTRY)
SPOOL = Gauge("optria_ingest_spool_bytes", "Bytes waiting in the local spool", registry=REGISTRY)
RECONNECTS = Gauge("optria_ingest_reconnects", "Reconnects per integration", ["integration"], registry=REGISTRY)
CONNECTED = Gauge("optria_ingest_connected", "1 when the integration's source is connected", ["integration"],
                  registry=REGISTRY)
DB_UP = Gauge("optria_ingest_database_up", "1 when the writer's last attempt reached the database", registry=REGISTRY)


async def serve_metrics(host: str, port: int, refresh) -> web.AppRunner:
    async def handler(_request: web.Request) -> web.Response:
        refresh()
        return web.Response(body=generate_latest(REGISTRY), content_type="text/plain", charset="utf-8")

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", handler)
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
