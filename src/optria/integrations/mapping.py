"""Signal → asset mappings: validation, create/edit/delete, and bulk mapping of many tags to one asset.

Every function runs inside the caller's tenant transaction: a signal, its mapping, the
action-log row and the audit entry commit together or not at all. An asset or signal
that is not in the tenant (or not in this integration) is reported exactly like one that
does not exist, and nothing is written.
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from asyncua import ua

from optria.identity.store import write_audit
from optria.integrations import store
from optria.integrations.errors import N_, Conflict, InputError, NotFound
from optria.integrations.messages import action_message
from optria.integrations.models import ROLE_LABELS, ROLES
from optria.integrations.roles import infer_role
from optria.integrations.service import Actor

UNIT_MAX = 40
INTERVAL_MAX_S = 86_400
EXTERNAL_ID_MAX = 1000
BULK_MAX = 5000
LIMITS = ("warn_low", "warn_high", "crit_low", "crit_high")
DEFAULTS: dict[str, Any] = {"unit": None, "scale": 1.0, "offset": 0.0, "warn_low": None, "warn_high": None,
                            "crit_low": None, "crit_high": None, "expected_interval_s": 60, "enabled": True}


def _number(value: Any, field: str, errors: dict[str, str], *, required: bool = False) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[field] = N_("Enter a number.")
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        errors[field] = N_("Enter a number.")
        return None
    if not math.isfinite(number):
        errors[field] = N_("Enter a finite number.")
        return None
    return number


def _flag(value: Any, errors: dict[str, str]) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in ("", "true", "1", "yes", "on", "y"):
        return True
    if text in ("false", "0", "no", "off", "n"):
        return False
    errors["enabled"] = N_("Enter true or false.")
    return True


def role_value(value: Any, errors: dict[str, str]) -> str | None:
    role = str(value or "").strip().lower()
    if role not in ROLES:
        errors["metric_role"] = N_("Unknown role. Use one of: vibration, temperature, pressure, flow, power, "
                                   "running, level, speed, current, other.")
        return None
    return role


def mapping_values(raw: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Clean mapping values from form strings, CSV cells or JSON: ``raw`` over ``base`` (the current
    mapping when editing, defaults otherwise). Raises InputError naming each bad field."""
    merged = {**DEFAULTS, **(base or {}), **raw}
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"asset_id": merged.get("asset_id")}
    values["metric_role"] = role_value(merged.get("metric_role"), errors)
    unit = merged.get("unit")
    unit = str(unit).strip() if unit is not None else None
    if unit and len(unit) > UNIT_MAX:
        errors["unit"] = N_("The unit is too long (40 characters at most).")
    values["unit"] = unit or None
    scale = _number(merged.get("scale"), "scale", errors)
    if scale == 0:
        errors["scale"] = N_("Scale must not be zero.")
    values["scale"] = 1.0 if scale is None else scale
    offset = _number(merged.get("offset"), "offset", errors)
    values["offset"] = 0.0 if offset is None else offset
    for field in LIMITS:
        values[field] = _number(merged.get(field), field, errors)
    interval = _number(merged.get("expected_interval_s"), "expected_interval_s", errors)
    if interval is not None and (interval != int(interval) or not 1 <= interval <= INTERVAL_MAX_S):
        errors["expected_interval_s"] = N_("The expected interval is a whole number of seconds from 1 to 86400.")
    values["expected_interval_s"] = int(interval) if interval is not None and not errors.get(
        "expected_interval_s") else 60
    values["enabled"] = _flag(merged.get("enabled"), errors)
    _check_limits(values, errors)
    if errors:
        raise InputError(errors)
    return values


def _check_limits(v: dict[str, Any], errors: dict[str, str]) -> None:
    def below(a: str, b: str) -> bool:
        return v[a] is not None and v[b] is not None and v[a] > v[b]

    if below("warn_low", "warn_high"):
        errors["warn_low"] = N_("The low warning limit must not be above the high warning limit.")
    if below("crit_low", "crit_high"):
        errors["crit_low"] = N_("The low critical limit must not be above the high critical limit.")
    if below("warn_high", "crit_high"):
        errors["crit_high"] = N_("The high critical limit must not be below the high warning limit.")
    if below("crit_low", "warn_low"):
        errors["crit_low"] = N_("The low critical limit must not be above the low warning limit.")


def external_id_value(kind: str, value: Any) -> str:
    """A clean external id; for OPC-UA it must be a NodeId the ingest worker can subscribe to."""
    text = str(value or "").strip()
    if not text:
        raise InputError({"external_id": N_("Enter the tag's id (NodeId, PI WebId or SQL tag).")})
    if len(text) > EXTERNAL_ID_MAX:
        raise InputError({"external_id": N_("The tag id is too long.")})
    if kind == "opcua":
        try:
            ua.NodeId.from_string(text)
        except Exception:
            raise InputError({"external_id": N_("Not a valid OPC-UA NodeId (expected e.g. ns=2;s=Plant.Pump.Flow).")}) \
                from None
    return text


