"""Integrations: create and edit them with sealed secrets, test them, browse their tags.

One place runs a connection test (:func:`run_test`): it opens the secrets, merges the
tenant config with the platform defaults, calls the kind's connector within its timeout,
scrubs any secret from the answer, then records the result on the integration
(``last_test_*``) and in the action log in one transaction. The network call happens
outside any database transaction, so a slow source never holds a connection.

Secrets are sealed with the context ``"{tenant_id}:integration"`` (the ingest supervisor
opens them the same way) and are write-only: a blank password on edit keeps the stored one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg

from optria.connectors import opcua, pi, sql
from optria.connectors.base import BrowseItem, ConnectorError, TestResult
from optria.db import Database
from optria.identity.store import CurrentUser, write_audit
from optria.integrations.messages import action_message
from optria.integrations import kinds, store
from optria.integrations.errors import N_, Conflict, InputError, NotFound, SourceError
from optria.integrations.roles import infer_role
from optria.integrations.models import KIND_LABELS, KINDS
from optria.secretbox import SecretBox, SecretBoxError

log = logging.getLogger("optria.integrations")

NAME_MAX = 120
SQL_DISABLED = N_("SQL sources are disabled on this platform (EXTERNAL_DB_ENABLE is off). Ask the platform "
                  "owner to enable them.")
BROWSE_MAX = 2000
# Source errors of a browse that are the caller's input, not the source's failure.
# Every other failure is the source's (424 Failed Dependency: the request was fine, what it depends on
# failed); a source that cannot be reached at all answers with the code "source_unreachable".
_SOURCE_STATUS = {"invalid_node_id": 422, "node_not_found": 404, "no_endpoint": 422, "invalid_endpoint": 422,
                  "invalid_config": 422, "bad_credentials": 424, "disabled": 409, "bad_request": 422}
UNREACHABLE_CODES = {"connection_failed", "connection_refused", "dns_failure", "timeout", "tls_error"}


@dataclass(frozen=True)
class Actor:
    """Who acts, for the action log and the audit log (a person, or "system" for the seed)."""

    user: CurrentUser | None
    addr: str | None = None

    @property
    def id(self) -> UUID | None:
        return self.user.id if self.user else None

    @property
    def name(self) -> str:
        return self.user.username if self.user else "system"


def secret_context(tenant_id: UUID | str) -> str:
    return f"{tenant_id}:integration"


def pki_dir(settings: Any) -> Path:
    return Path(settings.data_dir) / "pki"


def sql_enabled(settings: Any) -> bool:
    return bool(getattr(settings, "external_db_enable", False))


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every secret string replaced by ``***`` (recursively), before anything is stored or shown."""
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, "***")
        return value
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    return value


def _name(value: Any) -> str:
    name = " ".join(str(value or "").split())
    if not name:
        raise InputError({"name": N_("Enter a name.")})
    if len(name) > NAME_MAX:
        raise InputError({"name": N_("The name is too long (120 characters at most).")})
    return name


def _kind(value: Any) -> str:
    kind = str(value or "").strip().lower()
    if kind not in KINDS:
        raise InputError({"kind": N_("Choose the kind of integration: OPC-UA, PI Web API or SQL.")})
    return kind


async def _check_name(conn: store.Conn, tenant_id: UUID, name: str, integration_id: int | None = None) -> None:
    if await store.name_taken(conn, tenant_id, name, integration_id):
        raise Conflict("name_taken", N_("Another integration of your organization already has this name."),
                       field="name")


# ----------------------------------------------------------------------------- create and edit


