"""What every connector returns, so routes and the action log treat OPC-UA, PI and SQL alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class TestResult(msgspec.Struct, kw_only=True):
    """Outcome of a connection test. ``message`` is a short human reason; ``details`` holds
    non-secret facts only (server product/version, policy, namespaces, round-trip ms)."""

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
