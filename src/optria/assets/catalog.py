"""Creating and editing sites, units and assets: validation, reference checks, audit.

One path for the pages and the JSON API. Each function validates the raw values, checks
that every referenced site/unit lies in the caller's tenant (an id of another tenant is
indistinguishable from one that does not exist), refuses a taken code with
:class:`Conflict`, and writes the audit entry in the same transaction as the change.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import psycopg

from optria.assets import store
from optria.assets.store import Conn
from optria.assets.validation import N_, Conflict, InputError, NotFound, asset_values, site_values, unit_values
from optria.identity.store import write_audit

log = logging.getLogger("optria.assets")

SITE_CODE_TAKEN = N_("Another site already uses this code.")
UNIT_CODE_TAKEN = N_("Another unit of this site already uses this code.")
ASSET_CODE_TAKEN = N_("Another asset already uses this code.")


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k, v in after.items() if before.get(k) != v)


async def _audit(conn: Conn, tenant_id: UUID, user: Any, addr: str | None, action: str, target_type: str,
                 target_id: int, target_name: str, details: dict[str, Any]) -> None:
    await write_audit(conn, tenant_id=tenant_id, actor=user, action=action, target_type=target_type,
                      target_id=str(target_id), target_name=target_name, details=details, addr=addr)


# ----------------------------------------------------------------------------- sites


async def create_site(conn: Conn, tenant_id: UUID, raw: dict[str, Any], user: Any, addr: str | None) -> int:
    values = site_values(raw)
    if await store.site_code_taken(conn, tenant_id, values["code"]):
        raise Conflict("code_taken", SITE_CODE_TAKEN, field="code")
    try:
        site_id = await store.insert_site(conn, tenant_id, values)
    except psycopg.errors.UniqueViolation:
        raise Conflict("code_taken", SITE_CODE_TAKEN, field="code") from None
    await _audit(conn, tenant_id, user, addr, "site.create", "site", site_id, values["code"], {"name": values["name"]})
    log.info("assets.site_created", extra={"tenant_id": str(tenant_id), "site_id": site_id})
    return site_id


async def update_site(conn: Conn, tenant_id: UUID, site_id: int, raw: dict[str, Any], user: Any, addr: str | None) -> None:
    before = await store.get_site(conn, tenant_id, site_id)
    if before is None:
        raise NotFound("site")
    values = site_values(raw)
    if await store.site_code_taken(conn, tenant_id, values["code"], site_id):
        raise Conflict("code_taken", SITE_CODE_TAKEN, field="code")
    try:
        await store.update_site(conn, tenant_id, site_id, values)
    except psycopg.errors.UniqueViolation:
        raise Conflict("code_taken", SITE_CODE_TAKEN, field="code") from None
    await _audit(conn, tenant_id, user, addr, "site.update", "site", site_id, values["code"],
                 {"changed": _changed(before, values)})


# ----------------------------------------------------------------------------- units


async def _site_or_input_error(conn: Conn, tenant_id: UUID, site_id: int) -> dict[str, Any]:
    site = await store.get_site(conn, tenant_id, site_id)
    if site is None:
        raise InputError({"site_id": N_("Choose a site from the list.")})
    return site


async def create_unit(conn: Conn, tenant_id: UUID, raw: dict[str, Any], user: Any, addr: str | None) -> int:
    values = unit_values(raw)
    await _site_or_input_error(conn, tenant_id, values["site_id"])
    if await store.unit_code_taken(conn, tenant_id, values["site_id"], values["code"]):
        raise Conflict("code_taken", UNIT_CODE_TAKEN, field="code")
    try:
        unit_id = await store.insert_unit(conn, tenant_id, values)
    except psycopg.errors.UniqueViolation:
        raise Conflict("code_taken", UNIT_CODE_TAKEN, field="code") from None
    await _audit(conn, tenant_id, user, addr, "unit.create", "unit", unit_id, values["code"],
                 {"name": values["name"], "site_id": values["site_id"]})
    return unit_id


async def update_unit(conn: Conn, tenant_id: UUID, unit_id: int, raw: dict[str, Any], user: Any, addr: str | None) -> None:
    before = await store.get_unit(conn, tenant_id, unit_id)
    if before is None:
        raise NotFound("unit")
    values = unit_values(raw)
    await _site_or_input_error(conn, tenant_id, values["site_id"])
    if values["site_id"] != before["site_id"] and await store.unit_has_assets(conn, tenant_id, unit_id):
        raise Conflict("unit_has_assets", N_(
            "This unit has assets; move them to another unit before moving the unit to another site."), field="site_id")
    if await store.unit_code_taken(conn, tenant_id, values["site_id"], values["code"], unit_id):
        raise Conflict("code_taken", UNIT_CODE_TAKEN, field="code")
    try:
        await store.update_unit(conn, tenant_id, unit_id, values)
    except psycopg.errors.UniqueViolation:
        raise Conflict("code_taken", UNIT_CODE_TAKEN, field="code") from None
    await _audit(conn, tenant_id, user, addr, "unit.update", "unit", unit_id, values["code"],
                 {"changed": _changed(before, values)})


# ----------------------------------------------------------------------------- assets


async def _check_placement(conn: Conn, tenant_id: UUID, values: dict[str, Any]) -> None:
    await _site_or_input_error(conn, tenant_id, values["site_id"])
    if values["unit_id"] is not None:
        unit = await store.get_unit(conn, tenant_id, values["unit_id"])
        if unit is None:
            raise InputError({"unit_id": N_("Choose a unit from the list.")})
        if unit["site_id"] != values["site_id"]:
            raise InputError({"unit_id": N_("The unit must belong to the chosen site.")})


async def create_asset(conn: Conn, tenant_id: UUID, raw: dict[str, Any], user: Any, addr: str | None) -> int:
    values = asset_values(raw)
    await _check_placement(conn, tenant_id, values)
    if await store.asset_code_taken(conn, tenant_id, values["code"]):
        raise Conflict("code_taken", ASSET_CODE_TAKEN, field="code")
    try:
        asset_id = await store.insert_asset(conn, tenant_id, values, user.id if user else None)
    except psycopg.errors.UniqueViolation:
        raise Conflict("code_taken", ASSET_CODE_TAKEN, field="code") from None
    await _audit(conn, tenant_id, user, addr, "asset.create", "asset", asset_id, values["code"],
                 {"name": values["name"], "site_id": values["site_id"], "unit_id": values["unit_id"]})
    log.info("assets.asset_created", extra={"tenant_id": str(tenant_id), "asset_id": asset_id})
    return asset_id


async def update_asset(conn: Conn, tenant_id: UUID, asset_id: int, raw: dict[str, Any], user: Any, addr: str | None,
                       *, partial: bool = False) -> None:
    """Replace the asset's editable fields with ``raw``; with ``partial`` only the keys given change."""
    before = await store.lock_asset(conn, tenant_id, asset_id)
    if before is None:
        raise NotFound("asset")
    merged = {**before, **raw} if partial else raw
    if partial and "site_id" in raw and "unit_id" not in raw and raw["site_id"] != before["site_id"]:
        merged["unit_id"] = None  # the old unit belongs to the old site
    values = asset_values(merged)
    await _check_placement(conn, tenant_id, values)
    if await store.asset_code_taken(conn, tenant_id, values["code"], asset_id):
        raise Conflict("code_taken", ASSET_CODE_TAKEN, field="code")
    try:
        await store.update_asset(conn, tenant_id, asset_id, values)
    except psycopg.errors.UniqueViolation:
        raise Conflict("code_taken", ASSET_CODE_TAKEN, field="code") from None
    await _audit(conn, tenant_id, user, addr, "asset.update", "asset", asset_id, values["code"],
                 {"changed": _changed(before, values)})