async def create_integration(conn: store.Conn, box: SecretBox, settings: Any, tenant_id: UUID, *, kind: str,
                             name: str, config: dict[str, Any] | None, password: str | None = None,
                             enabled: bool = True, actor: Actor) -> int:
    kind, name = _kind(kind), _name(name)
    if kind == "sql" and not sql_enabled(settings):
        raise Conflict("sql_disabled", SQL_DISABLED, field="kind")
    clean, found_password = kinds.clean_config(kind, config)
    await _check_name(conn, tenant_id, name)
    secret = password or found_password
    sealed = box.seal_dict({"password": secret} if secret else {}, context=secret_context(tenant_id))
    try:
        integration_id = await store.insert_integration(conn, tenant_id, kind=kind, name=name, config=clean,
                                                        secrets=sealed, enabled=enabled)
    except psycopg.errors.UniqueViolation:
        raise Conflict("name_taken", N_("Another integration of your organization already has this name."),
                       field="name") from None
    endpoint = kinds.endpoint_info(kind, clean, settings)
    await store.log_action(conn, tenant_id, integration_id, action="create", success=True,
                           message=f"{KIND_LABELS[kind]} integration created", actor_id=actor.id,
                           actor_name=actor.name, details={"endpoint_source": endpoint["source"],
                                                           "msg": action_message("created", kind=KIND_LABELS[kind])})
    await write_audit(conn, tenant_id=tenant_id, actor=actor.user, action="integration.create",
                      target_type="integration", target_id=str(integration_id), target_name=name,
                      details={"kind": kind, "enabled": enabled, "endpoint_source": endpoint["source"]},
                      addr=actor.addr)
    log.info("integrations.created", extra={"tenant_id": str(tenant_id), "integration_id": integration_id,
                                            "kind": kind})
    return integration_id


async def update_integration(conn: store.Conn, box: SecretBox, settings: Any, tenant_id: UUID, integration_id: int,
                             changes: dict[str, Any], *, actor: Actor, replace_config: bool = False) -> None:
    """Apply ``changes`` (name, enabled, demo_stream, config, password, clear_password, kind).

    ``config`` is merged into the stored one key by key (None removes a key) unless
    ``replace_config`` (the edit form sends the whole config).
    """
    row = await store.lock_integration(conn, tenant_id, integration_id)
    if row is None:
        raise NotFound("integration")
    kind = row["kind"]
    if "kind" in changes and str(changes["kind"]).strip().lower() != kind:
        raise InputError({"kind": N_("The kind of an integration cannot change; create a new integration instead.")})
    if kind == "sql" and not sql_enabled(settings):
        raise Conflict("sql_disabled", SQL_DISABLED)
    name = _name(changes["name"]) if "name" in changes else row["name"]
    if name.lower() != row["name"].lower():
        await _check_name(conn, tenant_id, name, integration_id)
    enabled = bool(changes.get("enabled", row["enabled"]))
    demo_stream = bool(changes.get("demo_stream", row["demo_stream"]))
    if demo_stream != row["demo_stream"] and not row["is_demo"]:
        raise InputError({"demo_stream": N_("Only demo integrations can stream simulator data.")})
    config, found_password = dict(row["config"]), None
    if "config" in changes:
        patch = dict(changes["config"] or {})
        config = {} if replace_config else config
        for key, value in patch.items():
            if value is None and not replace_config:
                config.pop(key, None)
            else:
                config[key] = value
        config, found_password = kinds.clean_config(kind, config)
    secrets = dict(row["secrets"])
    new_password = changes.get("password") or found_password
    if changes.get("clear_password"):
        secrets.pop("password", None)
    elif new_password:
        secrets.update(box.seal_dict({"password": new_password}, context=secret_context(tenant_id)))
    await store.update_integration(conn, tenant_id, integration_id, name=name, config=config, secrets=secrets,
                                   enabled=enabled, demo_stream=demo_stream)
    diff = {k for k in set(config) | set(row["config"]) if config.get(k) != row["config"].get(k)}
    diff |= {k for k, v in (("name", name), ("enabled", enabled)) if v != row[k]}
    if secrets.get("password") != row["secrets"].get("password"):
        diff.add("password")  # the name of the field only, never a value
    changed = sorted(diff)
    if demo_stream != row["demo_stream"]:
        action = "demo_stream_on" if demo_stream else "demo_stream_off"
        await store.log_action(conn, tenant_id, integration_id, action=action, success=True,
                               message="Demo stream started" if demo_stream else "Demo stream stopped",
                               actor_id=actor.id, actor_name=actor.name, details={"msg": action_message(action)})
        await write_audit(conn, tenant_id=tenant_id, actor=actor.user, action=f"integration.{action}",
                          target_type="integration", target_id=str(integration_id), target_name=name, addr=actor.addr)
    if changed:
        await store.log_action(conn, tenant_id, integration_id, action="update", success=True,
                               message="Settings changed: " + ", ".join(changed), actor_id=actor.id,
                               actor_name=actor.name,
                               details={"changed": changed, "msg": action_message("settings_changed", fields=changed)})
        await write_audit(conn, tenant_id=tenant_id, actor=actor.user, action="integration.update",
                          target_type="integration", target_id=str(integration_id), target_name=name,
                          details={"changed": changed}, addr=actor.addr)


