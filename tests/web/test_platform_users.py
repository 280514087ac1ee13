"""Platform owner: tenants (list, create with a first admin) and the global users view."""

from __future__ import annotations

import re

from tests.fix_web import Web, new_web

TEMP_PASSWORD = re.compile(r'data-testid="temporary-password">([^<]+)<')


async def owner_web(web: Web, accounts):
    owner = await accounts.user("platform_owner")
    await web.login(owner)
    return owner


async def test_create_tenant_with_first_admin_who_must_change_the_password(app, web: Web, accounts, owner_conn) -> None:
    owner = await owner_web(web, accounts)
    page = await web.get("/platform/tenants")
    assert page.status_code == 200 and 'id="create-tenant"' in page.text
    r = await web.post_form("/platform/tenants", {"name": "Acme Refining", "slug": "Acme-Refining",
                                                  "admin_username": "acme-admin", "admin_email": "it@acme.example"})
    assert r.status_code in (302, 303) and r.headers["location"] == "/platform/tenants"
    page = await web.get("/platform/tenants")
    temporary = TEMP_PASSWORD.search(page.text).group(1)
    assert "acme-refining" in page.text and "Acme Refining" in page.text
    assert temporary not in (await web.get("/platform/tenants")).text  # shown once

    tenant_id, is_active = owner_conn.execute("SELECT id, is_active FROM tenants WHERE slug = 'acme-refining'").fetchone()
    row = owner_conn.execute("SELECT role, must_change_password, auth_source FROM users WHERE tenant_id = %s",
                             [tenant_id]).fetchall()
    assert row == [("tenant_admin", True, "local")] and is_active
    audit = owner_conn.execute("SELECT action, actor_name, details::text FROM audit_log WHERE tenant_id = %s ORDER BY id",
                               [tenant_id]).fetchall()
    assert [a[0] for a in audit] == ["tenant.created", "user.created"] and audit[0][1] == owner.username
    assert all(temporary not in a[2] for a in audit)

    async with new_web(app) as browser:
        r = await browser.post_form("/login", {"organization": "acme-refining", "username": "acme-admin",
                                               "password": temporary})
        assert r.headers["location"] == "/account/password"
        await browser.post_form("/account/password", {"current_password": temporary, "new_password": "Refinery-Keys-2026",
                                                      "confirm_password": "Refinery-Keys-2026"})
        r = await browser.get("/management/users")
        assert r.status_code == 200 and "acme-admin" in r.text
        audit_page = await browser.get("/management/audit")
        assert "إنشاء مؤسسة" in audit_page.text and owner.username in audit_page.text


async def test_create_tenant_bad_input_changes_nothing(web: Web, accounts, owner_conn) -> None:
    await owner_web(web, accounts)
    existing = await accounts.tenant("taken-slug")
    before = (owner_conn.execute("SELECT count(*) FROM tenants").fetchone()[0],
              owner_conn.execute("SELECT count(*) FROM users").fetchone()[0])
    base = {"name": "New Org", "slug": "new-org", "admin_username": "boss", "admin_email": "boss@new.example"}
    cases = [
        ({"slug": "taken-slug"}, 409, "slug", "توجد مؤسسة بهذا المعرّف"),
        ({"slug": "Bad Slug!"}, 422, "slug", "حرفًا لاتينيًا صغيرًا"),
        ({"slug": "x"}, 422, "slug", "حرفًا لاتينيًا صغيرًا"),
        ({"name": ""}, 422, "name", "أدخل اسم المؤسسة"),
        ({"admin_username": "b"}, 422, "admin_username", "يتكوّن اسم المستخدم"),
        ({"admin_email": "nope"}, 422, "admin_email", "أدخل بريدًا إلكترونيًا صحيحًا"),
    ]
    for change, status, field, message in cases:
        r = await web.post_form("/platform/tenants", {**base, **change})
        assert r.status_code == status, change
        assert message in r.text and f'aria-describedby="{field}-error"' in r.text, change
    after = (owner_conn.execute("SELECT count(*) FROM tenants").fetchone()[0],
             owner_conn.execute("SELECT count(*) FROM users").fetchone()[0])
    assert after == before and existing


