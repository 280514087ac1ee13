"""Which account a verified OpenID Connect identity signs in as, provisioning it on first sign-in.

The account is found by (tenant, issuer, subject) — for Microsoft Entra ID the directory and
object id (see ``sso.identity_key``) — inside the provider's own tenant, so an identity never
reaches another tenant's account. The email claim is never used to find or link an account:
users can change it, and a matching local account is refused rather than taken over. Email
domains restrict only just-in-time provisioning. The role of a new account comes from the
provider's claim → role mapping, else its default role; ``platform_owner`` is never one of them.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg

from optria.db import Database
from optria.identity import users_store as q
from optria.identity.rbac import TENANT_ROLES
from optria.identity.sso import SignInError, identity_key
from optria.identity.store import write_audit
from optria.identity.users import EMAIL_RE

log = logging.getLogger("optria.identity.sso")

ROLE_ORDER = tuple(r.value for r in TENANT_ROLES)  # most to least privileged

M_DISABLED = "Your account is disabled. Ask your organization's administrator to enable it."
M_DOMAIN = "Your email domain is not allowed to sign in to this organization. Ask your administrator."
M_NO_EMAIL = ("The identity provider did not share a verified email address, so no account could be created. "
              "Ask your administrator.")
M_EMAIL_IN_USE = ("An account with your email address already exists in this organization and is not linked to this "
                  "sign-in. Ask your administrator.")
MESSAGES = (M_DISABLED, M_DOMAIN, M_NO_EMAIL, M_EMAIL_IN_USE)


class AccountRefused(SignInError):
    """A verified identity that may not sign in here (disabled, domain not allowed, email of another account)."""


@dataclass(frozen=True)
class SsoAccount:
    id: Any
    tenant_id: Any
    username: str
    role: str
    created: bool


def verified_email(claims: dict[str, Any]) -> str | None:
    """An email address the provider vouches for, or None.

    Standard providers: ``email`` unless ``email_verified`` is false. Microsoft Entra ID (a ``tid``
    claim): its ``email`` is a mutable directory attribute and is trusted only with ``xms_edov``
    (domain owner verified); otherwise the UPN in ``preferred_username``/``upn``, whose domain the
    directory has verified, is used.
    """
    if isinstance(claims.get("tid"), str):
        keys = (["email"] if claims.get("xms_edov") is True else []) + ["preferred_username", "upn"]
    else:
        keys = ["email"] if claims.get("email_verified") is not False else []
    for key in keys:
        value = claims.get(key)
        if isinstance(value, str) and len(value) <= 254 and EMAIL_RE.match(value.strip()):
            return value.strip()
    return None


def role_for(provider: dict[str, Any], claims: dict[str, Any]) -> str:
    """The most privileged tenant role the mapping grants, else the provider's default role."""
    mapping = provider.get("role_mapping") or {}
    claim, table = mapping.get("claim"), mapping.get("map") or {}
    raw = claims.get(claim) if claim else None
    values = [raw] if isinstance(raw, str) else [v for v in raw if isinstance(v, str)] if isinstance(raw, list) else []
    granted = {table[v] for v in values if v in table}
    for role in ROLE_ORDER:
        if role in granted:
            return role
    return provider["default_role"] if provider.get("default_role") in ROLE_ORDER else "viewer"


def username_base(claims: dict[str, Any], email: str) -> str:
    source = email.split("@", 1)[0]
    preferred = claims.get("preferred_username")
    if isinstance(preferred, str) and preferred.strip():
        source = preferred.split("@", 1)[0]
    base = re.sub(r"[^A-Za-z0-9._-]+", "", source).strip("._-")[:56]
    return base if len(base) >= 2 else f"user{base}"


async def _free_username(conn, tenant_id, base: str) -> str:
    if not await q.username_exists(conn, tenant_id, base):
        return base
    for n in range(2, 20):
        candidate = f"{base}-{n}"
        if not await q.username_exists(conn, tenant_id, candidate):
            return candidate
    return f"{base}-{secrets.token_hex(3)}"


