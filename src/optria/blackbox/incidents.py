"""Acting on incidents: acknowledge, resolve with a note.

Each action runs in the caller's tenant transaction with the incident row locked, so two
people acting at once get one success and one conflict. The action is written three times
over, on purpose: the incident's status (who and when), an ``operator_action`` event on the
incident's own timeline, and the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from optria.blackbox import store
from optria.blackbox.events import EventRecord, flood_key
from optria.blackbox.filters import N_
from optria.blackbox.models import NOTE_MAX
from optria.blackbox.recording import record
from optria.blackbox.store import Conn
from optria.identity.store import write_audit


class IncidentNotFound(LookupError):
    pass


class IncidentConflict(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoteError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


ALREADY = {
    ("acknowledge", "acknowledged"): N_("This incident is already acknowledged."),
    ("acknowledge", "resolved"): N_("This incident is already resolved; there is nothing to acknowledge."),
    ("resolve", "resolved"): N_("This incident is already resolved."),
}


def clean_note(note: str | None, *, required: bool) -> str:
    text = (note or "").strip()
    if required and not text:
        raise NoteError(N_("Write what was found or done before resolving the incident."))
    if len(text) > NOTE_MAX:
        raise NoteError(N_("The note is too long: at most 2,000 characters."))
    return text


async def _locked(conn: Conn, tenant_id: UUID, incident_id: int) -> dict[str, Any]:
    row = await store.fetch_one(conn, store.INCIDENT_FOR_UPDATE, {"tenant_id": tenant_id, "incident_id": incident_id})
    if row is None:
        raise IncidentNotFound()
    return row


async def _timeline_action(conn: Conn, tenant_id: UUID, incident: dict[str, Any], source_type: str, user: Any,
                           note: str, at: datetime) -> None:
    asset = await store.fetch_one(conn, store.ASSET, {"tenant_id": tenant_id, "asset_id": incident["asset_id"]})
    event = EventRecord(
        tenant_id=tenant_id, source_system="blackbox", source_type=source_type,
        source_id=f"incident:{incident['id']}:{source_type}", event_time=at, severity="info",
        event_category="operator_action", summary=note or incident["title"],
        payload={"incident_id": incident["id"], "note": note}, asset_id=incident["asset_id"],
        site_id=asset["site_id"] if asset else None, actor=user.username, correlation_id=f"incident:{incident['id']}")
    out = await record(conn, [event])
    for event_id in out.ids or []:
        await conn.execute(store.ATTACH_ACTION, {
            "tenant_id": tenant_id, "incident_id": incident["id"], "event_id": event_id, "event_time": at,
            "flood_key": flood_key("blackbox", source_type, None, None, str(event_id))})


async def acknowledge(conn: Conn, tenant_id: UUID, incident_id: int, user: Any, note: str, addr: str | None) -> None:
    note = clean_note(note, required=False)
    incident = await _locked(conn, tenant_id, incident_id)
    if incident["status"] != "open":
        raise IncidentConflict(ALREADY[("acknowledge", incident["status"])])
    row = await store.fetch_one(conn, store.ACKNOWLEDGE_INCIDENT, {
        "tenant_id": tenant_id, "incident_id": incident_id, "user_id": user.id, "user_name": user.username})
    assert row is not None
    await _timeline_action(conn, tenant_id, incident, "incident_acknowledged", user, note, row["at"])
    await write_audit(conn, tenant_id=tenant_id, actor=user, action="incident.acknowledge", target_type="incident",
                      target_id=str(incident_id), target_name=incident["title"], details={"with_note": bool(note)},
                      addr=addr)


async def resolve(conn: Conn, tenant_id: UUID, incident_id: int, user: Any, note: str, addr: str | None) -> None:
    note = clean_note(note, required=True)
    incident = await _locked(conn, tenant_id, incident_id)
    if incident["status"] == "resolved":
        raise IncidentConflict(ALREADY[("resolve", "resolved")])
    row = await store.fetch_one(conn, store.RESOLVE_INCIDENT, {
        "tenant_id": tenant_id, "incident_id": incident_id, "user_id": user.id, "user_name": user.username,
        "note": note})
    assert row is not None
    await _timeline_action(conn, tenant_id, incident, "incident_resolved", user, note, row["at"])
    await write_audit(conn, tenant_id=tenant_id, actor=user, action="incident.resolve", target_type="incident",
                      target_id=str(incident_id), target_name=incident["title"],
                      details={"previous_status": incident["status"]}, addr=addr)