def name_of(external_id: str) -> str:
    """A readable name for a bare id: the string part of a NodeId, else the id itself."""
    return external_id.split(";s=", 1)[1] if ";s=" in external_id else external_id


async def _asset(conn: store.Conn, tenant_id: UUID, asset_id: Any) -> dict[str, Any]:
    try:
        ident = int(asset_id)
    except (TypeError, ValueError):
        raise InputError({"asset_id": N_("Choose an asset.")}) from None
    row = await store.asset_ref(conn, tenant_id, ident) if 0 < ident < 2**63 else None
    if row is None:
        raise InputError({"asset_id": N_("No asset with this id in your organization.")})
    return row


async def _integration(conn: store.Conn, tenant_id: UUID, integration_id: int) -> dict[str, Any]:
    row = await store.get_integration(conn, tenant_id, integration_id)
    if row is None:
        raise NotFound("integration")
    return row


async def record_change(conn: store.Conn, tenant_id: UUID, integration_id: int, actor: Actor, action: str,
                        message: str, details: dict[str, Any], target: str) -> None:
    """The action-log row (with its message key, ``details["msg"]``) and the audit entry of a mapping
    change (no secrets: ids, codes, counts)."""
    await store.log_action(conn, tenant_id, integration_id, action=action, success=True, message=message,
                           actor_id=actor.id, actor_name=actor.name, details=details)
    await write_audit(conn, tenant_id=tenant_id, actor=actor.user, action=f"integration.{action}",
                      target_type="integration", target_id=str(integration_id), target_name=target,
                      details={k: v for k, v in details.items() if k != "msg"}, addr=actor.addr)


# ----------------------------------------------------------------------------- one mapping


async def create_mapping(conn: store.Conn, tenant_id: UUID, integration_id: int, raw: dict[str, Any],
                         actor: Actor) -> int:
    """Map one tag (``signal_id`` of this integration, or ``external_id`` with optional name/path/unit)."""
    integration = await _integration(conn, tenant_id, integration_id)
    asset = await _asset(conn, tenant_id, raw.get("asset_id"))
    if raw.get("signal_id") is not None:
        signal = await store.signal_of_integration(conn, tenant_id, integration_id, int(raw["signal_id"])) \
            if 0 < int(raw["signal_id"]) < 2**63 else None
        if signal is None:
            raise InputError({"signal_id": N_("No signal with this id in this integration.")})
    else:
        external_id = external_id_value(integration["kind"], raw.get("external_id"))
        name = (raw.get("name") or "").strip() or None
        signal_id = await store.upsert_signal(conn, tenant_id, integration_id, external_id=external_id,
                                              name=name or name_of(external_id), path=raw.get("path") or "",
                                              data_type=raw.get("data_type"), eng_unit=raw.get("eng_unit"))
        signal = await store.signal_of_integration(conn, tenant_id, integration_id, signal_id)
    assert signal is not None
    role = raw.get("metric_role") or infer_role(signal["name"], signal["path"], signal["eng_unit"])
    values = mapping_values({**{k: v for k, v in raw.items() if k in DEFAULTS and v is not None},
                             "asset_id": asset["id"], "metric_role": role,
                             "unit": raw.get("unit") if raw.get("unit") is not None else signal["eng_unit"]})
    existing = await store.mapping_of_signal(conn, tenant_id, signal["id"])
    if existing is not None:
        raise Conflict("already_mapped", N_("This tag is already mapped; edit its mapping instead."),
                       field="external_id")
    mapping_id = await store.insert_mapping(conn, tenant_id, signal["id"], values)
    await record_change(conn, tenant_id, integration_id, actor, "mapping_create",
                  f"{signal['name']} mapped to {asset['code']} as {values['metric_role']}",
                  {"external_id": signal["external_id"], "asset_code": asset["code"], "role": values["metric_role"],
                   "msg": action_message("mapping_created", signal=signal["name"], asset=asset["code"],
                                         role=ROLE_LABELS.get(values["metric_role"], "Other"))},
                  integration["name"])
    return mapping_id


