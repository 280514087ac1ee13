"""Writing events: validate, insert idempotently, count what was rejected.

Every path into ``industrial_events`` goes through :func:`record` — the collectors, the
OPC-UA and SQL-source normalizers, the incident actions, and any other area that wants
to put an event on the black box (call it inside your own tenant transaction). A record
that fails validation is not stored; it is counted per tenant, source and reason in
``blackbox_rejections`` and logged, and the rest of the batch goes in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

from optria.blackbox import store
from optria.blackbox.events import EventRecord, MalformedRecord, validate
from optria.blackbox.store import Conn

log = logging.getLogger("optria.blackbox")

CHUNK = 5_000


@dataclass
class Rejected:
    """A source record its normalizer could not turn into an event."""

    tenant_id: UUID
    source_system: str
    error: MalformedRecord


@dataclass
class Outcome:
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    ids: list[int] | None = None


async def record(conn: Conn, items: Iterable[EventRecord | Rejected], *, now: datetime | None = None) -> Outcome:
    now = now or datetime.now(timezone.utc)
    valid: list[EventRecord] = []
    rejects: dict[tuple[UUID, str], dict[str, tuple[int, str]]] = {}

    def reject(tenant_id: UUID, source_system: str, error: MalformedRecord) -> None:
        counts = rejects.setdefault((tenant_id, source_system), {})
        n, _ = counts.get(error.reason, (0, ""))
        counts[error.reason] = (n + 1, error.detail)

    for item in items:
        if isinstance(item, Rejected):
            reject(item.tenant_id, item.source_system, item.error)
            continue
        try:
            valid.append(validate(item, now))
        except MalformedRecord as exc:
            reject(item.tenant_id, item.source_system, exc)
    out = Outcome(ids=[])
    for start in range(0, len(valid), CHUNK):
        chunk = valid[start:start + CHUNK]
        ids = await store.insert_events(conn, chunk)
        out.ids.extend(ids)  # type: ignore[union-attr]
        out.inserted += len(ids)
        out.duplicates += len(chunk) - len(ids)
    for (tenant_id, source_system), counts in rejects.items():
        await store.count_rejections(conn, tenant_id, source_system, counts)
        total = sum(n for n, _ in counts.values())
        out.rejected += total
        log.warning("blackbox.records_rejected", extra={"tenant_id": str(tenant_id), "source_system": source_system,
                                                        "count": total, "reasons": sorted(counts)})
    return out
