"""What the integrations area writes in its action log, as message keys with parameters
(``details["msg"]``), so the Data Sources pages say it in the reader's language
(optria.web.messages renders it; ``message`` keeps the English text for the API).

Connection tests have their own messages, written by the connectors
(optria.connectors.base.TEST_MESSAGES).
"""

from __future__ import annotations

from typing import Any


def N_(text: str) -> str:
    return text


# key -> (English msgid, {parameter: kind})
ACTION_MESSAGES: dict[str, tuple[str, dict[str, str]]] = {
    "created": (N_("%(kind)s integration created"), {"kind": "text"}),
    "created_by_seed": (N_("Demo integration created by the seed"), {}),
    "demo_stream_on": (N_("Demo stream started"), {}),
    "demo_stream_off": (N_("Demo stream stopped"), {}),
    "demo_stream_on_poc": (N_("Demo stream started by the proof of concept"), {}),
    "settings_changed": (N_("Settings changed: %(fields)s"), {"fields": "texts"}),
    "mapping_created": (N_("%(signal)s mapped to %(asset)s as %(role)s"),
                        {"signal": "tag", "asset": "code", "role": "text"}),
    "mapping_changed": (N_("Mapping of %(signal)s changed: %(fields)s"), {"signal": "tag", "fields": "texts"}),
    "mapping_removed": (N_("Mapping of %(signal)s to %(asset)s removed"), {"signal": "tag", "asset": "code"}),
    "mappings_bulk": (N_("%(created)s tags mapped to %(asset)s, %(updated)s re-mapped, %(skipped)s skipped"),
                      {"created": "count", "asset": "code", "updated": "count", "skipped": "count"}),
    "mappings_import": (N_("CSV import: %(created)s created, %(updated)s updated"),
                        {"created": "count", "updated": "count"}),
}


def action_message(key: str, **params: Any) -> dict[str, Any]:
    if key not in ACTION_MESSAGES:
        raise KeyError(key)
    return {"key": key, "params": params}


# Names of the fields a change lists (stored as field names; shown by these labels).
FIELD_LABELS = {
    "name": N_("name"), "enabled": N_("enabled"), "password": N_("password"), "username": N_("user name"),
    "email": N_("email"),
    "endpoint_url": N_("endpoint address"), "base_url": N_("base address"), "dsn": N_("connection string"),
    "security_policy": N_("security policy"), "security_mode": N_("security mode"), "auth_type": N_("sign-in method"),
    "publishing_interval_ms": N_("publishing interval"), "data_server": N_("data server"), "query": N_("query"),
    "tags_query": N_("tags query"), "demo_stream": N_("demo stream"), "asset_id": N_("asset"),
    "metric_role": N_("role"), "unit": N_("unit"), "scale": N_("scale"), "offset": N_("offset"),
    "warn_low": N_("low warning limit"), "warn_high": N_("high warning limit"), "crit_low": N_("low critical limit"),
    "crit_high": N_("high critical limit"), "expected_interval_s": N_("expected interval"),
}


def field_labels(fields: list[str]) -> list[str]:
    """English labels (msgids) of changed fields; an unknown field keeps its name."""
    return [FIELD_LABELS.get(f, f) for f in fields]
