"""Sessions that end when they should, and sign-in throttling that holds without locking a plant out."""

from __future__ import annotations

import time

import pytest

from optria.identity import auth
from tests.fix_web import Web, new_web

NEW_PASSWORD = "Fresh-Password-2027"


async def _signed_in(w: Web) -> bool:
    r = await w.get("/account/password")
    return r.status_code == 200


def _live_sessions(owner_conn, user_id) -> int:
    return owner_conn.execute("SELECT count(*) FROM sessions WHERE user_id = %s AND revoked_at IS NULL",
                              [user_id]).fetchone()[0]


async def test_changing_your_password_ends_your_other_sessions_only(app, accounts, owner_conn) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("engineer", tenant)
    async with new_web(app) as here, new_web(app) as laptop, new_web(app) as stolen:
        for w in (here, laptop, stolen):
            await w.login(user)
        assert _live_sessions(owner_conn, user.user_id) == 3
        r = await here.post_form("/account/password", {"current_password": user.password, "new_password": NEW_PASSWORD,
                                                        "confirm_password": NEW_PASSWORD})
        assert r.status_code in (302, 303), r.text[:300]
        assert await _signed_in(here)
        assert not await _signed_in(laptop) and not await _signed_in(stolen)
        assert _live_sessions(owner_conn, user.user_id) == 1
        user.password = NEW_PASSWORD
        await laptop.login(user)  # the new password works everywhere
        assert await _signed_in(laptop)


@pytest.mark.parametrize("change", ["reset_password_api", "reset_password_page", "disable_api", "disable_page",
                                    "role_api", "role_page"])
async def test_admin_changes_end_every_session_of_the_user(app, accounts, owner_conn, change: str) -> None:
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    user = await accounts.user("engineer", tenant)
    async with new_web(app) as a, new_web(app) as one, new_web(app) as two:
        await a.login(admin)
        await one.login(user)
        await two.login(user)
        uid = user.user_id
        if change == "reset_password_api":
            r = await a.api("POST", f"/api/tenant/users/{uid}/reset-password")
        elif change == "reset_password_page":
            r = await a.post_form(f"/management/users/{uid}/reset-password")
        elif change == "disable_api":
            r = await a.api("PATCH", f"/api/tenant/users/{uid}", {"is_active": False})
        elif change == "disable_page":
            r = await a.post_form(f"/management/users/{uid}/disable")
        elif change == "role_api":
            r = await a.api("PATCH", f"/api/tenant/users/{uid}", {"role": "viewer"})
        else:
            r = await a.post_form(f"/management/users/{uid}/role", {"role": "reliability_engineer"})
        assert r.status_code in (200, 302, 303), r.text[:300]
        assert not await _signed_in(one) and not await _signed_in(two)
        assert _live_sessions(owner_conn, uid) == 0
        assert await _signed_in(a)  # the admin's own session is untouched


async def test_name_and_email_share_one_failure_counter(web: Web, accounts) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("viewer", tenant)
    email = f"{user.username}@example.test"
    for login_name in (user.username, email, user.username.upper(), email, user.username):
        r = await web.post_form("/login", {"organization": tenant[1], "username": login_name, "password": "wrong-1234x"})
        assert r.status_code == 401
    for login_name in (user.username, email):  # locked whichever name is typed, even with the right password
        r = await web.post_form("/login", {"organization": tenant[1], "username": login_name,
                                           "password": user.password})
        assert r.status_code == 401 and "محاولات دخول فاشلة كثيرة" in r.text


async def test_failures_from_one_address_do_not_lock_others_out(web: Web, accounts, monkeypatch) -> None:
    monkeypatch.setattr(auth, "ADDR_DELAY_BASE_S", 0.001)
    monkeypatch.setattr(auth, "ADDR_DELAY_MAX_S", 0.002)
    tenant = await accounts.tenant()
    colleague = await accounts.user("engineer", tenant)
    for n in range(40):  # 40 failures over 10 names from the one (proxy) address the test client has
        r = await web.post_form("/login", {"organization": tenant[1], "username": f"guess{n % 10}",
                                           "password": "wrong-1234x"})
        assert r.status_code == 401
    r = await web.post_form("/login", {"organization": tenant[1], "username": colleague.username,
                                       "password": colleague.password})
    assert r.status_code in (302, 303), "a colleague behind the same address was locked out"


async def test_failures_from_one_address_slow_its_attempts(web: Web, accounts, monkeypatch) -> None:
    monkeypatch.setattr(auth, "ADDR_FREE_FAILURES", 3)
    monkeypatch.setattr(auth, "ADDR_DELAY_BASE_S", 0.4)
    tenant = await accounts.tenant()
    user = await accounts.user("engineer", tenant)
    timings = []
    for n in range(5):
        started = time.perf_counter()
        r = await web.post_form("/login", {"organization": tenant[1], "username": f"spray{n}", "password": "wrong-12x"})
        timings.append(time.perf_counter() - started)
        assert r.status_code == 401
    assert timings[3] >= 0.4 and timings[4] >= 0.8, timings      # the 4th and 5th attempts waited
    started = time.perf_counter()
    r = await web.post_form("/login", {"organization": tenant[1], "username": user.username, "password": user.password})
    assert r.status_code in (302, 303) and time.perf_counter() - started >= 1.6   # slowed, not refused


def test_address_delay_grows_and_is_capped() -> None:
    assert auth.address_delay(0) == 0 and auth.address_delay(auth.ADDR_FREE_FAILURES - 1) == 0
    delays = [auth.address_delay(auth.ADDR_FREE_FAILURES + k) for k in range(10)]
    assert delays == sorted(delays) and delays[0] == auth.ADDR_DELAY_BASE_S and delays[-1] == auth.ADDR_DELAY_MAX_S
    assert auth.address_delay(10_000) == auth.ADDR_DELAY_MAX_S
