"""SQL of the twin: the card grid, one asset's live signals and health history, the
changes the live hub pushes, and the scoring job's cross-tenant reads and writes. Trends
come from optria.timeseries.store, the one reader of the aggregates for pages.

Page and hub queries run inside ``db.tenant(tenant_id)`` and still filter by ``tenant_id``.
The scoring job's queries run in ``db.platform("scoring")`` and carry each row's tenant id;
sets of assets travel as two parallel arrays (tenant ids, asset ids) unnested in SQL, so the
job reads any number of assets in one round trip.

Freshness is the one rule of optria.timeseries.staleness, composed from its SQL fragments
(the same rule the scoring job applies in Python). Asset status on pages is the
assets area's ``EFFECTIVE_STATUS`` (a missing or stale health row reads "nodata"), so the
twin, the assets list and the dashboard always agree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from optria.assets.store import EFFECTIVE_STATUS, INSERT_HEALTH_SNAPSHOT, STALE, UPSERT_HEALTH_LATEST
from optria.db import Conn, fetch_all
from optria.timeseries import store as timeseries
from optria.timeseries import staleness
from optria.timeseries import statistics
from optria.timeseries.relations import LATEST
from optria.twin.scoring import AI_MAX_AGE_S, BASELINE_GAP_MINUTES, LEVEL_MINUTES, TREND_HOURS

# Order in which a card lists its signals (the first ones are its key values).
ROLE_ORDER = ("vibration", "temperature", "pressure", "flow", "power", "speed", "current", "level", "running", "other")
_ROLES = "ARRAY[" + ", ".join(f"'{r}'" for r in ROLE_ORDER) + "]::text[]"
_AGE_LIMIT = staleness.age_limit_sql("l.time", "m.expected_interval_s")
_HEARTBEAT = f"make_interval(secs => {staleness.SOURCE_HEARTBEAT_S})"
_FRESH = staleness.current_sql(time="l.time", value="l.value", quality="l.quality", interval="m.expected_interval_s",
                               health="ih")


# The figures of a card that asset_signal_summary keeps (what ``sig`` computes besides the signals).
SUMMARY_FIGURES = ("n_signals", "n_with_data", "n_fresh", "newest", "fresh_until", "all_stale_at")


def with_cards(targets: str, *, summarized: bool = False) -> str:
    """CTEs ``targets`` (the given SELECT of asset rows ``a.*`` — the cards to build) and ``sig``
    (per asset: signal counts, newest sample, when the first / last fresh signal goes stale,
    and the signals as JSON — the first %(top)s by role for every card, all of them for assets
    in %(detail)s), computed for all targets in one pass.

    Freshness is optria.timeseries.staleness: a value from a live source (its ingest worker
    connected, heartbeat fresh) is current however old; a lost source's is stale at once; other
    values age out after ``STALE_AFTER_INTERVALS`` expected intervals, the moment the page's
    script is given (``fresh_until`` / ``all_stale_at``; none while a live source vouches).

    ``summarized`` (the grid): only the targets whose scoring-job summary still counts
    (``summary``, see migration 0018) get a ``sig`` row, with the summary's figures and the
    signals the card shows (the summary lists them in order): no other signal is read. The
    caller builds the other cards with the exact form (``store.grid`` does)."""
    ranked = f"""
    SELECT m.*, row_number() OVER (PARTITION BY m.asset_id ORDER BY array_position({_ROLES}, m.metric_role), m.id) AS rn
    FROM targets t
    JOIN external_signal_mappings m ON m.tenant_id = %(tenant_id)s AND m.asset_id = t.id AND m.enabled"""
    summary = overlay = ""
    if summarized:
        # a summary that lists fewer mappings than the card shows (and the asset has more) does not count
        summary = f"""
