"""What the Black Box writes in words: event summaries and incident titles as message keys with
parameters, rendered in the reader's language (optria.web.messages).

A collector stores, beside the English ``summary`` (kept for the API, exports, the event search
and rows written before keys existed), ``payload["msg"] = {"key": ..., "params": {...}}``; the
incident grouping copies its trigger's message to ``incidents.title_key`` / ``title_params``.
Parameters are raw values — numbers as numbers, units as the source spelled them, names as set —
so a page formats each one for its reader: numbers and units per locale, tag names and values
isolated from the sentence around them.

``MESSAGES`` maps each key to its English msgid and the kind of each parameter (see
optria.web.messages for the kinds). Keys are stable; a msgid may be reworded freely.
"""

from __future__ import annotations

from typing import Any


def N_(text: str) -> str:
    return text


# key -> (English msgid, {parameter: kind})
MESSAGES: dict[str, tuple[str, dict[str, str]]] = {
    "limit_crit_high": (N_("%(signal)s at %(value)s, above its critical limit of %(limit)s"),
                        {"signal": "tag", "value": "qty", "limit": "qty"}),
    "limit_crit_low": (N_("%(signal)s at %(value)s, below its critical limit of %(limit)s"),
                       {"signal": "tag", "value": "qty", "limit": "qty"}),
    "limit_warn_high": (N_("%(signal)s at %(value)s, above its warning limit of %(limit)s"),
                        {"signal": "tag", "value": "qty", "limit": "qty"}),
    "limit_warn_low": (N_("%(signal)s at %(value)s, below its warning limit of %(limit)s"),
                       {"signal": "tag", "value": "qty", "limit": "qty"}),
    "limit_return": (N_("%(signal)s back within its limit of %(limit)s, at %(value)s"),
                     {"signal": "tag", "value": "qty", "limit": "qty"}),
    "quality_stale": (N_("%(signal)s: the source was lost; its last value is no longer current"), {"signal": "tag"}),
    "quality_bad": (N_("%(signal)s: the source reports bad data"), {"signal": "tag"}),
    "quality_good": (N_("%(signal)s: good data again"), {"signal": "tag"}),
    "integration_connected": (N_("%(integration)s connected"), {"integration": "name"}),
    "integration_disconnected": (N_("%(integration)s lost its connection"), {"integration": "name"}),
    "integration_error": (N_("%(integration)s reported an error"), {"integration": "name"}),
    "integration_stopped": (N_("%(integration)s stopped"), {"integration": "name"}),
    "integration_backfill_started": (N_("%(integration)s is filling a gap in its data"), {"integration": "name"}),
    "integration_backfilled": (N_("%(integration)s filled the gap in its data"), {"integration": "name"}),
    "optimization_started": (N_("Optimization run #%(run)s started for %(scope)s"), {"run": "id", "scope": "scope"}),
    "optimization_finished": (N_("Optimization run #%(run)s finished for %(scope)s"), {"run": "id", "scope": "scope"}),
    "optimization_failed": (N_("Optimization run #%(run)s failed for %(scope)s"), {"run": "id", "scope": "scope"}),
    "optimization_recommendations": (N_("%(count)s recommendations of run #%(run)s for %(scope)s"),
                                     {"count": "count", "run": "id", "scope": "scope"}),
}

LIMIT_KEYS = {"crit_high": "limit_crit_high", "crit_low": "limit_crit_low", "warn_high": "limit_warn_high",
              "warn_low": "limit_warn_low"}


def message(key: str, **params: Any) -> dict[str, Any]:
    """The stored form: ``{"key": key, "params": params}`` (``key`` must be in MESSAGES)."""
    if key not in MESSAGES:
        raise KeyError(f"unknown Black Box message {key!r}")
    return {"key": key, "params": params}


def limit_message(kind: str, level: str, signal: str, value: float, limit: float, unit: str | None) -> dict[str, Any]:
    """A limit breach (``kind`` "breach", ``level`` crit_high…warn_low) or a return within limits."""
    key = LIMIT_KEYS[level] if kind == "breach" else "limit_return"
    return message(key, signal=signal, value=value, limit=limit, unit=unit)


def scope_params(row: dict[str, Any]) -> dict[str, Any]:
    """The scope of an optimization run as message parameters: its kind and the names of what it covers
    (current names when the row carries them, else the label stored with the run)."""
    return {"kind": row.get("scope"), "code": row.get("scope_code"), "name": row.get("scope_name") or row.get("scope_label"),
            "name_ar": row.get("scope_name_ar")}
