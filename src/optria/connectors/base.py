"""What every connector returns, so routes and the action log treat OPC-UA, PI and SQL alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


def N_(text: str) -> str:
    return text


# What a successful connection test says, as a message key with parameters (``details["msg"]``), so
# pages say it in the reader's language (optria.web.messages renders it); ``message`` keeps the
# English text for the API and the action log. A failure is told by its ``details["reason"]``
# (optria.integrations.models.REASON_LABELS) beside the source's own words.
TEST_MESSAGES: dict[str, tuple[str, dict[str, str]]] = {
    "connected_opcua": (N_("Connected to %(product)s at %(host)s (security %(policy)s / %(mode)s); round trip %(ms)s."),
                        {"product": "name", "host": "code", "policy": "code", "mode": "code", "ms": "millis"}),
    "connected_pi": (N_("Connected to %(product)s; data server %(server)s."),
                     {"product": "name", "server": "name"}),
    "connected_pi_no_server": (N_("Connected to %(product)s."), {"product": "name"}),
    "connected_sql": (N_("Connected to PostgreSQL %(version)s (read-only)."), {"version": "code"}),
}


def test_message(key: str, **params: Any) -> dict[str, Any]:
    """The stored form of a connection-test message (``key`` in TEST_MESSAGES)."""
    if key not in TEST_MESSAGES:
        raise KeyError(key)
    return {"key": key, "params": params}


class TestResult(msgspec.Struct, kw_only=True):
    """Outcome of a connection test. ``message`` is a short human reason (English); ``details`` holds
    non-secret facts only (server product/version, policy, namespaces, round-trip ms) and, for a
    success, ``msg``: the same message as a key with parameters (``TEST_MESSAGES``)."""

    __test__ = False  # not a pytest class

    success: bool
    message: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)


class BrowseItem(msgspec.Struct, kw_only=True):
    """One entry of a tag picker. ``id`` is the stable identifier (NodeId, PI WebId)."""

    id: str
    name: str
    display_name: str
    path: str = ""
    has_children: bool = False
    is_signal: bool = False
    data_type: str | None = None
    eng_unit: str | None = None
    description: str | None = None


class Sample(msgspec.Struct, kw_only=True):
    """One value read from a source. ``value`` is None when the source sent no usable number."""

    signal_id: str            # external id: NodeId string or PI WebId
    time: datetime            # source timestamp, timezone-aware UTC
    value: float | None
    quality: str = "good"     # good | questionable | substituted | bad
    state: str | None = None  # digital state name or status text
    eng_unit: str | None = None
    error: str | None = None


class ConnectorError(Exception):
    """A failure with a human message that is safe to show (no secrets)."""

    def __init__(self, message: str, *, code: str = "connector_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
