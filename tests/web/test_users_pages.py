"""Management → Users and Audit log, used through the pages the way a tenant admin does."""

from __future__ import annotations

import asyncio
import re
import uuid

from optria.identity import users as users_service
from optria.identity.store import CurrentUser
from optria.identity.users import UserChanges, UserError
from tests.fix_web import Web, new_web

TEMP_PASSWORD = re.compile(r'data-testid="temporary-password">([^<]+)<')


async def signed_in_admin(app, accounts):
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant, username=f"admin{uuid.uuid4().hex[:4]}")
    return tenant, admin


def count_users(owner_conn, tenant_id) -> int:
    return owner_conn.execute("SELECT count(*) FROM users WHERE tenant_id = %s", [tenant_id]).fetchone()[0]


async def create_form(web: Web, **fields):
    data = {"username": "", "email": "", "role": "engineer", "display_name": "", "password": "", **fields}
    return await web.post_form("/management/users", data)


# -- list, search, filters, pagination ------------------------------------------------------------------

async def test_list_shows_only_own_tenant_with_search_filters_and_pages(web: Web, accounts, owner_conn) -> None:
    tenant, admin = await signed_in_admin(web, accounts)
    other = await accounts.tenant()
    await accounts.user("engineer", other, username="bravo-only-user")
    for i in range(28):
        await accounts.user("engineer" if i % 2 else "viewer", tenant, username=f"member{i:02d}")
    await web.login(admin)

    first = await web.get("/management/users")
    assert first.status_code == 200
    assert "عدد المستخدمين: 29" in first.text
    assert "bravo-only-user" not in first.text
    assert first.text.count('href="/management/users/') - first.text.count('href="/management/users/new') == 25
    second = await web.get("/management/users?page=2")
    assert second.text.count('href="/management/users/') - second.text.count('href="/management/users/new') == 4
    assert "الصفحة 2 من 2" in second.text

    r = await web.get("/management/users?q=member1")
    assert "member10" in r.text and "member05" not in r.text and "عدد المستخدمين: 10" in r.text
    r = await web.get("/management/users?role=viewer")
    assert "عدد المستخدمين: 14" in r.text
    owner_conn.execute("UPDATE users SET is_active = false WHERE tenant_id = %s AND username = 'member03'", [tenant[0]])
    r = await web.get("/management/users?status=disabled")
    assert "member03" in r.text and "عدد المستخدمين: 1" in r.text
    owner_conn.execute("INSERT INTO users (tenant_id, username, email, role, auth_source, external_issuer, external_subject) "
                       "VALUES (%s, 'ssoperson', 'sso@x.test', 'viewer', 'sso', 'https://iss', 'subj')", [tenant[0]])
    r = await web.get("/management/users?source=sso")
    assert "ssoperson" in r.text and "عدد المستخدمين: 1" in r.text
    # a search for LIKE wildcards matches them literally
    assert "لا يوجد مستخدم يطابق" in (await web.get("/management/users?q=%25_%25")).text
    # a tenant id in the query string changes nothing
    r = await web.get(f"/management/users?tenant_id={other[0]}&q=bravo")
    assert "bravo-only-user" not in r.text
    # unknown filter values are ignored, never an error
    assert (await web.get("/management/users?role=platform_owner&status=zzz&source=zzz&page=999")).status_code == 200


async def test_empty_states_tell_what_to_do(web: Web, accounts) -> None:
    _, admin = await signed_in_admin(web, accounts)
    await web.login(admin)
    r = await web.get("/management/users?q=nobody-like-this")
    assert "لا يوجد مستخدم يطابق عوامل التصفية هذه" in r.text and 'href="/management/users">' in r.text
    r = await web.get("/management/audit")
    assert "لا توجد إجراءات مسجّلة بعد" in r.text


# -- create -------------------------------------------------------------------------------------------