summary AS MATERIALIZED (
    SELECT x.* FROM asset_signal_summary x
    WHERE x.tenant_id = %(tenant_id)s AND x.asset_id IN (SELECT t.id FROM targets t) AND x.valid_until > now()
      AND NOT x.asset_id = ANY(%(detail)s::int8[])
      AND (cardinality(x.shown) >= %(top)s OR cardinality(x.shown) = x.n_signals)
      AND NOT EXISTS (SELECT 1 FROM ingest_health ih
                      WHERE ih.tenant_id = x.tenant_id AND ih.integration_id = ANY(x.sources)
                        AND {staleness.live_sql("ih")} <> (ih.integration_id = ANY(x.live_sources)))
),"""
        ranked = """
    SELECT m.*, o.rn
    FROM summary x
    CROSS JOIN LATERAL unnest(x.shown[1:%(top)s]) WITH ORDINALITY AS o(mapping_id, rn)
    JOIN external_signal_mappings m ON m.tenant_id = %(tenant_id)s AND m.id = o.mapping_id"""
        overlay = f""",
sig AS MATERIALIZED (
    SELECT x.asset_id, g.signals, {", ".join(f"x.{c}" for c in SUMMARY_FIGURES)}
    FROM summary x LEFT JOIN sig_own g ON g.asset_id = x.asset_id
)"""
    return f"""
targets AS MATERIALIZED ({targets}),{summary}
ranked AS ({ranked}
),
sig_rows AS (
    SELECT m.asset_id, m.signal_id, m.metric_role, s.name, coalesce(m.unit, s.eng_unit) AS unit,
           l.value * m.scale + m."offset" AS shown, l.time, l.quality, m.expected_interval_s,
           m.warn_low, m.warn_high, m.crit_low, m.crit_high, m.scale, m."offset", {_AGE_LIMIT} AS stale_at,
           {staleness.live_sql("ih")} AS vouched, {_FRESH} AS fresh, m.rn
    FROM ranked m
    JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id
    LEFT JOIN {LATEST} l ON l.tenant_id = m.tenant_id AND l.signal_id = m.signal_id
    LEFT JOIN ingest_health ih ON ih.tenant_id = s.tenant_id AND ih.integration_id = s.integration_id
),
{"sig_own AS (" if summarized else "sig AS MATERIALIZED ("}
    SELECT x.asset_id, count(*)::int AS n_signals,
           count(x.time)::int AS n_with_data,
           (count(*) FILTER (WHERE x.fresh))::int AS n_fresh, max(x.time) AS newest,
           min(x.stale_at) FILTER (WHERE x.fresh AND NOT x.vouched) AS fresh_until,
           CASE WHEN bool_or(x.fresh AND x.vouched) THEN NULL
                ELSE max(x.stale_at) FILTER (WHERE x.fresh) END AS all_stale_at,
           json_agg(json_build_object(
               'id', x.signal_id, 'role', x.metric_role, 'name', x.name, 'unit', x.unit, 'v', x.shown,
               't', extract(epoch FROM x.time), 'q', x.quality, 'fresh', coalesce(x.fresh, false),
               'i', x.expected_interval_s, 'wl', x.warn_low, 'wh', x.warn_high, 'cl', x.crit_low,
               'ch', x.crit_high, 'sc', x.scale, 'of', x."offset", 'live', x.vouched) ORDER BY x.rn)
             FILTER (WHERE x.rn <= %(top)s OR x.asset_id = ANY(%(detail)s::int8[])) AS signals
    FROM sig_rows x
    GROUP BY x.asset_id
){overlay}"""


CARD_COLUMNS = f"""
a.id, a.code::text AS code, a.name, a.name_ar, a.asset_type, a.criticality, a.expected_interval_s,
a.site_id, s.name AS site_name, s.name_ar AS site_name_ar,
a.unit_id, u.name AS unit_name, u.name_ar AS unit_name_ar,
h.time AS health_time, h.health_score, h.failure_probability, h.source AS health_source,
{EFFECTIVE_STATUS} AS status, {STALE} AS health_stale,
coalesce(sig.n_signals, 0) AS n_signals, coalesce(sig.n_with_data, 0) AS n_with_data,
coalesce(sig.n_fresh, 0) AS n_fresh, sig.newest, sig.fresh_until, sig.all_stale_at, sig.signals,
now() AS read_at
"""

CARDS_FROM = """
targets a
JOIN sites s ON s.tenant_id = a.tenant_id AND s.id = a.site_id
LEFT JOIN units u ON u.tenant_id = a.tenant_id AND u.id = a.unit_id
LEFT JOIN LATERAL (
    SELECT * FROM asset_health_latest WHERE tenant_id = a.tenant_id AND asset_id = a.id OFFSET 0
) h ON true
LEFT JOIN sig ON sig.asset_id = a.id
"""

# Grid order: by site, then unit (assets outside a unit last), then name. It follows the
# assets (tenant_id, site_id, unit_id) index, so a page reads little more than its own rows.
GRID_ORDER = "a.site_id, a.unit_id, a.name, a.id"
GRID_FILTERS = {
    "site_id": "a.site_id = %(site_id)s",
    "unit_id": "a.unit_id = %(unit_id)s",
    "q": "(a.name ILIKE %(q)s OR a.code ILIKE %(q)s OR a.name_ar ILIKE %(q)s)",
}
_PAGE = "LIMIT %(limit)s OFFSET %(offset)s"


@lru_cache(maxsize=32)
def grid_sql(filters: frozenset[str], by_status: bool, count: bool = True) -> str:
    """One page of cards; ``total`` counts every asset the filters select (NULL when ``count`` is
    off: the caller knows it already). Cards without a summary that counts come back
    ``summarized`` false, without their signal figures.

    The text holds only the filters in use (no "param IS NULL OR" switches), so each variant
    is prepared once per connection with a plan that fits it."""
    where = " AND ".join(["a.tenant_id = %(tenant_id)s", *(GRID_FILTERS[f] for f in sorted(filters))])
    if not by_status:
        total = f"(SELECT count(*) FROM assets a WHERE {where})" if count else "NULL::bigint"
        return f"""
