"""Structs of the integrations API and the fixed vocabularies of the area (kinds, roles, labels).

Labels are English msgids, translated where they are shown; ``label_msgids`` lists them for
the catalog checker. Secrets never appear in an output Struct: an integration says only
``has_password``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from msgspec import UNSET, Struct, UnsetType, field

KINDS = ("opcua", "pi", "sql")
KIND_LABELS = {"opcua": "OPC-UA", "pi": "PI Web API", "sql": "SQL historian"}

# The schema's CHECK on external_signal_mappings.metric_role, in display order.
ROLES = ("vibration", "temperature", "pressure", "flow", "power", "running", "level", "speed", "current", "other")
ROLE_LABELS = {
    "vibration": "Vibration", "temperature": "Temperature", "pressure": "Pressure", "flow": "Flow",
    "power": "Power", "running": "Running state", "level": "Level", "speed": "Speed", "current": "Current",
    "other": "Other",
}

# signal_latest.quality (0 good, 1 questionable, 2 substituted, 3 bad, 4 stale)
QUALITY_NAMES = {0: "good", 1: "questionable", 2: "substituted", 3: "bad", 4: "stale"}
QUALITY_LABELS = {"good": "Good", "questionable": "Questionable", "substituted": "Substituted", "bad": "Bad",
                  "stale": "Stale"}

# Why a connection test failed (details["reason"] of the connectors), as a reader would put it.
REASON_LABELS = {
    "no_endpoint": "No address configured",
    "invalid_endpoint": "The address is not valid",
    "invalid_config": "The settings are not valid",
    "dns_failure": "Host name not found",
    "connection_refused": "Connection refused",
    "connection_failed": "Could not connect",
    "timeout": "No answer in time",
    "certificate_rejected": "Certificate not trusted by the server",
    "bad_credentials": "Wrong username or password",
    "unauthorized": "Wrong username or password",
    "security_policy_not_offered": "Security policy not offered by the server",
    "server_error": "The server returned an error",
    "tls_error": "TLS certificate problem",
    "not_pi_web_api": "Not a PI Web API server",
    "not_found": "Address not found on the server",
    "bad_request": "The server refused the request",
    "data_server_not_found": "Data server not found",
    "disabled": "SQL sources are disabled on this platform",
    "bad_query": "The query is not valid",
    "secret_unreadable": "The stored password cannot be read",
}

ACTION_LABELS = {
    "create": "Integration created",
    "update": "Settings changed",
    "test": "Connection test",
    "demo_stream_on": "Demo stream started",
    "demo_stream_off": "Demo stream stopped",
    "mapping_create": "Tag mapped",
    "mapping_update": "Mapping changed",
    "mapping_delete": "Mapping removed",
    "mappings_bulk": "Tags mapped in bulk",
    "mappings_import": "Mappings imported from CSV",
}

SOURCE_LABELS = {"tenant": "This integration", "global": "Global default", "missing": "Not configured"}

# An integration's ingest worker: its state (ingest_health.state), what stands out on its row
# (platform ingestion dashboard, integration cards) and why it refused a value
# (ingest_signal_status.last_reason).
INGEST_STATE_LABELS = {
    "starting": "Starting", "connecting": "Connecting", "streaming": "Streaming", "backfilling": "Backfilling",
    "reconnecting": "Reconnecting", "error": "Error", "stopped": "Stopped", "not_running": "Not running",
}
INGEST_FLAG_LABELS = {"stale": "Stale data", "no_worker": "No ingest worker", "error": "Error",
                      "disabled": "Not streaming", "no_mappings": "No mapped tags"}
REJECT_REASON_LABELS = {
    "unknown_signal": "Not a mapped tag", "source_error": "Error reported by the source",
    "not_a_number": "Not a number", "nan_or_infinite": "Not a finite number", "missing_value": "No value",
    "bad_timestamp": "Unreadable timestamp", "timestamp_out_of_range": "Timestamp out of range",
    "malformed_value": "Malformed value", "monitored_item_failed": "The server refused to monitor the tag",
    "older_than_retention": "Older than the retention period", "write_refused": "Refused by the database",
}


def label_msgids() -> set[str]:
    ids: set[str] = set()
    for table in (KIND_LABELS, ROLE_LABELS, QUALITY_LABELS, REASON_LABELS, ACTION_LABELS, SOURCE_LABELS,
                  INGEST_STATE_LABELS, INGEST_FLAG_LABELS, REJECT_REASON_LABELS):
        ids |= set(table.values())
    return ids


# ----------------------------------------------------------------------------- integrations


class IntegrationIn(Struct, kw_only=True, forbid_unknown_fields=True):
    """A new integration. ``config`` holds the kind's non-secret settings; ``password`` is sealed
    at rest and never returned (a ``password`` inside ``config`` is treated the same way)."""

    kind: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    password: str | None = None
    enabled: bool = True


class IntegrationPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    """Only the fields sent change. ``config`` is merged key by key (a key set to null is removed,
    e.g. ``endpoint_url: null`` returns to the global default); a blank ``password`` keeps the
    stored one, ``clear_password`` removes it."""

    name: str | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    demo_stream: bool | UnsetType = UNSET
    config: dict[str, Any] | UnsetType = UNSET
    password: str | None | UnsetType = UNSET
    clear_password: bool = False
    kind: str | UnsetType = UNSET


class EndpointOut(Struct, kw_only=True):
    display: str | None          # host[:port] (OPC-UA, PI) or host:port/db (SQL); never credentials
    source: str                  # tenant | global | missing
    uses_global_default: bool


class LastTestOut(Struct, kw_only=True):
    at: datetime
    success: bool
    message: str
    details: dict[str, Any]


class IngestOut(Struct, kw_only=True):
    state: str
    connected: bool
    samples_per_s: float | None
    last_sample_time: datetime | None
    last_sample_age_s: float | None
    last_error: str | None
    heartbeat_at: datetime | None
    flags: list[str]
    level: str


class IntegrationOut(Struct, kw_only=True):
    id: int
    kind: str
    name: str
    enabled: bool
    is_demo: bool
    demo_stream: bool
    streams: bool                # whether the ingest service runs it (enabled, and streaming if demo)
    config: dict[str, Any]
    has_password: bool
    endpoint: EndpointOut
    last_test: LastTestOut | None
    mapped_signals: int
    ingest: IngestOut
    created_at: datetime
    updated_at: datetime


class IntegrationList(Struct, kw_only=True):
    items: list[IntegrationOut]
    total: int
    page: int
    page_size: int


class TestOut(Struct, kw_only=True):
    __test__ = False  # not a pytest class

    success: bool
    message: str
    details: dict[str, Any]
    tested_at: datetime


class LogEntryOut(Struct, kw_only=True):
    id: int
    action: str
    success: bool
    message: str
    duration_ms: int | None
    actor_name: str
    details: dict[str, Any]
    created_at: datetime


class LogPage(Struct, kw_only=True):
    items: list[LogEntryOut]
    total: int
    page: int
    page_size: int


class BrowseItemOut(Struct, kw_only=True):
    id: str
    name: str
    display_name: str
    path: str
    has_children: bool
    is_signal: bool
    data_type: str | None
    eng_unit: str | None
    description: str | None
    suggested_role: str | None
    mapping_id: int | None
    mapped_asset_code: str | None


class BrowseOut(Struct, kw_only=True):
    items: list[BrowseItemOut]
    node_id: str | None = None
    q: str | None = None
    start: int = 0
    count: int = 0
    next_start: int | None = None


# ----------------------------------------------------------------------------- mappings


class LimitsMixin(Struct, kw_only=True):
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    warn_low: float | None = None
    warn_high: float | None = None
    crit_low: float | None = None
    crit_high: float | None = None
    expected_interval_s: int = 60
    enabled: bool = True


class MappingIn(LimitsMixin, kw_only=True, forbid_unknown_fields=True):
    """Map one tag: an existing ``signal_id`` of this integration, or an ``external_id`` (NodeId,
    WebId, SQL tag) that becomes a signal. ``metric_role`` is inferred from the name when absent."""

    asset_id: int
    external_id: str | None = None
    signal_id: int | None = None
    name: str | None = None
    path: str | None = None
    data_type: str | None = None
    eng_unit: str | None = None
    metric_role: str | None = None


class MappingPatch(Struct, kw_only=True, forbid_unknown_fields=True):
    asset_id: int | UnsetType = UNSET
    metric_role: str | UnsetType = UNSET
    unit: str | None | UnsetType = UNSET
    scale: float | UnsetType = UNSET
    offset: float | UnsetType = UNSET
    warn_low: float | None | UnsetType = UNSET
    warn_high: float | None | UnsetType = UNSET
    crit_low: float | None | UnsetType = UNSET
    crit_high: float | None | UnsetType = UNSET
    expected_interval_s: int | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET

    def provided(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not UNSET}


class BulkItem(Struct, kw_only=True, forbid_unknown_fields=True):
    external_id: str
    name: str | None = None
    path: str | None = None
    data_type: str | None = None
    eng_unit: str | None = None


class BulkIn(LimitsMixin, kw_only=True, forbid_unknown_fields=True):
    """Many tags to one asset: ``items`` (with names from a browse), bare ``external_ids``, every
    signal under an OPC-UA ``folder`` node, or every PI point matching ``name_filter``. Limits
    need an explicit ``metric_role`` (one role for all); without it each tag's role is inferred."""

    asset_id: int
    items: list[BulkItem] = field(default_factory=list)
    external_ids: list[str] = field(default_factory=list)
    folder: str | None = None
    name_filter: str | None = None
    depth: int = 4
    metric_role: str | None = None
    replace: bool = False


