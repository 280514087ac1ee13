"""The Digital Twin pages and their live stream.

- ``GET /digital-twin``: the plant as a grid of asset cards, grouped by site and unit,
  filtered by site / unit / status / search (invalid filters are dropped with a notice),
  one page of ``PAGE_SIZE`` cards at a time; empty states say what to set up next.
- ``GET /digital-twin/assets/{asset_id}``: one asset's signals against their limits, trends
  (1 h from ``signal_1m``; 24 h and 7 d from ``signal_1h``), health history, and the way
  on to its Black Box incidents.
- ``GET /digital-twin/stream``: Server-Sent Events with the changed cards of the user's
  tenant (see optria.twin.live). The page's script opens it with ``EventSource``, which
  reconnects by itself and resumes from the last event id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage

from optria.assets import filters
from optria.assets import store as assets_store
from optria.assets.models import HEALTH_STATUSES, LABELS
from optria.assets.store import like_pattern
from optria.assets.web import page_flags
from optria.identity.guards import requires
from optria.identity.rbac import Permission, has_permission
from optria.timeseries import sparklines
from optria.timeseries import store as timeseries
from optria.twin import cards, live
from optria.twin import store as twin_store
from optria.twin.scoring import STATUS_SCORE_CAP
from optria.web.i18n import current_lang, gettext, verbatim
from optria.web import formatting
from optria.web.formatting import current_zone
from optria.web.charts import Line, Series, line_chart, overlay_chart, sparkline, time_format
from optria.web.request_context import check_id, db_of, tenant_of
from optria.web.templating import render

log = logging.getLogger("optria.twin")

PAGE_SIZE = 36
TOP_VALUES = live.TOP_VALUES
MAX_STREAM_IDS = 200
KEEPALIVE_S = 15.0
SESSION_RECHECK_S = 60.0
RETRY_MS = 3000
MAX_CATCH_UP = timedelta(minutes=10)

# range key -> (aggregate view, SQL interval, seconds, largest gap drawn as a line)
RANGES: dict[str, tuple[str, str, int, int]] = {
    "1h": ("1m", "1 hour", 3600, 180),
    "24h": ("1h", "24 hours", 86400, 7200),
    "7d": ("1h", "7 days", 7 * 86400, 7200),
}
RANGE_LABELS = {"1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days"}
RANGE_NOTICE = "Unknown time range; showing the last hour."
PAGE_PAST_END = "That page is past the end of the list; showing the first page."
TEXTS = {
    "live": "Live", "connecting": "Connecting…", "reconnecting": "Connection lost — reconnecting…",
    "ended": "Live updates stopped. Reload the page to continue.",
}


def _display(row: Mapping[str, Any], prefix: str = "") -> str:
    name_ar = row.get(prefix + "name_ar")
    return name_ar if current_lang.get() == "ar" and name_ar else (row.get(prefix + "name") or "")


class Texts:
    """Labels translated once per request (a page shows dozens of cards)."""

    def __init__(self) -> None:
        self.status = {k: gettext(v) for k, v in LABELS["health_status"].items()}
        self.data = {k: gettext(v) for k, v in cards.DATA_STATES.items()}
        self.roles = {k: gettext(v) for k, v in cards.ROLE_LABELS.items()}
        self.live = {k: gettext(v) for k, v in TEXTS.items()}

    def for_script(self) -> str:
        """What the page's script needs (it only ever sets text, never markup), as JSON safe inside <script>."""
        return json.dumps({"status": self.status, "data": self.data, "live": self.live},
                          ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def card_view(row: dict[str, Any], texts: Texts, *, with_gauges: bool = False) -> dict[str, Any]:
    """A card with its display texts resolved (names in the UI language, translated labels)."""
    c = cards.card(row, with_gauges=with_gauges)
    c["name"], c["code"] = _display(row), row["code"]
    c["place"] = _display(row, "site_") + (" › " + _display(row, "unit_") if row.get("unit_id") else "")
    c["status_label"] = texts.status[c["status"]]
    c["data_label"] = "" if c["data"] == "none" else texts.data[c["data"]]
    for v in c["values"]:
        v["role_label"] = texts.roles.get(v["role"], texts.roles["other"])
        v["unit_label"] = formatting.unit_text(v["unit"])
    return c


# A card's limits as lines, top to bottom (the sparklines and the asset page's trend charts).
_LIMIT_KINDS = (("crit", "ch"), ("warn", "wh"), ("warn", "wl"), ("crit", "cl"))
_LIMIT_LABELS = {"crit": "Critical", "warn": "Warning"}   # English msgids


def _near(limits: dict[str, Any], points: list[tuple[float, float]]) -> list[Line]:
    """The limit lines close enough to the drawn values to keep the line readable (within the values'
    own span of them); a far limit would flatten a small sparkline."""
    if not points:
        return []
    ys = [y for _, y in points]
    lo, hi = min(ys), max(ys)
    span = max(hi - lo, abs(hi) * 0.05, 1e-9)
    return [Line(v, kind) for kind, key in _LIMIT_KINDS
            if (v := limits[key]) is not None and lo - span <= v <= hi + span]


def _settled_windows(request: Request) -> sparklines.SettledWindows:
    """The sparkline windows this process keeps between page loads (see SettledWindows)."""
    kept = request.app.state.get("twin_settled_windows")
    if kept is None:
        kept = request.app.state["twin_settled_windows"] = sparklines.SettledWindows()
    return kept


async def _sparklines(conn, windows: sparklines.SettledWindows, tenant_id: UUID, views: list[dict[str, Any]],
                      now: datetime) -> None:
    """Adds ``spark`` (an SVG of the last hour) to every value shown on the given cards.

    A page draws 144 of them: what is the same for all (the window, the title's wording) is
    worked out once."""
    values = [v for c in views for v in c["values"]]
    if not values:
        return
    since = now - timedelta(minutes=cards.SPARK_MINUTES)
    found = await windows.recent(conn, tenant_id, sorted({v["id"] for v in values}), since, cards.settled_until(now))
    since_s, now_s = since.timestamp(), now.timestamp()
    title = gettext("Last hour of %(name)s")
    for v in values:
        r = found[v["id"]]   # every signal asked for has its window, empty when it has no data
        points, step, hold_to = cards.spark_series(
            r.buckets, before=r.before, role=v["role"], current=v["fresh"], since=since_s, now=now_s,
            interval_s=v["interval"] or 60, scale=v["scale"], offset=v["offset"],
            tail=(min(v["t"], now_s), v["value"]) if v["t"] is not None else None)
        v["spark_step"] = step
        v["spark"] = sparkline(points, title=title % {"name": v["name"]}, width=200, height=16,
                               x_range=(since_s, now_s), step=step, hold_to=hold_to,
                               lines=_near(v["limits"], points), testid=f"spark-{v['id']}")


def _group(card_rows: list[dict[str, Any]], texts: Texts) -> list[dict[str, Any]]:
    """Ordered rows → [{site, units: [{unit, cards}]}] keeping the query's order."""
    groups: list[dict[str, Any]] = []
    for row in card_rows:
        if not groups or groups[-1]["site_id"] != row["site_id"]:
            groups.append({"site_id": row["site_id"], "name": _display(row, "site_"), "units": []})
        units = groups[-1]["units"]
        if not units or units[-1]["unit_id"] != row["unit_id"]:
            units.append({"unit_id": row["unit_id"], "name": _display(row, "unit_") if row["unit_id"] else "",
                          "cards": []})
        units[-1]["cards"].append(card_view(row, texts))
    return groups


def _pager(page: int, total: int, base_query: str) -> dict[str, Any]:
    pages = max(1, math.ceil(total / PAGE_SIZE))
    sep = "&" if base_query else "?"

    def link(n: int) -> str:
        return "/digital-twin" + base_query + (f"{sep}page={n}" if n > 1 else "")

    return {"page": page, "pages": pages, "total": total,
            "first": (page - 1) * PAGE_SIZE + 1 if total else 0, "last": min(total, page * PAGE_SIZE),
            "prev": link(page - 1) if page > 1 else None, "next": link(page + 1) if page < pages else None}


def _server_now_ms() -> int:
    return int(time.time() * 1000)


# ----------------------------------------------------------------------------- the grid


def _known_total(f: filters.AssetFilter, sites: list[dict[str, Any]], units: list[dict[str, Any]]) -> int | None:
    """How many assets the site/unit filters select, from the overview's counts (None: the grid counts)."""
    if f.q or f.status:
        return None
    if f.unit_id is not None:
        return next((u["asset_count"] for u in units if u["id"] == f.unit_id), 0)
    return sum(s["asset_count"] for s in sites if f.site_id in (None, s["id"]))


@get("/digital-twin", guards=[requires(Permission.VIEW_TWIN)], name="twin_index")
async def twin_index(request: Request) -> Response:
    """The plant as live asset cards by site and unit (``?site_id``, ``unit_id``, ``status``, ``q``, ``page``)."""
    tenant_id = tenant_of(request)
    rendered_at = _server_now_ms()
    async with db_of(request).tenant(tenant_id, cached_plans=True, pipeline=True) as conn:   # no optional filters
        sites, units = await twin_store.site_overview(conn, tenant_id)
        f, notices = filters.asset_filter(request.query_params, sites, units)
        query = dict(site_id=f.site_id, unit_id=f.unit_id, status=f.status, q=like_pattern(f.q), page_size=PAGE_SIZE,
                     top=TOP_VALUES, known_total=_known_total(f, sites, units))
        rows, total = await twin_store.grid(conn, tenant_id, page=f.page, **query)
        if not rows and f.page > 1:
            notices.append(PAGE_PAST_END)
            f.page = 1
            rows, total = await twin_store.grid(conn, tenant_id, page=1, **query)
        if any(r["n_with_data"] for r in rows):
            setup = {"has_integrations": True, "has_mappings": True, "has_data": True}
        else:
            setup = await twin_store.setup_state(conn, tenant_id)
        texts = Texts()
        groups = _group(rows, texts)
        if rows:   # the database's time of the read (no round trip of its own)
            await _sparklines(conn, _settled_windows(request), tenant_id,
                              [c for g in groups for u in g["units"] for c in u["cards"]], rows[0]["read_at"])
    for row in (*sites, *units):
        row["display"] = _display(row)
    shown_sites = [s for s in sites if f.site_id in (None, s["id"])]
    by_status = {st: sum(s[st] for s in shown_sites) for st in HEALTH_STATUSES}
    ids = ",".join(str(r["id"]) for r in rows)
    return render(
        request, "digital_twin/index.html", breadcrumbs=[("Digital Twin", None)],
        groups=groups, total=total, asset_total=sum(s["asset_count"] for s in sites), sites=sites,
        units=units, filter=f, notices=[gettext(n) for n in notices], statuses=HEALTH_STATUSES, by_status=by_status,
        setup=setup, pager=_pager(f.page, total, f.query(page=1)), labels=LABELS, texts=texts,
        stream_url=f"/digital-twin/stream?ids={ids}&since={rendered_at}" if ids else "",
        server_now=rendered_at, **page_flags(request))


# ----------------------------------------------------------------------------- one asset


CUSTOM_MAX = timedelta(days=31)
CUSTOM_MIN = timedelta(minutes=10)
CUSTOM_NOTICE = "The chosen time range was not valid (its start must be before its end, at most 31 days apart); showing the last hour."


@dataclass(frozen=True)
class Window:
    key: str                 # 1h | 24h | 7d | custom
    since: datetime
    until: datetime
    resolution: str          # 1m | 1h: which aggregate draws it
    width_s: int             # the buckets' width
    gap_s: int               # the largest gap drawn as a line

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds()


def _parse_local(raw: str | None) -> datetime | None:
    """A datetime-local box's value, read in the page's time zone (as its times are shown)."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if not 1900 <= value.year <= 2200:
        return None
    return value if value.tzinfo else value.replace(tzinfo=formatting.zone())


def _window(params: Mapping[str, str], now: datetime) -> tuple[Window, list[str]]:
    """The chart window: a preset (``range=1h|24h|7d``) or a chosen one (``range=custom&from=…&to=…``)."""
    raw = (params.get("range") or "").strip()
    if raw == "custom" or (not raw and (params.get("from") or params.get("to"))):
        start, end = _parse_local(params.get("from")), _parse_local(params.get("to")) or now
        if start is not None and CUSTOM_MIN <= end - start <= CUSTOM_MAX:
            end = min(end, now)
            if end - start >= CUSTOM_MIN:
                res = "1m" if end - start <= timedelta(hours=24) else "1h"
                return Window("custom", start, end, res, 60 if res == "1m" else 3600, 180 if res == "1m" else 7200), []
        return _window({}, now)[0], [CUSTOM_NOTICE]
    notices = []
    if raw and raw not in RANGES:
        notices, raw = [RANGE_NOTICE], "1h"
    key = raw or "1h"
    view, _, seconds, gap = RANGES[key]
    return Window(key, now - timedelta(seconds=seconds), now, view, 60 if view == "1m" else 3600, gap), notices


def _series(value: dict[str, Any], buckets: list[dict[str, Any]], before: float | None, w: Window, now: datetime,
            *, css: str, label: str = "") -> Series:
    """One signal's line (or steps, for a signal that reports only changes) over the window, in shown units."""
    current = value["fresh"] and w.until >= now - timedelta(minutes=1)
    points, step, hold_to = cards.spark_series(
        [(b["bucket"].timestamp(), b["avg"], b.get("last")) for b in buckets], before=before, role=value["role"],
        current=current, since=w.since.timestamp(),
        now=w.until.timestamp(), interval_s=value["interval"] or 60, scale=value["scale"], offset=value["offset"],
        width_s=w.width_s)
    band = []
    if not step:
        for b in buckets:
            if b["min"] is not None and b["max"] is not None:
                lo, hi = sorted((b["min"] * value["scale"] + value["offset"], b["max"] * value["scale"] + value["offset"]))
                band.append((b["bucket"].timestamp() + w.width_s / 2, lo, hi))
    return Series(points=points, band=band, css=css, step=step, hold_to=hold_to, label=label)


def _chart_for(value: dict[str, Any], buckets: list[dict[str, Any]], before: float | None, w: Window,
               now: datetime) -> Any:
    """The trend chart of one signal: bucket means as a line over the min–max band, or steps for a
    signal that reports only changes (its value holds until the next one), in shown units."""
    series = _series(value, buckets, before, w, now, css=f"role-{value['role']}")
    limits = value["limits"]
    lines = [Line(limits[key], kind, gettext(_LIMIT_LABELS[kind])) for kind, key in _LIMIT_KINDS
             if limits[key] is not None]
    title = gettext("Trend of %(name)s", name=value["name"])
    return line_chart([series], x_range=(w.since.timestamp(), w.until.timestamp()), title=title, lines=lines,
                      gap=w.gap_s, width=420, height=170, empty_text=gettext("No data in this period"),
                      testid=f"trend-{value['id']}"), series.step


def _overlay(values: list[dict[str, Any]], params: Mapping[str, str], trends: dict[int, list[dict[str, Any]]],
             held: dict[int, tuple[datetime, float]], w: Window, now: datetime) -> dict[str, Any] | None:
    """The two signals chosen to be drawn together (``a`` and ``b``; by default the first two)."""
    if len(values) < 2:
        return None
    by_id = {v["id"]: v for v in values}

    def pick(name: str, default: int) -> int:
        raw = (params.get(name) or "").strip()
        return int(raw) if raw.isdigit() and int(raw) in by_id else default

    a = pick("a", values[0]["id"])
    b = pick("b", next(v["id"] for v in values if v["id"] != a))
    va, vb = by_id[a], by_id[b]
    sa = _series(va, trends.get(a, []), held.get(a, (None, None))[1], w, now, css="overlay-a",
                 label=f"{va['role_label']} ({formatting.unit_text(va['unit'])})" if va["unit"] else va["role_label"])
    sb = _series(vb, trends.get(b, []), held.get(b, (None, None))[1], w, now, css="overlay-b",
                 label=f"{vb['role_label']} ({formatting.unit_text(vb['unit'])})" if vb["unit"] else vb["role_label"])
    chart = overlay_chart(sa, sb, x_range=(w.since.timestamp(), w.until.timestamp()),
                          title=gettext("%(a)s and %(b)s together", a=va["role_label"], b=vb["role_label"]),
                          gap=w.gap_s, empty_text=gettext("No data in this period"), testid="overlay-chart")
    return {"a": a, "b": b, "chart": chart}


def _health_chart(history: list[dict[str, Any]], w: Window) -> Any:
    series = Series(points=[(h["time"].timestamp(), h["health_score"]) for h in history if h["health_score"] is not None],
                    css="health")
    lines = [Line(STATUS_SCORE_CAP["warning"], "warn", gettext("Warning")),
             Line(STATUS_SCORE_CAP["critical"], "crit", gettext("Critical"))]
    return line_chart([series], x_range=(w.since.timestamp(), w.until.timestamp()), y_range=(0, 100), lines=lines,
                      title=gettext("Health score history"), gap=None, testid="health-history",
                      empty_text=gettext("No health scores in this period"), x_format=time_format(w.seconds))


def _transitions(history: list[dict[str, Any]], limit: int = 10) -> list[dict[str, Any]]:
    """Status changes in the history, newest first."""
    out, previous = [], None
    for h in history:
        if h["status"] != previous:
            out.append(h)
            previous = h["status"]
    return list(reversed(out))[:limit]


@get("/digital-twin/assets/{asset_id:int}", guards=[requires(Permission.VIEW_TWIN)], name="twin_asset")
async def twin_asset(request: Request, asset_id: FromPath[int]) -> Response:
    """One asset's live signals against their limits, trends (``?range=1h|24h|7d``, or ``range=custom`` with
    ``from``/``to``), two signals overlaid (``a``, ``b``) and its health history."""
    tenant_id = tenant_of(request)
    check_id(asset_id)
    rendered_at = _server_now_ms()
    async with db_of(request).tenant(tenant_id) as conn:
        asset = await assets_store.get_asset(conn, tenant_id, asset_id)
        if asset is None:
            raise NotFoundException()
        current_zone.set(asset["site_timezone"] or current_zone.get())   # this page speaks its site's time
        now = await twin_store.now(conn)
        w, notices = _window(request.query_params, now)
        card_rows = await twin_store.cards_by_id(conn, tenant_id, [asset_id], top=TOP_VALUES, detail=[asset_id])
        signal_ids = [v["id"] for v in ((card_rows[0]["signals"] or []) if card_rows else [])]
        trend_rows = await timeseries.window(conn, tenant_id, signal_ids, w.since, w.until + timedelta(minutes=1),
                                             resolution=w.resolution)
        held = await sparklines.held_before(conn, tenant_id, signal_ids, w.since)
        history = await twin_store.health_history_between(conn, tenant_id, asset_id, w.since, w.until)
        contributing = await twin_store.contributing(conn, tenant_id, asset_id)
    texts = Texts()
    card = card_view(card_rows[0], texts, with_gauges=True) if card_rows else None
    charts, steps = {}, {}
    for v in (card["values"] if card else []):
        charts[v["id"]], steps[v["id"]] = _chart_for(v, trend_rows.get(v["id"], []), held.get(v["id"], (None, None))[1],
                                                     w, now)
    overlay = _overlay(card["values"], request.query_params, trend_rows, held, w, now) if card else None
    name = _display(asset)
    return render(
        request, "digital_twin/asset.html",
        breadcrumbs=[("Assets", "/assets"), (verbatim(name), f"/assets/{asset_id}"), ("Digital twin view", None)],
        asset=asset, asset_name=name, card=card, charts=charts, steps=steps, window=w, ranges=RANGES,
        range_labels=RANGE_LABELS, notices=[gettext(n) for n in notices], history=history,
        health_chart=_health_chart(history, w), transitions=_transitions(history), overlay=overlay,
        contributing=contributing, reasons=cards.REASON_LABELS, labels=LABELS, texts=texts,
        from_value=formatting.local(w.since).strftime("%Y-%m-%dT%H:%M"),
        to_value=formatting.local(w.until).strftime("%Y-%m-%dT%H:%M"),
        stream_url=f"/digital-twin/stream?ids={asset_id}&detail={asset_id}&since={rendered_at}",
        server_now=rendered_at, **page_flags(request))


# ----------------------------------------------------------------------------- live stream


def _id_set(raw: str | None, limit: int) -> frozenset[int] | None:
    """``1,2,3`` → ids (positive bigints only, at most ``limit``); None when absent or nothing valid."""
    if not raw:
        return None
    ids = set()
    for part in raw.split(",")[:limit]:
        part = part.strip()
        if part.isdigit() and 0 < int(part) < 2**63:
            ids.add(int(part))
    return frozenset(ids) or None


def _since(request: Request) -> datetime | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("since") or ""
    if not raw.strip().isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(raw) / 1000, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


async def _still_allowed(request: Request, tenant_id: UUID) -> bool:
    """Long streams re-check the session now and then, as every other request does on arrival."""
    user = request.scope["user"]
    try:
        fresh = await request.app.state.identity.session_user(user.session_id)
    except Exception:
        return True  # a database hiccup is not a reason to cut the stream
    return fresh is not None and fresh.tenant_id == tenant_id and has_permission(fresh.role, Permission.VIEW_TWIN)


async def _events(request: Request, tenant_id: UUID, only: frozenset[int] | None, detail: frozenset[int],
                  since: datetime | None) -> AsyncIterator[ServerSentEventMessage]:
    hub = live.hub_of(request.app)
    sub = hub.subscribe(tenant_id, only=only, detail=detail)
    log.debug("twin.stream_opened", extra={"tenant_id": str(tenant_id), "subscribers": hub.subscriber_count()})
    try:
        yield ServerSentEventMessage(data=None, comment="optria twin stream", retry=RETRY_MS)
        last_id = 0
        if since is not None:
            if since < datetime.now(timezone.utc) - MAX_CATCH_UP:
                yield ServerSentEventMessage(event="reload", data="{}")
                return
            event = await live.catch_up(request.app.state.db, tenant_id, since, only=only, detail=detail)
            last_id = event.id
            data = event.payload(only)
            yield ServerSentEventMessage(event="cards", id=event.id, data=data or '{"now":%s,"cards":[]}' % event.now)
        recheck_at = time.monotonic() + SESSION_RECHECK_S
        while True:
            try:
                item = await asyncio.wait_for(sub.queue.get(), timeout=KEEPALIVE_S)
            except asyncio.TimeoutError:
                item = None
            if item is live.CLOSE:
                return
            if time.monotonic() >= recheck_at:
                recheck_at = time.monotonic() + SESSION_RECHECK_S
                if not await _still_allowed(request, tenant_id):
                    yield ServerSentEventMessage(event="ended", data="{}")
                    return
            if item is None:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
                continue
            event_id, data = item
            if event_id < last_id:
                continue  # older than the catch-up this stream began with
            last_id = event_id
            yield ServerSentEventMessage(event="cards", id=event_id, data=data)
    finally:
        hub.unsubscribe(sub)
        log.debug("twin.stream_closed", extra={"tenant_id": str(tenant_id), "dropped": sub.dropped})


@get("/digital-twin/stream", guards=[requires(Permission.VIEW_TWIN)], name="twin_stream")
async def twin_stream(request: Request) -> Response:
    """Server-Sent Events for an open twin page (``Accept: text/event-stream``, as EventSource sends)."""
    tenant_id = tenant_of(request)
    if "text/event-stream" not in request.headers.get("accept", ""):
        return Response(content="This address is the live event stream of the Digital Twin page. "
                                "Open /digital-twin in a browser, or request it with Accept: text/event-stream.\n",
                        status_code=406, media_type="text/plain")
    only = _id_set(request.query_params.get("ids"), MAX_STREAM_IDS)
    detail = _id_set(request.query_params.get("detail"), 5) or frozenset()
    return ServerSentEvent(_events(request, tenant_id, only, detail, _since(request)),
                           headers={"Cache-Control": "no-cache, no-store"})


ROUTES = [twin_index, twin_asset, twin_stream]
