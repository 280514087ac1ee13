"""Password login: tenant-aware look-up, throttling, verification, session start.

Every failure returns the same generic message so the form does not reveal whether an
organization or account exists.

Throttling has two parts, over a 15-minute window:

- per account: failures count against the account the typed name resolves to, whether the
  username or the email address was typed (one counter, ``user:<id>``); a name that
  resolves to no account counts against the name as typed. After 5 failures since the
  account's last successful sign-in, further attempts are refused for the window.
- per client address: never a lock-out, since a plant often reaches the service through one
  proxy address. After 10 failures from an address, each attempt from it waits before it
  is checked (0.25 s, doubling per further failure, at most 4 s): password spraying across
  many accounts slows down, while a colleague behind the same proxy still signs in.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from optria.identity import passwords
from optria.identity.store import MAX_FAILURES_PER_ACCOUNT, IdentityStore

log = logging.getLogger("optria.identity.auth")

SESSION_USER_KEY = "sid"   # the session cookie's entry holding the signed-in session's id
GENERIC_FAILURE = "The organization, username or password is incorrect."
THROTTLED = "Too many failed sign-in attempts. Wait 15 minutes and try again."
SSO_ONLY = "This account signs in with your organization's single sign-on."

ADDR_FREE_FAILURES = 10       # failures from one address before its attempts are slowed
ADDR_DELAY_BASE_S = 0.25      # the first delay; doubles with each further failure
ADDR_DELAY_MAX_S = 4.0


@dataclass(frozen=True)
class LoginOutcome:
    session: str | None
    error: str | None
    must_change_password: bool = False


def address_delay(failures: int) -> float:
    """Seconds an attempt from an address with ``failures`` recent failures waits before it is checked."""
    if failures < ADDR_FREE_FAILURES:
        return 0.0
    return min(ADDR_DELAY_MAX_S, ADDR_DELAY_BASE_S * 2 ** min(failures - ADDR_FREE_FAILURES, 16))


async def login(store: IdentityStore, *, organization: str, login_name: str, password: str, addr: str,
                user_agent: str, previous_session: str | None = None) -> LoginOutcome:
    organization = organization.strip().lower()
    login_name = login_name.strip()
    if not login_name or not password:
        return LoginOutcome(None, GENERIC_FAILURE)

    tenant_ok, tenant_id = True, None
    if organization:
        tenant = await store.tenant_by_slug(organization)
        tenant_ok = tenant is not None and tenant["is_active"]
        tenant_id = tenant["id"] if tenant_ok else None
    user = await store.user_for_login(tenant_id, login_name) if tenant_ok else None
    # one counter per account, whatever name or email was typed
    account_key = f"user:{user['id']}" if user else f"name:{organization or '-'}:{login_name.lower()}"

    account_failures, addr_failures = await store.recent_failures(account_key, addr)
    delay = address_delay(addr_failures)
    if delay:
        log.warning("auth.slowed", extra={"client": addr, "delay_s": delay, "address_failures": addr_failures})
        await asyncio.sleep(delay)
    if account_failures >= MAX_FAILURES_PER_ACCOUNT:
        log.warning("auth.throttled", extra={"account": account_key, "client": addr})
        await store.record_attempt(account_key, addr, False)
        return LoginOutcome(None, THROTTLED)

    ok = await asyncio.to_thread(passwords.verify_password, user["password_hash"] if user else None, password)
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