WITH {with_cards(f"SELECT a.* FROM assets a WHERE {where} ORDER BY {GRID_ORDER} {_PAGE}", summarized=True)}
SELECT {CARD_COLUMNS}, sig.asset_id IS NOT NULL AS summarized, {total} AS total
FROM {CARDS_FROM}
ORDER BY {GRID_ORDER}
"""
    return f"""
WITH chosen AS (
    SELECT a.*, count(*) OVER () AS total
    FROM assets a
    LEFT JOIN asset_health_latest h ON h.tenant_id = a.tenant_id AND h.asset_id = a.id
    WHERE {where} AND {EFFECTIVE_STATUS} = %(status)s
),
{with_cards(f"SELECT a.* FROM chosen a ORDER BY {GRID_ORDER} {_PAGE}", summarized=True)}
SELECT {CARD_COLUMNS}, sig.asset_id IS NOT NULL AS summarized, a.total
FROM {CARDS_FROM}
ORDER BY {GRID_ORDER}
"""


# Cards of given assets (the twin view of one asset, a reconnecting stream's catch-up).
CARDS_BY_ID = f"""
WITH {with_cards("SELECT a.* FROM assets a WHERE a.tenant_id = %(tenant_id)s AND a.id = ANY(%(ids)s::int8[])")}
SELECT {CARD_COLUMNS}
FROM {CARDS_FROM}
ORDER BY {GRID_ORDER}
"""

_CHANGED = f"""
SELECT a.* FROM assets a
WHERE a.tenant_id = %(tenant_id)s AND a.id IN (
    SELECT m.asset_id FROM {LATEST} l
    JOIN external_signal_mappings m ON m.tenant_id = l.tenant_id AND m.signal_id = l.signal_id
    WHERE l.tenant_id = %(tenant_id)s AND l.ingest_time > %(since)s
    UNION
    SELECT h.asset_id FROM asset_health_latest h WHERE h.tenant_id = %(tenant_id)s AND h.updated_at > %(since)s
    UNION
    SELECT m.asset_id FROM external_signal_mappings m WHERE m.tenant_id = %(tenant_id)s AND m.updated_at > %(since)s
)
AND (%(only)s::int8[] IS NULL OR a.id = ANY(%(only)s::int8[]))
"""

# Cards whose data, score or mapping changed after %(since)s, optionally only of %(only)s.
CHANGED_CARDS = f"""
WITH {with_cards(_CHANGED)}
SELECT {CARD_COLUMNS}
FROM {CARDS_FROM}
"""


# Sites with their assets counted by effective status (filter chips and the site filter).
SITE_OVERVIEW = f"""
WITH per_asset AS (
    SELECT a.site_id, a.unit_id, {EFFECTIVE_STATUS} AS status
    FROM assets a LEFT JOIN asset_health_latest h ON h.tenant_id = a.tenant_id AND h.asset_id = a.id
    WHERE a.tenant_id = %(tenant_id)s
),
unit_counts AS (
    SELECT x.unit_id, count(*)::int AS asset_count FROM per_asset x WHERE x.unit_id IS NOT NULL GROUP BY x.unit_id
),
counts AS (
    SELECT x.site_id, count(*)::int AS asset_count,
           (count(*) FILTER (WHERE x.status = 'normal'))::int AS normal,
           (count(*) FILTER (WHERE x.status = 'warning'))::int AS warning,
           (count(*) FILTER (WHERE x.status = 'critical'))::int AS critical,
           (count(*) FILTER (WHERE x.status = 'nodata'))::int AS nodata
    FROM per_asset x
    GROUP BY x.site_id
)
SELECT s.id, s.code::text AS code, s.name, s.name_ar, coalesce(c.asset_count, 0) AS asset_count,
       coalesce(c.normal, 0) AS normal, coalesce(c.warning, 0) AS warning, coalesce(c.critical, 0) AS critical,
       coalesce(c.nodata, 0) AS nodata,
       (SELECT coalesce(json_agg(json_build_object('id', u.id, 'site_id', u.site_id, 'name', u.name,
                                                   'name_ar', u.name_ar, 'asset_count', coalesce(uc.asset_count, 0))
                                 ORDER BY u.name, u.id), '[]'::json)
        FROM units u LEFT JOIN unit_counts uc ON uc.unit_id = u.id
        WHERE u.tenant_id = s.tenant_id AND u.site_id = s.id) AS units
