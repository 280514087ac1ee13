"""Password login: tenant-aware look-up, throttling, verification, session start.

Every failure returns the same generic message so the form does not reveal whether an
organization or account exists. Throttling counts failures per account and per client
address over a 15-minute window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from optria.identity import passwords
from optria.identity.store import MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDR, IdentityStore

log = logging.getLogger("optria.identity.auth")

GENERIC_FAILURE = "The organization, username or password is incorrect."
THROTTLED = "Too many failed sign-in attempts. Wait 15 minutes and try again."
SSO_ONLY = "This account signs in with your organization's single sign-on."


@dataclass(frozen=True)
class LoginOutcome:
    session: str | None
    error: str | None
    must_change_password: bool = False


async def login(store: IdentityStore, *, organization: str, login_name: str, password: str, addr: str,
                user_agent: str, previous_session: str | None = None) -> LoginOutcome:
    organization = organization.strip().lower()
    login_name = login_name.strip()
    account_key = f"{organization or '-'}:{login_name.lower()}"
    if not login_name or not password:
        return LoginOutcome(None, GENERIC_FAILURE)
    account_failures, addr_failures = await store.recent_failures(account_key, addr)
    if account_failures >= MAX_FAILURES_PER_ACCOUNT or addr_failures >= MAX_FAILURES_PER_ADDR:
        log.warning("auth.throttled", extra={"account": account_key, "client": addr})
        return LoginOutcome(None, THROTTLED)

    tenant_id = None
    if organization:
        tenant = await store.tenant_by_slug(organization)
        if tenant is None or not tenant["is_active"]:
            passwords.verify_password(None, password)  # same cost as a real check
            await store.record_attempt(account_key, addr, False)
            return LoginOutcome(None, GENERIC_FAILURE)
        tenant_id = tenant["id"]

    user = await store.user_for_login(tenant_id, login_name)
    ok = passwords.verify_password(user["password_hash"] if user else None, password)
    if user is not None and ok and user["auth_source"] != "local":
        ok = False
    if not ok or user is None or not user["is_active"]:
        await store.record_attempt(account_key, addr, False)
        log.info("auth.failed", extra={"account": account_key, "client": addr})
        if user is not None and user["auth_source"] == "sso" and user["is_active"]:
            return LoginOutcome(None, SSO_ONLY)
        return LoginOutcome(None, GENERIC_FAILURE)

    rehash = passwords.hash_password(password) if passwords.needs_rehash(user["password_hash"]) else None
    await store.record_attempt(account_key, addr, True)
    session = await store.start_session(user["id"], user["tenant_id"], addr, user_agent, rehash=rehash,
                                        replaces=previous_session)
    log.info("auth.login", extra={"user_id": str(user["id"]), "role": user["role"]})
    full = await store.session_user(session)
    return LoginOutcome(session, None, must_change_password=bool(full and full.must_change_password))


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths are followed after login (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