async def test_global_users_view_filters_by_tenant_role_source_and_pages(web: Web, accounts, owner_conn) -> None:
    owner = await owner_web(web, accounts)
    a = await accounts.tenant("alpha-org")
    b = await accounts.tenant("bravo-org")
    await accounts.user("tenant_admin", a, username="alpha-admin")
    await accounts.user("viewer", b, username="bravo-viewer")
    for i in range(30):
        await accounts.user("engineer", a, username=f"alpha-eng{i:02d}")
    owner_conn.execute("INSERT INTO users (tenant_id, username, email, role, auth_source, external_issuer, external_subject) "
                       "VALUES (%s, 'bravo-sso', 'sso@b.test', 'viewer', 'sso', 'https://iss', 'x')", [b[0]])

    r = await web.get("/platform/users")
    assert r.status_code == 200 and "عدد المستخدمين: 34" in r.text and owner.username in r.text
    assert "الصفحة 1 من 2" in r.text
    r = await web.get("/platform/users?tenant=bravo-org")
    assert "عدد المستخدمين: 2" in r.text and "alpha-admin" not in r.text
    r = await web.get("/platform/users?role=tenant_admin")
    assert "alpha-admin" in r.text and "عدد المستخدمين: 1" in r.text
    r = await web.get("/platform/users?source=sso")
    assert "bravo-sso" in r.text and "عدد المستخدمين: 1" in r.text
    r = await web.get("/platform/users?role=platform_owner")
    assert owner.username in r.text and "عدد المستخدمين: 1" in r.text
    r = await web.get("/platform/users?tenant=alpha-org&q=eng1&page=1")
    assert "عدد المستخدمين: 10" in r.text
    # unknown filter values are ignored on the page
    assert (await web.get("/platform/users?tenant=no-such&role=zz&status=zz&source=zz&page=0")).status_code == 200
    tenants = await web.get("/platform/tenants?q=alpha")
    assert "alpha-org" in tenants.text and "bravo-org" not in tenants.text


async def test_platform_api(web: Web, accounts, owner_conn) -> None:
    await owner_web(web, accounts)
    r = await web.api("POST", "/api/platform/tenants", json={"slug": "api-org", "name": "API Org",
                                                              "admin_username": "api-admin", "admin_email": "a@api.example"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["tenant"]["slug"] == "api-org" and len(body["admin"]["temporary_password"]) == 19
    r = await web.api("POST", "/api/platform/tenants", json={"slug": "api-org", "name": "Again",
                                                              "admin_username": "x-admin", "admin_email": "x@api.example"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "duplicate"
    r = await web.api("GET", "/api/platform/tenants?q=api")
    assert [t["slug"] for t in r.json()["items"]] == ["api-org"] and r.json()["items"][0]["admin_count"] == 1
    r = await web.api("GET", "/api/platform/users?tenant=api-org")
    assert [u["username"] for u in r.json()["items"]] == ["api-admin"]
    assert "password" not in r.text
    r = await web.api("GET", "/api/platform/users?tenant=no-such-org")
    assert r.status_code == 404
    r = await web.api("GET", "/api/platform/users?source=ldap")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_filter"


async def test_tenant_users_cannot_reach_platform_views(app, accounts) -> None:
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    async with new_web(app) as web:
        await web.login(admin)
        for path in ("/platform/tenants", "/platform/users"):
            assert (await web.get(path)).status_code == 403
        r = await web.post_form("/platform/tenants", {"name": "X", "slug": "sneaky", "admin_username": "sneaky",
                                                      "admin_email": "s@x.test"})
        assert r.status_code == 403
        for path in ("/api/platform/tenants", "/api/platform/users"):
            assert (await web.api("GET", path)).status_code == 403