FROM sites s
LEFT JOIN counts c ON c.site_id = s.id
WHERE s.tenant_id = %(tenant_id)s
ORDER BY s.name, s.id
"""

# Assets by site and effective status (the live status strip of the grid).
STATUS_BY_SITE = f"""
SELECT a.site_id, {EFFECTIVE_STATUS} AS status, count(*)::int AS n
FROM assets a LEFT JOIN asset_health_latest h ON h.tenant_id = a.tenant_id AND h.asset_id = a.id
WHERE a.tenant_id = %(tenant_id)s
GROUP BY 1, 2
"""

# What a new tenant still has to do before the twin shows data.
SETUP = f"""
SELECT EXISTS (SELECT 1 FROM integrations WHERE tenant_id = %(tenant_id)s) AS has_integrations,
       EXISTS (SELECT 1 FROM external_signal_mappings WHERE tenant_id = %(tenant_id)s AND enabled) AS has_mappings,
       EXISTS (SELECT 1 FROM {LATEST} l JOIN external_signal_mappings m
                 ON m.tenant_id = l.tenant_id AND m.signal_id = l.signal_id AND m.enabled
               WHERE l.tenant_id = %(tenant_id)s) AS has_data
"""

HEALTH_HISTORY = """
SELECT time, health_score, failure_probability, status, source
FROM asset_metrics_snapshot
WHERE tenant_id = %(tenant_id)s AND asset_id = %(asset_id)s AND time >= now() - %(span)s::interval
ORDER BY time
"""

HEALTH_BETWEEN = """
SELECT time, health_score, failure_probability, status, source
FROM asset_metrics_snapshot
WHERE tenant_id = %(tenant_id)s AND asset_id = %(asset_id)s AND time >= %(since)s AND time <= %(until)s
ORDER BY time
"""

CONTRIBUTING = """
SELECT contributing FROM asset_health_latest WHERE tenant_id = %(tenant_id)s AND asset_id = %(asset_id)s
"""

NOW = "SELECT now() AS now"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# ----------------------------------------------------------------------------- scoring job (platform scope)

# Reasons to rescore an asset, each a row (tenant, asset, kind, ref, at) so the job can tell a
# reason it already handled from a new one: a mapping changed (m), the asset's signals got data
# (i: one row per asset, at its newest arrival; a busy plant has thousands of streaming signals), a
# sample crossed its age limit (s), an ingest worker's heartbeat lapsed (l) — all after
# %(since)s and by now — and, for an asset whose data comes from a live source and does not
# change, a score about to age out for readers (r: older than one expected interval).
SCORING_CHANGES = f"""
SELECT m.tenant_id, m.asset_id, 'm' AS kind, m.signal_id AS ref, m.updated_at AS at
FROM external_signal_mappings m WHERE m.updated_at > %(since)s
UNION ALL
(SELECT m.tenant_id, m.asset_id, 'i', m.asset_id, max(l.ingest_time)
 FROM {LATEST} l JOIN external_signal_mappings m ON m.tenant_id = l.tenant_id AND m.signal_id = l.signal_id
 WHERE m.enabled AND l.ingest_time > %(since)s
 GROUP BY m.tenant_id, m.asset_id)