async def test_create_user_shows_temporary_password_once_and_forces_a_change(app, web: Web, accounts, owner_conn) -> None:
    tenant, admin = await signed_in_admin(web, accounts)
    other = await accounts.tenant()
    await web.login(admin)
    form = await web.get("/management/users/new")
    assert form.status_code == 200 and "عشرة أحرف على الأقل" in form.text  # the password rules are stated
    r = await create_form(web, username="Nadia.K", email="nadia@plant.example", role="reliability_engineer",
                          display_name="نادية", tenant_id=str(other[0]))
    assert r.status_code in (302, 303), r.text[:1000]
    detail_path = r.headers["location"]
    page = await web.get(detail_path)
    assert "أُنشئ المستخدم Nadia.K." in page.text
    temporary = TEMP_PASSWORD.search(page.text).group(1)
    assert re.fullmatch(r"[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}", temporary)
    again = await web.get(detail_path)
    assert temporary not in again.text and 'data-testid="temporary-password"' not in again.text

    row = owner_conn.execute("SELECT tenant_id, role, auth_source, must_change_password, password_hash, display_name "
                             "FROM users WHERE username = 'Nadia.K'").fetchone()
    assert row[0] == tenant[0] and row[1:4] == ("reliability_engineer", "local", True)
    assert temporary not in row[4] and row[5] == "نادية"
    (details,) = owner_conn.execute("SELECT details::text FROM audit_log WHERE action = 'user.created' AND target_name = 'Nadia.K'"
                                    ).fetchone()
    assert temporary not in details and "argon2" not in details

    async with new_web(app) as browser:
        r = await browser.post_form("/login", {"organization": tenant[1], "username": "nadia.k", "password": temporary})
        assert r.headers["location"] == "/account/password"
        assert (await browser.get("/management/users")).headers["location"] == "/account/password"
        r = await browser.post_form("/account/password", {"current_password": temporary, "new_password": "Fresh-Pass-2026",
                                                           "confirm_password": "Fresh-Pass-2026"})
        assert r.status_code in (302, 303)
        assert (await browser.get("/account/password")).status_code == 200


async def test_admin_typed_temporary_password_must_follow_the_rules(web: Web, accounts, owner_conn) -> None:
    tenant, admin = await signed_in_admin(web, accounts)
    await web.login(admin)
    r = await create_form(web, username="weakling", email="weak@x.test", password="short")
    assert r.status_code == 422 and "عشرة أحرف" in r.text and 'aria-describedby="password-error"' in r.text
    assert 'value="short"' not in r.text
    r = await create_form(web, username="typed", email="typed@x.test", password="Chosen-Secret-77")
    assert r.status_code in (302, 303)
    page = await web.get(r.headers["location"])
    assert 'data-testid="temporary-password"' not in page.text  # the admin already knows it
    assert owner_conn.execute("SELECT must_change_password FROM users WHERE username = 'typed'").fetchone()[0] is True


async def test_create_user_bad_input_changes_nothing(web: Web, accounts, owner_conn) -> None:
    tenant, admin = await signed_in_admin(web, accounts)
    await accounts.user("engineer", tenant, username="taken")  # email taken@example.test
    await web.login(admin)
    before = count_users(owner_conn, tenant[0])
    cases = [
        ({"username": "TAKEN", "email": "new@x.test"}, 409, "اسم المستخدم هذا مستخدم بالفعل", "username"),
        ({"username": "fresh", "email": "Taken@Example.test"}, 409, "هذا البريد الإلكتروني مستخدم بالفعل", "email"),
        ({"username": "fresh", "email": "fresh@x.test", "role": "platform_owner"}, 422, "اختر أحد الأدوار المعروضة", "role"),
        ({"username": "fresh", "email": "fresh@x.test", "role": "superuser"}, 422, "اختر أحد الأدوار المعروضة", "role"),
        ({"username": "fresh", "email": "not-an-email"}, 422, "أدخل بريدًا إلكترونيًا صحيحًا", "email"),
        ({"username": "x", "email": "fresh@x.test"}, 422, "يتكوّن اسم المستخدم", "username"),
        ({"username": "has space", "email": "fresh@x.test"}, 422, "يتكوّن اسم المستخدم", "username"),
    ]
    for fields, status, message, field in cases:
        r = await create_form(web, **fields)
        assert r.status_code == status, (fields, r.status_code)
        assert message in r.text, fields
        assert f'aria-describedby="{field}-error"' in r.text, fields
        assert f'value="{fields["username"]}"' in r.text  # what was typed stays in the form
    assert count_users(owner_conn, tenant[0]) == before


# -- role, disable/enable, reset -------------------------------------------------------------------------

