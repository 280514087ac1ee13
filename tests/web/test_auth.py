"""Sign-in, sessions and CSRF, exercised through the real app and database."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from tests.fix_web import Web


async def test_login_page_is_arabic_rtl(web: Web) -> None:
    r = await web.get("/login")
    assert r.status_code == 200
    assert '<html lang="ar" dir="rtl">' in r.text
    assert "تسجيل الدخول" in r.text
    assert "optria_csrf" in r.headers.get("set-cookie", "")


async def test_english_switch(web: Web) -> None:
    r = await web.post_form("/lang", {"lang": "en", "next": "/login"})
    assert r.status_code in (302, 303) and r.headers["location"] == "/login"
    r = await web.get("/login")
    assert '<html lang="en" dir="ltr">' in r.text and "Sign in" in r.text


async def test_anonymous_page_redirects_to_login(web: Web) -> None:
    r = await web.get("/digital-twin")
    assert r.status_code in (302, 303)
    assert r.headers["location"].startswith("/login?next=%2Fdigital-twin")


async def test_tenant_user_login_and_logout_invalidates_session(web: Web, accounts, app) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("engineer", tenant)
    await web.login(user)
    r = await web.get("/")
    assert r.status_code == 200 and user.username in r.text
    stolen = dict(web.client.cookies)
    await web.logout()
    assert (await web.get("/")).status_code in (302, 303)
    # replaying the old cookie after logout must not work: the server-side session is revoked
    async with AsyncTestClient(app=app) as other:
        other.follow_redirects = False
        for k, v in stolen.items():
            other.cookies.set(k, v)
        r = await other.get("/")
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")


async def test_platform_owner_logs_in_without_organization(web: Web, accounts) -> None:
    owner = await accounts.user("platform_owner")
    r = await web.login(owner)
    assert r.headers["location"] == "/platform"


async def test_wrong_password_and_unknown_org_give_the_same_generic_error(web: Web, accounts) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("viewer", tenant)
    bad_pw = await web.post_form("/login", {"organization": user.organization, "username": user.username, "password": "nope-123456"})
    bad_org = await web.post_form("/login", {"organization": "no-such-org", "username": user.username, "password": user.password})
    for r in (bad_pw, bad_org):
        assert r.status_code == 401
        assert "المؤسسة أو اسم المستخدم أو كلمة المرور غير صحيحة." in r.text
    # a user of one tenant cannot sign in through another tenant's organization
    other = await accounts.tenant()
    r = await web.post_form("/login", {"organization": other[1], "username": user.username, "password": user.password})
    assert r.status_code == 401


async def test_login_by_email(web: Web, accounts) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("viewer", tenant)
    r = await web.post_form("/login", {"organization": tenant[1], "username": f"{user.username}@example.test",
                                       "password": user.password})
    assert r.status_code in (302, 303)


async def test_throttling_after_repeated_failures(web: Web, accounts) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("viewer", tenant)
    for _ in range(5):
        await web.post_form("/login", {"organization": tenant[1], "username": user.username, "password": "wrong-pass-1"})
    r = await web.post_form("/login", {"organization": tenant[1], "username": user.username, "password": user.password})
    assert r.status_code == 401
    assert "محاولات دخول فاشلة كثيرة" in r.text


async def test_post_without_csrf_token_is_refused(web: Web, accounts) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("viewer", tenant)
    await web.client.get("/login")
    r = await web.client.post("/login", data={"organization": tenant[1], "username": user.username,
                                              "password": user.password})
    assert r.status_code == 403
    r = await web.client.post("/login", data={"_csrf_token": "forged", "organization": tenant[1],
                                              "username": user.username, "password": user.password})
    assert r.status_code == 403


async def test_disabled_user_is_out_on_next_request(web: Web, accounts, owner_conn) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("engineer", tenant)
    await web.login(user)
    assert (await web.get("/")).status_code == 200
    owner_conn.execute("UPDATE users SET is_active = false WHERE id = %s", [user.user_id])
    r = await web.get("/")
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")


async def test_session_id_rotates_on_login(web: Web, accounts, owner_conn) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("engineer", tenant)
    await web.login(user)
    await web.login(user)
    rows = owner_conn.execute("SELECT revoked_at IS NULL FROM sessions WHERE user_id = %s ORDER BY created_at",
                              [user.user_id]).fetchall()
    assert [r[0] for r in rows] == [False, True]


async def test_must_change_password_forces_new_password(web: Web, accounts) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("engineer", tenant, must_change_password=True)
    r = await web.login(user)
    assert r.headers["location"] == "/account/password"
    r = await web.get("/digital-twin")
    assert r.status_code in (302, 303) and r.headers["location"] == "/account/password"
    r = await web.post_form("/account/password", {"current_password": user.password, "new_password": "short",
                                                  "confirm_password": "short"})
    assert r.status_code == 422 and "عشرة أحرف" in r.text
    r = await web.post_form("/account/password", {"current_password": user.password, "new_password": "Brand-New-Pass-77",
                                                  "confirm_password": "Brand-New-Pass-77"})
    assert r.status_code in (302, 303)
    assert (await web.get("/digital-twin")).status_code == 200
    await web.logout()
    user.password = "Brand-New-Pass-77"
    await web.login(user)


async def test_open_redirect_is_refused(web: Web, accounts) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("engineer", tenant)
    r = await web.post_form("/login", {"organization": tenant[1], "username": user.username, "password": user.password,
                                       "next": "//evil.example/"})
    assert r.headers["location"] == "/"


async def test_logout_form_present_for_signed_in_user(web: Web, accounts) -> None:
    tenant = await accounts.tenant()
    user = await accounts.user("viewer", tenant)
    await web.login(user)
    r = await web.get("/")
    assert re.search(r'<form method="post" action="/logout"', r.text)
