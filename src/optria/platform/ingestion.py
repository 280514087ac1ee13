"""The platform owner's ingestion dashboard: every integration of every tenant, at a glance.

A row "stands out" when its data is not current (the one rule of optria.timeseries.staleness:
a connected worker vouches for a source that reports by exception; a lost worker's data is
stale at once; otherwise three expected intervals), its worker's heartbeat is old (the ingest
process is gone), or its source has an unresolved error.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from optria.identity.guards import requires
from optria.identity.rbac import Permission
from optria.platform.store import IngestionStore
from optria.timeseries import staleness
from optria.web.charts import Series, line_chart
from optria.web.errors import ApiError
from optria.web.templating import render as render_page
from optria.web.i18n import gettext, verbatim

HEARTBEAT_STALE_S = staleness.SOURCE_HEARTBEAT_S


def classify(row: dict[str, Any]) -> dict[str, Any]:
    """Adds ``flags`` (stale, no_worker, error, disabled) and a ``level`` for the row's colour."""
    flags = []
    expected = row.get("expected_interval_s") or 60
    if not row["enabled"] or (row["is_demo"] and not row["demo_stream"]):
        flags.append("disabled")
    elif not row.get("mapped"):
        flags.append("no_mappings")
    else:
        verdict = staleness.judge(sample_age_s=row["sample_age_s"], expected_interval_s=expected,
                                  connected=row["connected"], heartbeat_age_s=row["heartbeat_age_s"])
        if not verdict.current:
            flags.append("stale")
        if row["heartbeat_age_s"] is None or row["heartbeat_age_s"] > HEARTBEAT_STALE_S:
            flags.append("no_worker")
    if row["last_error"] or row["state"] == "error":
        flags.append("error")   # unresolved: the ingest service clears it once the source works again
    level = "critical" if {"error", "no_worker"} & set(flags) else "warning" if "stale" in flags else \
        "nodata" if {"disabled", "no_mappings"} & set(flags) else "normal"
    return {**row, "flags": sorted(set(flags)), "level": level}


def lag_chart(history: list[dict[str, Any]]) -> str:
    """p99 (red) and p50 ingest lag in ms, per minute over the last hour (``IngestionStore.lag_history``)."""
    now = time.time()
    series = [Series([(h["minute"].timestamp(), float(h[column])) for h in history if h[column] is not None], css=css)
              for column, css in (("lag_p99_ms", "lag-p99"), ("lag_p50_ms", "lag-p50"))]
    return line_chart(series, x_range=(now - 3600, now), title=gettext("Lag over the last hour"), width=720,
                      height=220, gap=150, empty_text=gettext("No data in this period"), testid="lag-chart")


@get("/platform/ingestion", guards=[requires(Permission.PLATFORM_CONSOLE)], name="platform_ingestion")
async def ingestion_dashboard(request: Request) -> Response:
    store = IngestionStore(request.app.state.db)
    rows = [classify(r) for r in await store.overview()]
    history = await store.lag_history()
    summary = {
        "integrations": len(rows),
        "streaming": sum(1 for r in rows if r["state"] == "streaming"),
        "attention": sum(1 for r in rows if r["level"] in ("critical", "warning")),
        "samples_per_s": sum(r["samples_per_s"] or 0 for r in rows),
    }
    return render_page(request, "platform/ingestion.html", rows=rows, summary=summary, chart=lag_chart(history),
                       breadcrumbs=[("Platform overview", "/platform"), ("Ingestion", "/platform/ingestion")])


@get("/platform/ingestion/{integration_id:int}", guards=[requires(Permission.PLATFORM_CONSOLE)],
     name="platform_ingestion_detail")
async def ingestion_detail(request: Request, integration_id: FromPath[int]) -> Response:
    store = IngestionStore(request.app.state.db)
    rows = await store.overview(integration_id)
    if not rows:
        raise ApiError(404, "not_found", "No such integration.")
    row = classify(rows[0])
    history = await store.lag_history(integration_id)
    errors = await store.error_history(integration_id)
    rejects = await store.rejects(integration_id)
    return render_page(request, "platform/ingestion_detail.html", row=row, chart=lag_chart(history), history=history,
                       errors=errors, rejects=rejects,
                       breadcrumbs=[("Platform overview", "/platform"), ("Ingestion", "/platform/ingestion"),
                                    (verbatim(row["name"]), None)])


ROUTES = [ingestion_dashboard, ingestion_detail]