async def test_disable_takes_effect_on_the_users_next_request_and_enable_restores(app, web: Web, accounts,
                                                                                  owner_conn) -> None:
    tenant, admin = await signed_in_admin(web, accounts)
    engineer = await accounts.user("engineer", tenant)
    await web.login(admin)
    async with new_web(app) as victim:
        await victim.login(engineer)
        assert (await victim.get("/account/password")).status_code == 200
        r = await web.post_form(f"/management/users/{engineer.user_id}/disable")
        assert r.status_code in (302, 303)
        page = await web.get(r.headers["location"])
        assert f"عُطّل {engineer.username}" in page.text
        r = await victim.get("/account/password")
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    assert owner_conn.execute("SELECT count(*) FROM sessions WHERE user_id = %s AND revoked_at IS NULL",
                              [engineer.user_id]).fetchone()[0] == 0
    async with new_web(app) as victim:
        r = await victim.post_form("/login", {"organization": tenant[1], "username": engineer.username,
                                              "password": engineer.password})
        assert r.status_code == 401
    r = await web.post_form(f"/management/users/{engineer.user_id}/enable")
    assert r.status_code in (302, 303)
    async with new_web(app) as victim:
        await victim.login(engineer)
    actions = [a for (a,) in owner_conn.execute("SELECT action FROM audit_log WHERE target_id = %s ORDER BY id",
                                                [str(engineer.user_id)]).fetchall()]
    assert actions == ["user.disabled", "user.enabled"]


async def test_change_role_applies_on_next_request_and_never_to_platform_owner(app, web: Web, accounts,
                                                                               owner_conn) -> None:
    tenant, admin = await signed_in_admin(web, accounts)
    colleague = await accounts.user("tenant_admin", tenant)
    await web.login(admin)
    async with new_web(app) as other:
        await other.login(colleague)
        assert (await other.get("/management/users")).status_code == 200
        r = await web.post_form(f"/management/users/{colleague.user_id}/role", {"role": "viewer"})
        assert r.status_code in (302, 303)
        assert "أصبح دور" in (await web.get(r.headers["location"])).text
        # a role change ends the user's sessions: they sign in again and meet the new role
        r = await other.get("/management/users")
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
        await other.login(colleague)
        assert (await other.get("/management/users")).status_code == 403
    r = await web.post_form(f"/management/users/{colleague.user_id}/role", {"role": "platform_owner"})
    assert r.status_code == 422 and "اختر أحد الأدوار المعروضة" in r.text
    assert owner_conn.execute("SELECT role, tenant_id FROM users WHERE id = %s", [colleague.user_id]).fetchone() \
        == ("viewer", tenant[0])
    (details,) = owner_conn.execute("SELECT details FROM audit_log WHERE action = 'user.role_changed' AND target_id = %s",
                                    [str(colleague.user_id)]).fetchone()
    assert details == {"from": "tenant_admin", "to": "viewer"}


async def test_reset_password_is_shown_once_ends_sessions_and_forces_a_change(app, web: Web, accounts,
                                                                              owner_conn) -> None:
    tenant, admin = await signed_in_admin(web, accounts)
    engineer = await accounts.user("engineer", tenant)
    await web.login(admin)
    async with new_web(app) as victim:
        await victim.login(engineer)
        r = await web.post_form(f"/management/users/{engineer.user_id}/reset-password")
        assert r.status_code in (302, 303)
        page = await web.get(r.headers["location"])
        temporary = TEMP_PASSWORD.search(page.text).group(1)
        assert temporary not in (await web.get(r.headers["location"])).text
        assert (await victim.get("/account/password")).status_code in (302, 303)  # signed out
    async with new_web(app) as browser:
        r = await browser.post_form("/login", {"organization": tenant[1], "username": engineer.username,
                                               "password": engineer.password})
        assert r.status_code == 401  # the old password stopped working
        r = await browser.post_form("/login", {"organization": tenant[1], "username": engineer.username,
                                               "password": temporary})
        assert r.headers["location"] == "/account/password"
    # single sign-on users have no password to reset
    sso_id = owner_conn.execute(
        "INSERT INTO users (tenant_id, username, email, role, auth_source, external_issuer, external_subject) "
        "VALUES (%s, 'ssoer', 'ssoer@x.test', 'viewer', 'sso', 'https://iss', 'ssoer') RETURNING id", [tenant[0]]).fetchone()[0]
    r = await web.post_form(f"/management/users/{sso_id}/reset-password")
    assert r.status_code == 409 and "ليس له هنا كلمة مرور" in r.text
    assert owner_conn.execute("SELECT password_hash FROM users WHERE id = %s", [sso_id]).fetchone()[0] is None