UNION ALL
SELECT m.tenant_id, m.asset_id, 's', m.signal_id, {_AGE_LIMIT}
FROM {LATEST} l JOIN external_signal_mappings m ON m.tenant_id = l.tenant_id AND m.signal_id = l.signal_id
WHERE m.enabled AND {_AGE_LIMIT} > %(since)s AND {_AGE_LIMIT} <= now()
UNION ALL
SELECT m.tenant_id, m.asset_id, 'l', m.signal_id, ih.heartbeat_at + {_HEARTBEAT}
FROM ingest_health ih
JOIN signals s ON s.tenant_id = ih.tenant_id AND s.integration_id = ih.integration_id
JOIN external_signal_mappings m ON m.tenant_id = s.tenant_id AND m.signal_id = s.id AND m.enabled
WHERE ih.heartbeat_at + {_HEARTBEAT} > %(since)s AND ih.heartbeat_at + {_HEARTBEAT} <= now()
UNION ALL
SELECT h.tenant_id, h.asset_id, 'r', h.asset_id, h.time
FROM asset_health_latest h JOIN assets a ON a.tenant_id = h.tenant_id AND a.id = h.asset_id
WHERE h.status <> 'nodata' AND h.time + make_interval(secs => a.expected_interval_s) <= now()
  AND EXISTS (SELECT 1 FROM external_signal_mappings m
              JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id
              JOIN ingest_health ih ON ih.tenant_id = s.tenant_id AND ih.integration_id = s.integration_id
              WHERE m.tenant_id = h.tenant_id AND m.asset_id = h.asset_id AND m.enabled
                AND ih.connected AND ih.heartbeat_at > h.time AND ih.heartbeat_at > now() - {_HEARTBEAT})
"""

_TARGETS = "SELECT * FROM unnest(%(tenants)s::uuid[], %(assets)s::int8[]) AS t(tenant_id, asset_id)"

SCORING_SIGNALS = f"""
WITH target AS ({_TARGETS})
SELECT m.tenant_id, m.asset_id, m.id AS mapping_id, m.signal_id, s.name, s.integration_id, m.metric_role,
       coalesce(m.unit, s.eng_unit) AS unit, m.scale, m."offset", m.warn_low, m.warn_high, m.crit_low, m.crit_high,
       m.expected_interval_s, m.updated_at,
       l.time, l.value, l.quality, l.ingest_time, ih.heartbeat_at AS source_seen,
       CASE WHEN ih.integration_id IS NULL THEN NULL ELSE coalesce(ih.connected, false) END AS source_connected
