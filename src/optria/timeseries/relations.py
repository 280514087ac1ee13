"""The time-series relations other areas' SQL may join, by name (the area owns what they are).

A store that needs latest values beside its own rows (a card grid, a mapping list) composes
its query with these fragments instead of naming the relations, so what each one is in each
storage tier — a table, a view over rollup tables, a view over continuous aggregates, a
tenant view over a hypertable the application role may not read — is decided here and in
this area's SQL only (``tests/unit/test_timeseries_owner.py`` holds the rule).
"""

from __future__ import annotations

LATEST = "signal_latest"   # one row per signal, every tier: (tenant_id, signal_id, time, value, quality, ingest_time)


def latest_join(alias: str, mapping: str, *, kind: str = "LEFT") -> str:
    """``<kind> JOIN`` the latest value of each ``mapping`` row's signal as ``alias``."""
    return (f"{kind} JOIN {LATEST} {alias} ON {alias}.tenant_id = {mapping}.tenant_id "
            f"AND {alias}.signal_id = {mapping}.signal_id")
