"""A tenant's OpenID Connect identity providers: the admin form's rules, storage and the login page's options.

Saving an enabled provider first fetches its discovery document, so an unreachable or wrong
address is reported on the form and nothing is saved. The client secret is sealed with the
secret box under a context holding the tenant id (a sealed value copied into another
tenant's row does not open) and is never rendered or returned again; leaving the field empty
on the edit form keeps the stored one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from optria.db import Database
from optria.identity import users_store as q
from optria.identity.rbac import TENANT_ROLES
from optria.identity.sso import OidcClient, OidcError, ProviderMetadata
from optria.identity.store import CurrentUser, IdentityStore, write_audit
from optria.identity.users import UserError, invalid, tenant_of
from optria.secretbox import SecretBox, SecretBoxError

log = logging.getLogger("optria.identity.sso")

ROLE_VALUES = tuple(r.value for r in TENANT_ROLES)
DOMAIN_RE = re.compile(r"^(?=.{3,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
DIRECTORY_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CLAIM_RE = re.compile(r"^[A-Za-z0-9_:./-]{1,100}$")

M_NAME = "Give the provider a name of 1 to 100 characters; users see it on the sign-in button."
M_NAME_TAKEN = "Another identity provider of your organization already has this name."
M_URL = "Enter the issuer URL or the discovery URL of the provider (https://...)."
M_CLIENT_ID = "Enter the client id (application id) registered with the provider."
M_SECRET_TOO_LONG = "The client secret can have at most 1000 characters."
M_DOMAINS = "Enter email domains like company.com, separated by commas."
M_DIRECTORIES = "Enter Microsoft Entra directory (tenant) ids separated by commas."
M_DIRECTORIES_REQUIRED = ("This is a multi-tenant Microsoft Entra ID address: list the directory (tenant) ids "
                          "allowed to sign in.")
M_ROLE = "Choose one of the listed roles."
M_CLAIM = "Enter the name of the claim that carries groups or roles, for example groups or roles."
M_MAPPING = "Write one mapping per line as: claim value = role, using the role names listed."
M_MAPPING_NEEDS_CLAIM = "Name the claim that the mapping reads."
M_NOT_FOUND = "This identity provider does not exist in your organization."
MESSAGES = (M_NAME, M_NAME_TAKEN, M_URL, M_CLIENT_ID, M_SECRET_TOO_LONG, M_DOMAINS, M_DIRECTORIES,
            M_DIRECTORIES_REQUIRED, M_ROLE, M_CLAIM, M_MAPPING, M_MAPPING_NEEDS_CLAIM, M_NOT_FOUND)


@dataclass
class ProviderInput:
    name: str = ""
    discovery_url: str = ""
    client_id: str = ""
    client_secret: str = ""          # empty on edit: keep the stored secret
    allowed_email_domains: str = ""  # comma / space / newline separated
    allowed_tenant_ids: str = ""
    default_role: str = "viewer"
    role_claim: str = ""
    role_map: str = ""               # lines "claim value = role"
    enabled: bool = True


def secret_context(tenant_id: UUID | str) -> str:
    return f"identity-provider-client-secret:{tenant_id}"


def split_list(text: str) -> list[str]:
    seen: list[str] = []
    for part in re.split(r"[\s,;]+", text or ""):
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return seen


def parse_role_map(text: str) -> tuple[dict[str, str], bool]:
    """({claim value: role}, ok). A line without "=" or naming an unknown role (platform_owner included) is not ok."""
    mapping: dict[str, str] = {}
    ok = True
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        value, sep, role = line.rpartition("=")
        value, role = value.strip(), role.strip()
        if not sep or not value or role not in ROLE_VALUES:
            ok = False
            continue
        mapping[value] = role
    return mapping, ok


def role_map_text(role_mapping: dict[str, Any] | None) -> tuple[str, str]:
    """(claim, lines) of a stored mapping, for the edit form."""
    role_mapping = role_mapping or {}
    lines = "\n".join(f"{k} = {v}" for k, v in (role_mapping.get("map") or {}).items())
    return str(role_mapping.get("claim") or ""), lines


def validate(data: ProviderInput) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """(errors by field, normalised values for the store)."""
    errors: dict[str, list[str]] = {}
    name = data.name.strip()
    if not 1 <= len(name) <= 100:
        errors["name"] = [M_NAME]
    url = data.discovery_url.strip()
    if not re.match(r"^https?://[^\s/]+", url) or len(url) > 500:
        errors["discovery_url"] = [M_URL]
    client_id = data.client_id.strip()
    if not 1 <= len(client_id) <= 200:
        errors["client_id"] = [M_CLIENT_ID]
    if len(data.client_secret) > 1000:
        errors["client_secret"] = [M_SECRET_TOO_LONG]
    domains = [d.lower().lstrip("@") for d in split_list(data.allowed_email_domains)]
    if any(not DOMAIN_RE.match(d) for d in domains):
        errors["allowed_email_domains"] = [M_DOMAINS]
    directories = split_list(data.allowed_tenant_ids)
    if any(not DIRECTORY_ID_RE.match(d) for d in directories):
        errors["allowed_tenant_ids"] = [M_DIRECTORIES]
    if data.default_role not in ROLE_VALUES:
        errors["default_role"] = [M_ROLE]
    claim = data.role_claim.strip()
    if claim and not CLAIM_RE.match(claim):
        errors["role_claim"] = [M_CLAIM]
    mapping, mapping_ok = parse_role_map(data.role_map)
    if not mapping_ok:
        errors["role_map"] = [M_MAPPING]
    elif mapping and not claim:
        errors["role_claim"] = [M_MAPPING_NEEDS_CLAIM]
    values = {
        "name": name, "discovery_url": url, "client_id": client_id, "allowed_email_domains": domains,
        "allowed_tenant_ids": directories, "default_role": data.default_role, "enabled": data.enabled,
        "role_mapping": {"claim": claim, "map": mapping} if claim and mapping else {},
    }
    return errors, values


async def _discover_for_form(oidc: OidcClient, values: dict[str, Any], errors: dict[str, list[str]]) -> ProviderMetadata | None:
    try:
        meta = await oidc.discover(values["discovery_url"], refresh=True)
    except OidcError as exc:
        log.info("sso.discovery_failed", extra={"url": values["discovery_url"][:200], "reason": exc.reason})
        errors["discovery_url"] = [exc.message]
        return None
    if meta.is_tenant_template and not values["allowed_tenant_ids"]:
        errors["allowed_tenant_ids"] = [M_DIRECTORIES_REQUIRED]
    return meta


async def list_providers(db: Database, actor: CurrentUser, box: SecretBox | None = None) -> list[dict[str, Any]]:
    """The tenant's providers; with ``box``, each says whether its stored client secret still opens
    (``secret_unreadable``: SESSION_SECRET changed and ``optria rotate-secret`` has not run)."""
    tenant_id = tenant_of(actor)
    async with db.tenant(tenant_id) as conn:
        rows = await q.list_providers(conn, tenant_id)
        sealed = await q.sealed_provider_secrets(conn, tenant_id) if box is not None else {}
    for row in rows:
        row["secret_unreadable"] = False
        if row["id"] in sealed and box is not None:
            try:
                box.open(sealed[row["id"]], context=secret_context(tenant_id))
            except SecretBoxError:
                row["secret_unreadable"] = True
                log.error("sso.secret_unreadable", extra={
                    "tenant_id": str(tenant_id), "provider_id": row["id"], "provider": row["name"],
                    "action": "SESSION_SECRET changed: run `optria rotate-secret` with the old secret, or enter "
                              "the client secret again"})
    return rows


async def get_provider(db: Database, actor: CurrentUser, provider_id: int) -> dict[str, Any]:
    tenant_id = tenant_of(actor)
    async with db.tenant(tenant_id) as conn:
        row = await q.get_provider(conn, tenant_id, provider_id)
    if row is None:
        raise UserError(404, "not_found", M_NOT_FOUND)
    row.pop("client_secret_sealed", None)  # never leaves this module for a page or an answer
    return row


async def create_provider(db: Database, oidc: OidcClient, box: SecretBox, actor: CurrentUser, data: ProviderInput, *,
                          addr: str | None) -> int:
    tenant_id = tenant_of(actor)
    errors, values = validate(data)
    meta = None
    if not errors:
        meta = await _discover_for_form(oidc, values, errors)
    if errors:
        raise invalid(errors)
    sealed = box.seal(data.client_secret, context=secret_context(tenant_id)) if data.client_secret else None
    async with db.tenant(tenant_id) as conn:
        if await q.provider_name_taken(conn, tenant_id, values["name"], None):
            raise invalid({"name": [M_NAME_TAKEN]})
        provider_id = await q.insert_provider(conn, {**values, "tenant_id": tenant_id, "client_secret_sealed": sealed,
                                                     "issuer": meta.issuer if meta else None})
        await write_audit(conn, tenant_id=tenant_id, actor=actor, action="identity_provider.created",
                          target_type="identity_provider", target_id=str(provider_id), target_name=values["name"],
                          details=_audit_details(values, secret_set=bool(sealed)), addr=addr)
    log.info("sso.provider_created", extra={"tenant_id": str(tenant_id), "provider_id": provider_id})
    return provider_id


async def update_provider(db: Database, oidc: OidcClient, box: SecretBox, actor: CurrentUser, provider_id: int,
                          data: ProviderInput, *, addr: str | None) -> None:
    """Save the edit form; discovery is tested again when the provider stays enabled."""
    tenant_id = tenant_of(actor)
    await get_provider(db, actor, provider_id)  # 404 before any network call
    errors, values = validate(data)
    meta = None
    if not errors and values["enabled"]:
        meta = await _discover_for_form(oidc, values, errors)
    if errors:
        raise invalid(errors)
    replace = bool(data.client_secret)
    sealed = box.seal(data.client_secret, context=secret_context(tenant_id)) if replace else None
    async with db.tenant(tenant_id) as conn:
        if await q.get_provider(conn, tenant_id, provider_id) is None:
            raise UserError(404, "not_found", M_NOT_FOUND)
        if await q.provider_name_taken(conn, tenant_id, values["name"], provider_id):
            raise invalid({"name": [M_NAME_TAKEN]})
        await q.update_provider(conn, {**values, "tenant_id": tenant_id, "id": provider_id, "replace_secret": replace,
                                       "client_secret_sealed": sealed, "issuer": meta.issuer if meta else None})
        await write_audit(conn, tenant_id=tenant_id, actor=actor, action="identity_provider.updated",
                          target_type="identity_provider", target_id=str(provider_id), target_name=values["name"],
                          details=_audit_details(values, secret_set=replace), addr=addr)


async def test_provider(db: Database, oidc: OidcClient, actor: CurrentUser, provider_id: int) -> ProviderMetadata:
    """Fetch the discovery document and key set now (raises OidcError with a message for the admin)."""
    tenant_id = tenant_of(actor)
    row = await get_provider(db, actor, provider_id)
    meta = await oidc.discover(row["discovery_url"], refresh=True)
    await oidc.signing_keys(meta, refresh=True)
    async with db.tenant(tenant_id) as conn:
        await q.mark_provider_tested(conn, tenant_id, provider_id, meta.issuer)
    return meta


def _audit_details(values: dict[str, Any], *, secret_set: bool) -> dict[str, Any]:
    """What changed, minus anything secret: the secret itself is reduced to "was a new one set"."""
    return {"discovery_url": values["discovery_url"], "client_id": values["client_id"],
            "enabled": values["enabled"], "default_role": values["default_role"],
            "allowed_email_domains": values["allowed_email_domains"],
            "allowed_tenant_ids": values["allowed_tenant_ids"], "role_mapping": values["role_mapping"],
            "client_secret_changed": secret_set}


# -- sign-in side --------------------------------------------------------------------------------

async def login_options(db: Database, identity: IdentityStore, org_slug: str) -> list[dict[str, Any]]:
    """Enabled providers of an active organization, for the "sign in with …" buttons (empty when unknown)."""
    slug = (org_slug or "").strip().lower()
    if not slug or len(slug) > 64:
        return []
    tenant = await identity.tenant_by_slug(slug)
    if tenant is None or not tenant["is_active"]:
        return []
    async with db.tenant(tenant["id"]) as conn:
        return await q.list_enabled_providers(conn, tenant["id"])


async def provider_for_login(db: Database, box: SecretBox, tenant_id: UUID, provider_id: int, *,
                             open_secret: bool = False) -> dict[str, Any] | None:
    """The enabled provider (with its client secret opened when asked), or None.

    Raises ``SecretBoxError`` when the stored secret does not open (rotated SESSION_SECRET).
    """
    async with db.tenant(tenant_id) as conn:
        row = await q.get_provider(conn, tenant_id, provider_id)
    if row is None or not row["enabled"]:
        return None
    sealed = row.pop("client_secret_sealed", None)
    if open_secret:
        row["client_secret"] = box.open(sealed, context=secret_context(tenant_id)) if sealed else None
    return row