# ----------------------------------------------------------------------------- using a source


@dataclass(frozen=True)
class Source:
    """An integration ready for a connector call: its merged config (holds the password)."""

    id: int
    kind: str
    name: str
    config: dict[str, Any]
    merged: dict[str, Any]
    secrets: list[str]


async def load_source(db: Database, box: SecretBox, settings: Any, tenant_id: UUID, integration_id: int) -> Source:
    async with db.tenant(tenant_id) as conn:
        row = await store.integration_for_use(conn, tenant_id, integration_id)
    if row is None:
        raise NotFound("integration")
    if row["kind"] == "sql" and not sql_enabled(settings):
        raise Conflict("sql_disabled", SQL_DISABLED)
    try:
        opened = box.open_dict(row["secrets"], context=secret_context(tenant_id))
    except (SecretBoxError, ValueError):
        log.error("integrations.secret_unreadable", extra={
            "tenant_id": str(tenant_id), "integration_id": row["id"], "integration": row["name"],
            "action": "SESSION_SECRET changed: run `optria rotate-secret` with the old secret, or enter the password again"})
        raise Conflict("secret_unreadable", N_("The stored password of this integration cannot be decrypted: the "
                                               "platform secret changed. Ask the platform owner to run optria "
                                               "rotate-secret with the previous secret, or edit the integration "
                                               "and enter the password again.")) from None
    merged = kinds.merged(row["kind"], row["config"], opened, settings)
    secrets = sorted(set(opened.values()) | set(kinds.secret_values(merged)), key=len, reverse=True)
    return Source(row["id"], row["kind"], row["name"], row["config"], merged, secrets)


async def _connector_test(source: Source, settings: Any) -> TestResult:
    if source.kind == "opcua":
        return await opcua.test_connection(source.merged, pki_dir(settings))
    if source.kind == "pi":
        return await pi.test_connection(source.merged)
    return await sql.test_connection(source.merged)


def _timeout(source: Source) -> float:
    try:
        return float(source.merged.get("timeout_s") or 10.0)
    except (TypeError, ValueError):
        return 10.0


async def run_test(db: Database, box: SecretBox, settings: Any, tenant_id: UUID, integration_id: int,
                   actor: Actor) -> dict[str, Any]:
    """Test the connection, record it (last test + action log) and return {success, message, details, tested_at}."""
    try:
        source = await load_source(db, box, settings, tenant_id, integration_id)
    except Conflict as exc:
        if exc.code != "secret_unreadable":
            raise
        result = TestResult(success=False, message=exc.message, details={"reason": "secret_unreadable"})
        source, started = None, time.perf_counter()
    else:
        started = time.perf_counter()
        try:
            # The connectors bound themselves by timeout_s; this outer bound only guards against a bug.
            async with asyncio.timeout(_timeout(source) + 5):
                result = await _connector_test(source, settings)
        except TimeoutError:
            result = TestResult(success=False, message="The test did not finish in time.",
                                details={"reason": "timeout"})
    duration_ms = int((time.perf_counter() - started) * 1000)
    secrets = source.secrets if source else []
    details = scrub(dict(result.details), secrets)
    if source is not None:
        endpoint = kinds.endpoint_info(source.kind, source.config, settings)
        details.update(endpoint_source=endpoint["source"], uses_global_default=endpoint["uses_global_default"],
                       config_sources=kinds.config_sources(source.kind, source.merged))
    message = scrub(result.message, secrets)
    tested_at = datetime.now(timezone.utc)
    async with db.tenant(tenant_id) as conn:
        await store.record_test(conn, tenant_id, integration_id, at=tested_at, success=result.success,
                                message=message, details=details)
        await store.log_action(conn, tenant_id, integration_id, action="test", success=result.success,
                               message=message, duration_ms=duration_ms, actor_id=actor.id, actor_name=actor.name,
                               details={k: details[k] for k in ("reason", "endpoint_host", "endpoint_source",
                                                                "security_policy", "security_mode", "round_trip_ms",
                                                                "product_title", "server_product", "msg")
                                        if k in details})
    log.info("integrations.tested", extra={"tenant_id": str(tenant_id), "integration_id": integration_id,
                                           "success": result.success, "reason": details.get("reason"),
                                           "duration_ms": duration_ms})
    return {"success": result.success, "message": message, "details": details, "tested_at": tested_at}


