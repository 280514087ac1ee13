"""Prometheus metrics of the web process (request counts and latency by route template)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)


class _Requests:
    def __init__(self) -> None:
        self.count = Counter("optria_http_requests_total", "HTTP requests", ["method", "route", "status"],
                             registry=REGISTRY)
        self.latency = Histogram("optria_http_request_seconds", "HTTP request latency", ["method", "route"],
                                 registry=REGISTRY, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.count.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


REQUESTS = _Requests()
DB_UP = Gauge("optria_database_up", "1 when the database answered the last readiness check", registry=REGISTRY)
POOL_SIZE = Gauge("optria_db_pool_connections", "Connections in the pool", ["state"], registry=REGISTRY)


def render_metrics(pool_stats: dict[str, int] | None = None) -> bytes:
    if pool_stats:
        POOL_SIZE.labels("size").set(pool_stats.get("pool_size", 0))
        POOL_SIZE.labels("available").set(pool_stats.get("pool_available", 0))
        POOL_SIZE.labels("waiting").set(pool_stats.get("requests_waiting", 0))
    return generate_latest(REGISTRY)
