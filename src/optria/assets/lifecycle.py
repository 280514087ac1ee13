"""Alert and work-order lifecycles: the allowed transitions, and each change with its history row.

Every function runs inside the caller's tenant transaction and writes the change and its
``alert_history`` / ``work_order_history`` row there, so the Industrial Black Box never
sees one without the other. The row is locked first (``FOR UPDATE``), so two people
clearing the same alert at once get one success and one conflict, not two history rows.

Alerts:      open → acknowledged → cleared, or open → cleared.
Work orders: open → in_progress → closed, or open → closed.
Nothing leaves ``cleared`` / ``closed``: a new problem is a new alert or work order.

The scoring job and rule engines raise alerts through :func:`raise_alert` with an
:meth:`Actor.system` actor and a ``source_ref``; a second raise for the same live
(asset, source, source_ref) returns None instead of duplicating the alert.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from optria.assets import store
from optria.assets.store import Conn
from optria.assets.validation import N_, Conflict, InputError, NotFound

log = logging.getLogger("optria.assets")

# kind → status → the statuses it may move to.
TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
    "alert": {
        "open": frozenset({"acknowledged", "cleared"}),
        "acknowledged": frozenset({"cleared"}),
        "cleared": frozenset(),
    },
    "work_order": {
        "open": frozenset({"in_progress", "closed"}),
        "in_progress": frozenset({"closed"}),
        "closed": frozenset(),
    },
}

# kind → (from, to) → message; the fallback names the item.
_REFUSALS: dict[str, dict[tuple[str, str], str]] = {
    "alert": {
        ("acknowledged", "acknowledged"): N_("This alert is already acknowledged."),
        ("cleared", "acknowledged"): N_("This alert is already cleared; it cannot be acknowledged."),
        ("cleared", "cleared"): N_("This alert is already cleared."),
    },
    "work_order": {
        ("open", "open"): N_("This work order is already open."),
        ("in_progress", "in_progress"): N_("This work order is already in progress."),
        ("in_progress", "open"): N_("A work order in progress cannot go back to open; close it when the work is done."),
        ("closed", "closed"): N_("This work order is already closed."),
        ("closed", "in_progress"): N_("This work order is closed; open a new one for further work."),
        ("closed", "open"): N_("This work order is closed; open a new one for further work."),
    },
}
_REFUSED = {
    "alert": N_("This change is not possible in the alert's current state."),
    "work_order": N_("This change is not possible in the work order's current state."),
}


@dataclass(frozen=True)
class Actor:
    """Who made a change: a signed-in user, or a named system component (user_id None)."""

    user_id: UUID | None
    name: str

    @classmethod
    def of(cls, user: Any) -> "Actor":
        return cls(user_id=user.id, name=user.username)

    @classmethod
    def system(cls, component: str) -> "Actor":
        return cls(user_id=None, name=component)


# ----------------------------------------------------------------------------- alerts


async def raise_alert(conn: Conn, tenant_id: UUID, asset_id: int, values: dict[str, Any], actor: Actor) -> int | None:
    """Create an open alert and its "raised" history row; None when the same live source_ref exists."""
    if await store.asset_exists(conn, tenant_id, asset_id) is None:
        raise NotFound("asset")
    alert_id = await store.insert_alert(conn, tenant_id, asset_id, values, actor.user_id)
    if alert_id is None:
        return None
    await store.insert_item_history(conn, tenant_id, "alert", item_id=alert_id, asset_id=asset_id, action="raised",
                                    from_status=None, to_status="open", actor_id=actor.user_id,
                                    actor_name=actor.name)
    log.info("assets.alert_raised", extra={"tenant_id": str(tenant_id), "asset_id": asset_id, "alert_id": alert_id,
                                           "severity": values["severity"], "source": values["source"]})
    return alert_id


async def _move(conn: Conn, tenant_id: UUID, kind: str, item_id: int, to_status: str, actor: Actor, note: str,
                action: str) -> tuple[int, str]:
    """Lock the alert or work order, check the transition, change it and write its history row.
    Returns (asset id, the status it moved from)."""
    current = await store.lock_item(conn, tenant_id, kind, item_id)
    if current is None:
        raise NotFound(kind)
    from_status = current["status"]
    if to_status not in TRANSITIONS[kind][from_status]:
        raise Conflict("invalid_transition", _REFUSALS[kind].get((from_status, to_status)) or _REFUSED[kind])
    await store.set_item_status(conn, tenant_id, kind, item_id, to_status, actor.user_id)
    await store.insert_item_history(conn, tenant_id, kind, item_id=item_id, asset_id=current["asset_id"],
                                    action=action, from_status=from_status, to_status=to_status,
                                    actor_id=actor.user_id, actor_name=actor.name, note=note)
    return int(current["asset_id"]), from_status


async def _move_alert(conn: Conn, tenant_id: UUID, alert_id: int, to_status: str, actor: Actor, note: str) -> int:
    asset_id, _ = await _move(conn, tenant_id, "alert", alert_id, to_status, actor, note, action=to_status)
    log.info("assets.alert_" + to_status, extra={"tenant_id": str(tenant_id), "alert_id": alert_id})
    return asset_id


async def acknowledge_alert(conn: Conn, tenant_id: UUID, alert_id: int, actor: Actor, note: str = "") -> int:
    """Acknowledge an open alert; returns its asset id."""
    return await _move_alert(conn, tenant_id, alert_id, "acknowledged", actor, note)


async def clear_alert(conn: Conn, tenant_id: UUID, alert_id: int, actor: Actor, note: str = "") -> int:
    """Clear an open or acknowledged alert; returns its asset id."""
    return await _move_alert(conn, tenant_id, alert_id, "cleared", actor, note)


# ----------------------------------------------------------------------------- work orders


async def open_work_order(conn: Conn, tenant_id: UUID, asset_id: int, values: dict[str, Any], actor: Actor) -> int:
    """Create an open work order (optionally for one of the asset's alerts) and its "opened" history row."""
    if await store.asset_exists(conn, tenant_id, asset_id) is None:
        raise NotFound("asset")
    alert_id = values.get("alert_id")
    if alert_id is not None and await store.alert_of_asset(conn, tenant_id, alert_id, asset_id) is None:
        raise InputError({"alert_id": N_("Choose an alert of this asset, or none.")})
    work_order_id = await store.insert_work_order(conn, tenant_id, asset_id, values, actor.user_id)
    await store.insert_item_history(conn, tenant_id, "work_order", item_id=work_order_id, asset_id=asset_id,
                                    action="opened", from_status=None, to_status="open", actor_id=actor.user_id,
                                    actor_name=actor.name)
    log.info("assets.work_order_opened", extra={"tenant_id": str(tenant_id), "asset_id": asset_id,
                                                "work_order_id": work_order_id, "priority": values["priority"]})
    return work_order_id


async def set_work_order_status(conn: Conn, tenant_id: UUID, work_order_id: int, to_status: str, actor: Actor,
                                note: str = "") -> int:
    """Move a work order along its lifecycle; returns its asset id."""
    asset_id, from_status = await _move(conn, tenant_id, "work_order", work_order_id, to_status, actor, note,
                                        action="closed" if to_status == "closed" else "status_changed")
    log.info("assets.work_order_status", extra={"tenant_id": str(tenant_id), "work_order_id": work_order_id,
                                                "from": from_status, "to": to_status})
    return asset_id
