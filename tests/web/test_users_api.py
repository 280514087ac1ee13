"""The JSON API under /api/tenant/users mirrors the page: same rules, JSON errors, tenant from the session only."""

from __future__ import annotations

from tests.fix_web import Web, new_web


async def admin_web(web: Web, accounts):
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    await web.login(admin)
    return tenant, admin


def error_of(r) -> dict:
    body = r.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


async def test_list_with_filters_and_pagination(web: Web, accounts, owner_conn) -> None:
    tenant, admin = await admin_web(web, accounts)
    other = await accounts.tenant()
    await accounts.user("viewer", other, username="bravo-user")
    for i in range(6):
        await accounts.user("engineer", tenant, username=f"eng{i}")
    r = await web.api("GET", "/api/tenant/users?per_page=4")
    assert r.status_code == 200
    body = r.json()
    assert (body["total"], body["pages"], body["page"], len(body["items"])) == (7, 2, 1, 4)
    assert set(body["items"][0]) >= {"id", "username", "email", "role", "is_active", "auth_source", "created_at"}
    assert "password_hash" not in r.text and "bravo-user" not in r.text
    r = await web.api("GET", "/api/tenant/users?per_page=4&page=2")
    assert len(r.json()["items"]) == 3
    r = await web.api("GET", "/api/tenant/users?role=engineer&q=eng")
    assert r.json()["total"] == 6
    r = await web.api("GET", f"/api/tenant/users?tenant_id={other[0]}")
    assert "bravo-user" not in r.text and r.json()["total"] == 7
    for bad in ("role=platform_owner", "status=maybe", "source=ldap"):
        r = await web.api("GET", f"/api/tenant/users?{bad}")
        assert r.status_code == 400 and error_of(r)["code"] == "invalid_filter"


async def test_create_returns_the_temporary_password_once(app, web: Web, accounts, owner_conn) -> None:
    tenant, _ = await admin_web(web, accounts)
    r = await web.api("POST", "/api/tenant/users", json={"username": "api-user", "email": "api@x.test", "role": "viewer"})
    assert r.status_code == 201, r.text
    body = r.json()
    temporary = body["temporary_password"]
    assert body["user"]["username"] == "api-user" and body["user"]["must_change_password"] is True
    got = await web.api("GET", f"/api/tenant/users/{body['user']['id']}")
    assert got.status_code == 200 and temporary not in got.text
    async with new_web(app) as browser:
        r = await browser.post_form("/login", {"organization": tenant[1], "username": "api-user", "password": temporary})
        assert r.headers["location"] == "/account/password"
    r = await web.api("POST", "/api/tenant/users", json={"username": "typed-pw", "email": "typed@x.test",
                                                         "role": "engineer", "password": "Chosen-Secret-77"})
    assert r.status_code == 201 and r.json()["temporary_password"] is None


async def test_create_bad_input_is_a_json_error_and_changes_nothing(web: Web, accounts, owner_conn) -> None:
    tenant, admin = await admin_web(web, accounts)
    other = await accounts.tenant()
    before = owner_conn.execute("SELECT count(*) FROM users").fetchone()[0]
    cases = [
        ({"username": admin.username.upper(), "email": "x@x.test", "role": "viewer"}, 409, "duplicate"),
        ({"username": "newbie", "email": f"{admin.username}@example.test", "role": "viewer"}, 409, "duplicate"),
        ({"username": "newbie", "email": "n@x.test", "role": "viewer", "password": "weak"}, 422, "validation_error"),
        ({"username": "newbie", "email": "n@x.test", "role": "platform_owner"}, 422, "validation_error"),
        ({"username": "newbie", "email": "n@x.test", "role": "wizard"}, 422, "validation_error"),
        ({"username": "newbie", "email": "n@x.test", "role": "viewer", "tenant_id": str(other[0])}, None, None),
        ({"username": "newbie"}, None, None),
    ]
    for payload, status, code in cases:
        r = await web.api("POST", "/api/tenant/users", json=payload)
        err = error_of(r)
        if status:
            assert (r.status_code, err["code"]) == (status, code), (payload, r.text)
        else:
            assert r.status_code in (400, 422), (payload, r.status_code)
    r = await web.api("POST", "/api/tenant/users", json={"username": "newbie", "email": "n@x.test", "role": "wizard"})
    assert error_of(r)["details"]["fields"]["role"] == ["Choose one of the listed roles."]
    assert owner_conn.execute("SELECT count(*) FROM users").fetchone()[0] == before