async def browse(db: Database, box: SecretBox, settings: Any, tenant_id: UUID, integration_id: int, *,
                 node_id: str | None = None, depth: int = 1, q: str | None = None, start: int = 0,
                 count: int = 50) -> dict[str, Any]:
    """One level (or ``depth`` levels) of an OPC-UA address space, one page of PI points, or the
    SQL tags, each item annotated with its mapping (if any) and the role its name suggests."""
    source = await load_source(db, box, settings, tenant_id, integration_id)
    depth, count, start = max(1, min(depth, 5)), max(1, min(count, 500)), max(0, start)
    items = await source_items(source, settings, node_id=node_id, depth=depth, q=q, start=start, count=count)
    async with db.tenant(tenant_id) as conn:
        mapped = await store.mapped_external_ids(conn, tenant_id, integration_id, [i.id for i in items])
    out = [{
        "id": i.id, "name": i.name, "display_name": i.display_name, "path": i.path, "has_children": i.has_children,
        "is_signal": i.is_signal, "data_type": i.data_type, "eng_unit": i.eng_unit, "description": i.description,
        "suggested_role": infer_role(i.name, i.path, i.eng_unit) if i.is_signal else None,
        "mapping_id": mapped[i.id]["mapping_id"] if i.id in mapped else None,
        "mapped_asset_code": mapped[i.id]["asset_code"] if i.id in mapped else None,
    } for i in items]
    paged = source.kind == "pi"
    return {"items": out, "node_id": node_id, "q": q if paged else None, "start": start if paged else 0,
            "count": count if paged else len(out),
            "next_start": start + count if paged and len(out) >= count else None}


async def source_items(source: Source, settings: Any, *, node_id: str | None = None, depth: int = 1,
                       q: str | None = None, start: int = 0, count: int = 50,
                       max_items: int = BROWSE_MAX) -> list[BrowseItem]:
    """The connector's browse for the source's kind, with failures as SourceError (never a 500)."""
    try:
        async with asyncio.timeout(_timeout(source) * 3 + 5):
            if source.kind == "opcua":
                return await opcua.browse(source.merged, pki_dir(settings), node_id=node_id or None, depth=depth,
                                          max_items=max_items)
            if source.kind == "pi":
                return await pi.search_points(source.merged, (q or "*").strip() or "*", start, count)
            return await sql.browse(source.merged, limit=max_items)
    except ConnectorError as exc:
        code = "source_unreachable" if exc.code in UNREACHABLE_CODES else exc.code
        raise SourceError(code, scrub(exc.message, source.secrets), _SOURCE_STATUS.get(exc.code, 424),
                          reason=exc.code) from None
    except TimeoutError:
        raise SourceError("source_unreachable", "The source did not answer in time. Check that it is running and "
                          "reachable from the platform, then try again.", reason="timeout") from None
    except Exception as exc:  # an unexpected connector failure is still the source's, not ours
        log.warning("integrations.browse_failed", extra={"integration_id": source.id, "kind": source.kind,
                                                         "error": type(exc).__name__})
        opc_reason = opcua.classify_error(exc)[1] if source.kind == "opcua" else f"{type(exc).__name__}"
        raise SourceError("source_error", scrub(f"Browsing failed: {opc_reason}", source.secrets)) from None