FROM target t
JOIN external_signal_mappings m ON m.tenant_id = t.tenant_id AND m.asset_id = t.asset_id AND m.enabled
JOIN signals s ON s.tenant_id = m.tenant_id AND s.id = m.signal_id
LEFT JOIN {LATEST} l ON l.tenant_id = m.tenant_id AND l.signal_id = m.signal_id
LEFT JOIN ingest_health ih ON ih.tenant_id = s.tenant_id AND ih.integration_id = s.integration_id
ORDER BY m.tenant_id, m.asset_id, m.id
"""

SCORING_PREVIOUS = f"""
WITH target AS ({_TARGETS})
SELECT h.tenant_id, h.asset_id, h.time, h.status, h.health_score, h.failure_probability, h.source
FROM target t JOIN asset_health_latest h ON h.tenant_id = t.tenant_id AND h.asset_id = t.asset_id
"""

# The newest AI score per asset: walks the asset's snapshots back from now (primary key order)
# until an AI row or the age limit, so the job caches the answer for a while.
SCORING_AI = f"""
WITH target AS ({_TARGETS})
SELECT t.tenant_id, t.asset_id, ai.time, ai.health_score, ai.failure_probability, ai.status
FROM target t
CROSS JOIN LATERAL (
    SELECT x.time, x.health_score, x.failure_probability, x.status FROM asset_metrics_snapshot x
    WHERE x.tenant_id = t.tenant_id AND x.asset_id = t.asset_id AND x.source = 'ai'
      AND x.time > now() - make_interval(secs => {AI_MAX_AGE_S})
    ORDER BY x.time DESC LIMIT 1
) ai
"""

# The job's judgement of each asset's signals for the grid (see optria.twin.summary); a slower
# writer's older judgement never replaces a newer one.
UPSERT_SUMMARY = f"""
INSERT INTO asset_signal_summary (tenant_id, asset_id, computed_at, valid_until, {", ".join(SUMMARY_FIGURES)},
                                  sources, live_sources, shown)
VALUES (%(tenant_id)s, %(asset_id)s, %(computed_at)s, %(valid_until)s,
        {", ".join(f"%({c})s" for c in SUMMARY_FIGURES)}, %(sources)s, %(live_sources)s, %(shown)s)
ON CONFLICT (tenant_id, asset_id) DO UPDATE SET
    computed_at = EXCLUDED.computed_at, valid_until = EXCLUDED.valid_until,
    {", ".join(f"{c} = EXCLUDED.{c}" for c in SUMMARY_FIGURES)},
    sources = EXCLUDED.sources, live_sources = EXCLUDED.live_sources, shown = EXCLUDED.shown
WHERE asset_signal_summary.computed_at <= EXCLUDED.computed_at
"""

NOTIFY_LIVE = "SELECT pg_notify('optria_live', %(payload)s)"


async def grid(conn: Conn, tenant_id: UUID, *, site_id: int | None, unit_id: int | None, status: str | None,
               q: str | None, page: int, page_size: int, top: int,
               known_total: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """One page of cards and how many the filters select (``known_total`` when the caller has it).

    A card's signal figures come from its asset's summary while that counts, else from its signals."""
    params = {"tenant_id": tenant_id, "site_id": site_id, "unit_id": unit_id, "status": status, "q": q,
              "limit": page_size, "offset": (page - 1) * page_size, "top": top, "detail": []}
    used = frozenset(k for k in GRID_FILTERS if params[k] is not None)
    rows = await fetch_all(conn, grid_sql(used, status is not None, known_total is None), params)
    total = known_total if known_total is not None else int(rows[0]["total"]) if rows else 0
    missing = [r["id"] for r in rows if not r["summarized"]]
    if missing:   # the job has not judged these (or what it judged no longer holds): from their signals
        exact = {r["id"]: r for r in await cards_by_id(conn, tenant_id, missing, top=top)}
        rows = [exact.get(r["id"], r) for r in rows]
    return rows, total


async def cards_by_id(conn: Conn, tenant_id: UUID, ids: list[int], *, top: int,
                      detail: list[int] | None = None) -> list[dict[str, Any]]:
    return await fetch_all(conn, CARDS_BY_ID, {"tenant_id": tenant_id, "ids": ids, "top": top, "detail": detail or []})


async def changed_cards(conn: Conn, tenant_id: UUID, since: datetime, *, top: int, only: list[int] | None,
                        detail: list[int]) -> tuple[datetime, list[dict[str, Any]]]:
    """(database time of the read, cards changed after ``since``)."""
    now = (await (await conn.execute(NOW)).fetchone())["now"]  # type: ignore[index]
    rows = await fetch_all(conn, CHANGED_CARDS, {"tenant_id": tenant_id, "since": since, "top": top, "only": only,
                                                 "detail": detail}, prepare=False)
    return now, rows


async def site_overview(conn: Conn, tenant_id: UUID) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(sites with their asset counts by effective status, units of all sites)."""
    sites = await fetch_all(conn, SITE_OVERVIEW, {"tenant_id": tenant_id})
    return sites, [u for s in sites for u in s["units"]]