async def test_patch_role_and_active_with_the_admin_rules(app, web: Web, accounts, owner_conn) -> None:
    tenant, admin = await admin_web(web, accounts)
    user = await accounts.user("engineer", tenant)
    async with new_web(app) as victim:
        await victim.login(user)
        r = await web.api("PATCH", f"/api/tenant/users/{user.user_id}", json={"role": "viewer", "is_active": False})
        assert r.status_code == 200 and r.json()["role"] == "viewer" and r.json()["is_active"] is False
        assert (await victim.get("/account/password")).status_code in (302, 303)
    r = await web.api("PATCH", f"/api/tenant/users/{user.user_id}", json={"is_active": True, "display_name": "Omar"})
    assert r.status_code == 200 and r.json()["display_name"] == "Omar"

    for payload, status, code in [
        ({"role": "platform_owner"}, 422, "unknown_role"),
        ({}, 422, "validation_error"),
        ({"tenant_id": str(tenant[0])}, None, None),
        ({"is_active": "yes"}, None, None),
    ]:
        r = await web.api("PATCH", f"/api/tenant/users/{user.user_id}", json=payload)
        err = error_of(r)
        if status:
            assert (r.status_code, err["code"]) == (status, code)
        else:
            assert r.status_code in (400, 422)
    for payload, code in [({"is_active": False}, "cannot_disable_self"), ({"role": "engineer"}, "cannot_change_own_role")]:
        r = await web.api("PATCH", f"/api/tenant/users/{admin.user_id}", json=payload)
        assert r.status_code == 409 and error_of(r)["code"] == code
    assert owner_conn.execute("SELECT role, is_active FROM users WHERE id = %s", [admin.user_id]).fetchone() \
        == ("tenant_admin", True)
    assert owner_conn.execute("SELECT role, is_active FROM users WHERE id = %s", [user.user_id]).fetchone() \
        == ("viewer", True)


async def test_reset_password_and_audit_api(web: Web, accounts, owner_conn) -> None:
    tenant, admin = await admin_web(web, accounts)
    user = await accounts.user("engineer", tenant)
    r = await web.api("POST", f"/api/tenant/users/{user.user_id}/reset-password")
    assert r.status_code == 200 and len(r.json()["temporary_password"]) == 19
    assert r.json()["user"]["must_change_password"] is True
    sso_id = owner_conn.execute(
        "INSERT INTO users (tenant_id, username, email, role, auth_source, external_issuer, external_subject) "
        "VALUES (%s, 'sso-api', 'sso-api@x.test', 'viewer', 'sso', 'https://iss', 's1') RETURNING id",
        [tenant[0]]).fetchone()[0]
    r = await web.api("POST", f"/api/tenant/users/{sso_id}/reset-password")
    assert r.status_code == 409 and error_of(r)["code"] == "sso_user"

    r = await web.api("GET", "/api/tenant/audit")
    assert r.status_code == 200
    entries = r.json()["items"]
    assert [e["action"] for e in entries] == ["user.password_reset"]
    assert entries[0]["actor_name"] == admin.username and entries[0]["target_id"] == str(user.user_id)
    r = await web.api("GET", f"/api/tenant/audit?target_id={user.user_id}&action=user.password_reset")
    assert r.json()["total"] == 1