class SignalOut(Struct, kw_only=True):
    id: int
    external_id: str
    name: str
    path: str
    data_type: str | None
    eng_unit: str | None


class AssetRef(Struct, kw_only=True):
    id: int
    code: str
    name: str
    name_ar: str | None


class LatestOut(Struct, kw_only=True):
    time: datetime
    value: float | None          # engineering value: raw × scale + offset
    raw_value: float | None
    quality: str


class MappingOut(Struct, kw_only=True):
    id: int
    integration_id: int
    signal: SignalOut
    asset: AssetRef
    metric_role: str
    unit: str | None
    scale: float
    offset: float
    warn_low: float | None
    warn_high: float | None
    crit_low: float | None
    crit_high: float | None
    expected_interval_s: int
    enabled: bool
    latest: LatestOut | None
    created_at: datetime
    updated_at: datetime


class MappingPage(Struct, kw_only=True):
    items: list[MappingOut]
    total: int
    page: int
    page_size: int


class SkippedOut(Struct, kw_only=True):
    external_id: str
    reason: str


class BulkOut(Struct, kw_only=True):
    created: int
    updated: int
    skipped: list[SkippedOut]
    mapping_ids: list[int]


class RejectedRow(Struct, kw_only=True):
    line: int
    external_id: str
    reason: str


class ImportReport(Struct, kw_only=True):
    mode: str                    # preview | apply
    applied: bool
    total_rows: int
    valid_rows: int
    creates: int
    updates: int
    rejected: list[RejectedRow]


class DeletedOut(Struct, kw_only=True):
    deleted: int