async def status_by_site(conn: Conn, tenant_id: UUID) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for r in await fetch_all(conn, STATUS_BY_SITE, {"tenant_id": tenant_id}):
        out.setdefault(r["site_id"], {})[r["status"]] = r["n"]
    return out


async def setup_state(conn: Conn, tenant_id: UUID) -> dict[str, bool]:
    rows = await fetch_all(conn, SETUP, {"tenant_id": tenant_id})
    return dict(rows[0])


async def health_history(conn: Conn, tenant_id: UUID, asset_id: int, span: str) -> list[dict[str, Any]]:
    return await fetch_all(conn, HEALTH_HISTORY, {"tenant_id": tenant_id, "asset_id": asset_id, "span": span})


async def health_history_between(conn: Conn, tenant_id: UUID, asset_id: int, since: datetime,
                                 until: datetime) -> list[dict[str, Any]]:
    return await fetch_all(conn, HEALTH_BETWEEN, {"tenant_id": tenant_id, "asset_id": asset_id, "since": since,
                                                  "until": until})


async def contributing(conn: Conn, tenant_id: UUID, asset_id: int) -> list[dict[str, Any]]:
    """Why the asset has its current score (the latest row's findings, worst first)."""
    rows = await fetch_all(conn, CONTRIBUTING, {"tenant_id": tenant_id, "asset_id": asset_id})
    return list(rows[0]["contributing"] or []) if rows else []


async def now(conn: Conn) -> datetime:
    return (await (await conn.execute(NOW)).fetchone())["now"]  # type: ignore[index]


# --- scoring job


def _targets(pairs: list[tuple[UUID, int]]) -> dict[str, Any]:
    return {"tenants": [p[0] for p in pairs], "assets": [p[1] for p in pairs]}


async def scoring_changes(conn: Conn, since: datetime | None) -> list[dict[str, Any]]:
    return await fetch_all(conn, SCORING_CHANGES, {"since": since or EPOCH})


async def scoring_signals(conn: Conn, pairs: list[tuple[UUID, int]]) -> list[dict[str, Any]]:
    return await fetch_all(conn, SCORING_SIGNALS, _targets(pairs))


async def scoring_baselines(conn: Conn, signals: list[tuple[UUID, int]]) -> list[dict[str, Any]]:
    """Drift baselines of the given (tenant, signal) pairs, from the aggregates."""
    return await timeseries.baselines(conn, signals, gap_minutes=BASELINE_GAP_MINUTES, level_minutes=LEVEL_MINUTES)


async def scoring_trends(conn: Conn, signals: list[tuple[UUID, int]]) -> list[dict[str, Any]]:
    """Regression figures of the recent minute means of the given (tenant, signal) pairs (the failure probability)."""
    return await statistics.trend_figures(conn, signals, hours=TREND_HOURS)


async def scoring_previous(conn: Conn, pairs: list[tuple[UUID, int]]) -> list[dict[str, Any]]:
    return await fetch_all(conn, SCORING_PREVIOUS, _targets(pairs))


async def scoring_ai(conn: Conn, pairs: list[tuple[UUID, int]]) -> list[dict[str, Any]]:
    return await fetch_all(conn, SCORING_AI, _targets(pairs))


async def write_health(conn: Conn, latest: list[dict[str, Any]], snapshots: list[dict[str, Any]]) -> None:
    """Upsert the latest rows (never moving back in time) and append the due snapshots."""
    def params(row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "contributing": Jsonb(row["contributing"])}

    async with conn.cursor() as cur:
        if snapshots:
            await cur.executemany(INSERT_HEALTH_SNAPSHOT, [params(r) for r in snapshots])
        if latest:
            await cur.executemany(UPSERT_HEALTH_LATEST, [params(r) for r in latest])


async def write_summaries(conn: Conn, rows: list[dict[str, Any]]) -> None:
    if rows:
        async with conn.cursor() as cur:
            await cur.executemany(UPSERT_SUMMARY, rows)


async def notify_live(conn: Conn, payload: str) -> None:
    await conn.execute(NOTIFY_LIVE, {"payload": payload})