async def update_mapping(conn: store.Conn, tenant_id: UUID, mapping_id: int, changes: dict[str, Any],
                         actor: Actor) -> None:
    current = await store.get_mapping(conn, tenant_id, mapping_id)
    if current is None:
        raise NotFound("mapping")
    asset = await _asset(conn, tenant_id, changes.get("asset_id", current["asset_id"]))
    base = {k: current[k] for k in DEFAULTS} | {"metric_role": current["metric_role"]}
    values = mapping_values({**changes, "asset_id": asset["id"]}, base)
    await store.update_mapping(conn, tenant_id, mapping_id, values)
    changed = sorted(k for k in values if values[k] != current.get(k))
    integration = await _integration(conn, tenant_id, current["integration_id"])
    await record_change(conn, tenant_id, current["integration_id"], actor, "mapping_update",
                  f"Mapping of {current['signal_name']} changed: {', '.join(changed) or 'nothing'}",
                  {"external_id": current["external_id"], "changed": changed, "asset_code": asset["code"],
                   "msg": action_message("mapping_changed", signal=current["signal_name"], fields=changed)},
                  integration["name"])


async def delete_mapping(conn: store.Conn, tenant_id: UUID, mapping_id: int, actor: Actor) -> int:
    """Remove the mapping (the signal stays, with its history); returns the integration id."""
    current = await store.get_mapping(conn, tenant_id, mapping_id)
    if current is None or not await store.delete_mapping(conn, tenant_id, mapping_id):
        raise NotFound("mapping")
    integration = await _integration(conn, tenant_id, current["integration_id"])
    await record_change(conn, tenant_id, current["integration_id"], actor, "mapping_delete",
                  f"Mapping of {current['signal_name']} to {current['asset_code']} removed",
                  {"external_id": current["external_id"], "asset_code": current["asset_code"],
                   "msg": action_message("mapping_removed", signal=current["signal_name"], asset=current["asset_code"])},
                  integration["name"])
    return int(current["integration_id"])


# ----------------------------------------------------------------------------- many tags to one asset


async def bulk_map(conn: store.Conn, tenant_id: UUID, integration_id: int, items: list[dict[str, Any]], *,
                   asset_id: Any, common: dict[str, Any], role: str | None, replace: bool,
                   actor: Actor) -> dict[str, Any]:
    """Map ``items`` ({external_id, name, path, data_type, eng_unit}) to one asset.

    ``role`` applies to all; without it each tag's role is inferred from its name, and limits
    are refused (one set of limits cannot fit tags of different roles). A tag already mapped is
    skipped unless ``replace``. All or nothing: any invalid id fails the whole request.
    """
    integration = await _integration(conn, tenant_id, integration_id)
    asset = await _asset(conn, tenant_id, asset_id)
    errors: dict[str, str] = {}
    if role is not None:
        role = role_value(role, errors)
    elif any(common.get(k) not in (None, "") for k in LIMITS):
        errors["metric_role"] = N_("Choose one role for all tags to set limits in a bulk mapping.")
    if not items:
        errors["items"] = N_("Choose at least one tag to map.")
    elif len(items) > BULK_MAX:
        errors["items"] = N_("Too many tags in one request (5000 at most).")
    if errors:
        raise InputError(errors)
    mapping_values({**common, "asset_id": asset["id"], "metric_role": role or "other"})  # one check for all
    seen: set[str] = set()
    created = updated = 0
    skipped: list[dict[str, str]] = []
    ids: list[int] = []
    for item in items:
        external_id = external_id_value(integration["kind"], item.get("external_id"))
        if external_id in seen:
            continue
        seen.add(external_id)
        name = (item.get("name") or "").strip() or None
        signal_id = await store.upsert_signal(conn, tenant_id, integration_id, external_id=external_id,
                                              name=name or name_of(external_id), path=item.get("path") or "",
                                              data_type=item.get("data_type"), eng_unit=item.get("eng_unit"))
        item_role = role or infer_role(name or name_of(external_id), item.get("path"), item.get("eng_unit"))
        unit = common.get("unit") if common.get("unit") not in (None, "") else item.get("eng_unit")
        values = mapping_values({**common, "asset_id": asset["id"], "metric_role": item_role, "unit": unit})
        existing = await store.mapping_of_signal(conn, tenant_id, signal_id)
        if existing is None:
            ids.append(await store.insert_mapping(conn, tenant_id, signal_id, values))
            created += 1
        elif replace:
            await store.update_mapping(conn, tenant_id, existing["id"], values)
            ids.append(int(existing["id"]))
            updated += 1
        else:
            skipped.append({"external_id": external_id, "reason": "already mapped"})
    if created or updated:
        await record_change(conn, tenant_id, integration_id, actor, "mappings_bulk",
                      f"{created} tags mapped to {asset['code']}, {updated} re-mapped, {len(skipped)} skipped",
                      {"asset_code": asset["code"], "created": created, "updated": updated, "skipped": len(skipped),
                       "role": role or "inferred",
                       "msg": action_message("mappings_bulk", created=created, asset=asset["code"], updated=updated,
                                             skipped=len(skipped))}, integration["name"])
    return {"created": created, "updated": updated, "skipped": skipped, "mapping_ids": ids}