async def sign_in(db: Database, provider: dict[str, Any], claims: dict[str, Any]) -> SsoAccount:
    """The account for these verified claims (created on first sign-in); raises AccountRefused."""
    tenant_id = provider["tenant_id"]
    issuer, subject = identity_key(claims)
    for attempt in (0, 1):
        try:
            async with db.tenant(tenant_id) as conn:
                found = await q.find_external_user(conn, tenant_id, issuer, subject)
                if found is not None:
                    if not found["is_active"]:
                        raise AccountRefused(M_DISABLED, "account disabled")
                    await _refresh_profile(conn, provider, found, claims)
                    return SsoAccount(found["id"], tenant_id, found["username"], found["role"], False)
                return await _provision(conn, provider, claims, issuer, subject)
        except psycopg.errors.UniqueViolation as exc:
            # two first sign-ins of the same identity at once: the second finds the first's account
            if attempt == 0 and (exc.diag.constraint_name or "") == "users_external_identity":
                continue
            if "email" in (exc.diag.constraint_name or ""):
                raise AccountRefused(M_EMAIL_IN_USE, "email taken (race)") from None
            raise
    raise AccountRefused(M_EMAIL_IN_USE, "could not provision")  # pragma: no cover - loop always returns or raises


def display_name_of(claims: dict[str, Any]) -> str | None:
    name = claims.get("name")
    return name.strip()[:100] if isinstance(name, str) and name.strip() else None


async def _refresh_profile(conn, provider: dict[str, Any], found: dict[str, Any], claims: dict[str, Any]) -> None:
    """A later sign-in brings the provider's current name and verified email (people marry, rename
    their mailbox). An email the provider no longer verifies, outside the allowed domains, or held by
    another account of the organization is left as it was; the role is the administrator's and stays."""
    name = display_name_of(claims) or found["display_name"]
    email = found["email"]
    fresh = verified_email(claims)
    domains = provider.get("allowed_email_domains") or []
    if fresh and fresh.lower() != (email or "").lower() and (not domains or fresh.rsplit("@", 1)[1].lower() in domains):
        _, email_taken = await q.taken(conn, provider["tenant_id"], "", fresh)
        if not email_taken:
            email = fresh
    if (name, email) == (found["display_name"], found["email"]):
        return
    await q.update_profile(conn, provider["tenant_id"], found["id"], display_name=name, email=email)
    changed = [k for k, old, new in (("name", found["display_name"], name), ("email", found["email"], email))
               if old != new]
    await write_audit(conn, tenant_id=provider["tenant_id"], actor=None, action="user.sso_profile_refreshed",
                      target_type="user", target_id=str(found["id"]), target_name=found["username"],
                      details={"provider": provider["name"], "changed": changed})


async def _provision(conn, provider: dict[str, Any], claims: dict[str, Any], issuer: str, subject: str) -> SsoAccount:
    tenant_id = provider["tenant_id"]
    email = verified_email(claims)
    domains = provider.get("allowed_email_domains") or []
    if email is None:
        raise AccountRefused(M_DOMAIN if domains else M_NO_EMAIL, "no verified email claim")
    domain = email.rsplit("@", 1)[1].lower()
    if domains and domain not in domains:
        raise AccountRefused(M_DOMAIN, f"domain {domain} not allowed")
    _, email_taken = await q.taken(conn, tenant_id, "", email)
    if email_taken:
        raise AccountRefused(M_EMAIL_IN_USE, "email belongs to an existing account; never linked by email")
    role = role_for(provider, claims)
    username = await _free_username(conn, tenant_id, username_base(claims, email))
    display_name = display_name_of(claims)
    user_id = await q.insert_sso_user(conn, tenant_id=tenant_id, username=username, email=email,
                                      display_name=display_name, role=role, provider_id=provider["id"],
                                      issuer=issuer, subject=subject)
    await write_audit(conn, tenant_id=tenant_id, actor=None, action="user.sso_provisioned", target_type="user",
                      target_id=str(user_id), target_name=username,
                      details={"provider": provider["name"], "role": role})
    log.info("sso.provisioned", extra={"tenant_id": str(tenant_id), "user_id": str(user_id), "role": role,
                                       "provider_id": provider["id"]})
    return SsoAccount(user_id, tenant_id, username, role, True)