async def test_admin_cannot_disable_or_demote_themself(web: Web, accounts, owner_conn) -> None:
    tenant, admin = await signed_in_admin(web, accounts)
    await web.login(admin)
    page = await web.get(f"/management/users/{admin.user_id}")
    assert "لا يمكنك تعطيل حسابك بنفسك" in page.text and f"/management/users/{admin.user_id}/disable" not in page.text
    r = await web.post_form(f"/management/users/{admin.user_id}/disable")
    assert r.status_code == 409 and "لا يمكنك تعطيل حسابك بنفسك" in r.text
    r = await web.post_form(f"/management/users/{admin.user_id}/role", {"role": "viewer"})
    assert r.status_code == 409 and "لا يمكنك تغيير دورك بنفسك" in r.text
    assert owner_conn.execute("SELECT role, is_active FROM users WHERE id = %s", [admin.user_id]).fetchone() \
        == ("tenant_admin", True)


def _actor(account, tenant) -> CurrentUser:
    return CurrentUser(id=account.user_id, tenant_id=tenant[0], tenant_slug=tenant[1], tenant_name=tenant[1],
                       username=account.username, email="", display_name=None, role="tenant_admin",
                       auth_source="local", must_change_password=False, session_id="test")


async def test_last_active_admin_is_protected_even_from_a_stale_admin(db, accounts, owner_conn) -> None:
    tenant = await accounts.tenant()
    first = await accounts.user("tenant_admin", tenant)
    second = await accounts.user("tenant_admin", tenant)
    # the second admin was demoted a moment ago, but their request still carries the admin role
    owner_conn.execute("UPDATE users SET role = 'engineer' WHERE id = %s", [second.user_id])
    for changes in (UserChanges(role="viewer"), UserChanges(is_active=False)):
        try:
            await users_service.update_user(db, _actor(second, tenant), first.user_id, changes, addr=None)
        except UserError as err:
            assert err.status == 409 and err.code == "last_admin"
        else:
            raise AssertionError("the last active admin was changed")
    assert owner_conn.execute("SELECT role, is_active FROM users WHERE id = %s", [first.user_id]).fetchone() \
        == ("tenant_admin", True)


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, accounts, owner_conn) -> None:
    tenant = await accounts.tenant()
    one = await accounts.user("tenant_admin", tenant)
    two = await accounts.user("tenant_admin", tenant)
    async with new_web(app) as a, new_web(app) as b:
        await a.login(one)
        await b.login(two)
        results = await asyncio.gather(a.api("PATCH", f"/api/tenant/users/{two.user_id}", json={"role": "viewer"}),
                                       b.api("PATCH", f"/api/tenant/users/{one.user_id}", json={"role": "viewer"}))
    codes = sorted(r.status_code for r in results)
    # the loser is refused: already demoted (its session ended with the role change: 401, or 403), or last admin
    assert codes in ([200, 401], [200, 403], [200, 409]), codes
    assert owner_conn.execute("SELECT count(*) FROM users WHERE tenant_id = %s AND role = 'tenant_admin' AND is_active",
                              [tenant[0]]).fetchone()[0] == 1


# -- audit log -----------------------------------------------------------------------------------------------

async def test_audit_log_shows_own_tenant_actions_with_filters(app, web: Web, accounts, owner_conn) -> None:
    tenant, admin = await signed_in_admin(web, accounts)
    other, other_admin = await signed_in_admin(web, accounts)
    await web.login(admin)
    r = await create_form(web, username="audited", email="audited@x.test")
    uid = r.headers["location"].rsplit("/", 1)[1]
    await web.post_form(f"/management/users/{uid}/role", {"role": "viewer"})
    await web.post_form(f"/management/users/{uid}/reset-password")
    async with new_web(app) as b:
        await b.login(other_admin)
        await create_form(b, username="bravo-audited", email="bravo@x.test")

    page = await web.get("/management/audit")
    assert page.status_code == 200
    for label in ("إنشاء مستخدم", "تغيير الدور", "إعادة تعيين كلمة المرور"):
        assert label in page.text
    assert "bravo-audited" not in page.text and admin.username in page.text
    assert f'href="/management/users/{uid}"' in page.text
    r = await web.get("/management/audit?action=user.role_changed")
    rows = r.text.split("<tbody>", 1)[1]
    assert rows.count("<tr>") == 1 and "تغيير الدور" in rows
    # the user's page shows their own history
    detail = await web.get(f"/management/users/{uid}")
    assert "تغيير الدور" in detail.text
