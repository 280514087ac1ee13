"""A tenant admin of A tries every users/SSO/audit route with tenant B's ids: 403/404, no data, nothing changed."""

from __future__ import annotations

import pytest

from tests.fix_web import Web, new_web


@pytest.fixture
async def two_tenants(app, accounts, owner_conn):
    a = await accounts.tenant()
    b = await accounts.tenant()
    admin_a = await accounts.user("tenant_admin", a, username="alpha-admin")
    admin_b = await accounts.user("tenant_admin", b, username="bravo-admin")
    victim = await accounts.user("engineer", b, username="bravo-victim")
    sso_b = owner_conn.execute(
        "INSERT INTO users (tenant_id, username, email, role, auth_source, external_issuer, external_subject) "
        "VALUES (%s, 'bravo-sso', 'bravo-sso@b.test', 'viewer', 'sso', 'https://iss', 'b-sub') RETURNING id",
        [b[0]]).fetchone()[0]
    provider_b = owner_conn.execute(
        "INSERT INTO identity_providers (tenant_id, name, discovery_url, client_id) "
        "VALUES (%s, 'Bravo IdP', 'https://bravo-idp.example', 'bravo-client') RETURNING id", [b[0]]).fetchone()[0]
    owner_conn.execute("INSERT INTO audit_log (tenant_id, actor_name, action, target_type, target_id, target_name) "
                       "VALUES (%s, 'bravo-admin', 'user.created', 'user', %s, 'bravo-victim')", [b[0], str(victim.user_id)])
    return {"a": a, "b": b, "admin_a": admin_a, "admin_b": admin_b, "victim": victim, "sso_b": sso_b,
            "provider_b": provider_b}


def snapshot(owner_conn, tenant_id):
    users = owner_conn.execute("SELECT id, username, email, role, is_active, password_hash, must_change_password "
                               "FROM users WHERE tenant_id = %s ORDER BY id", [tenant_id]).fetchall()
    providers = owner_conn.execute("SELECT * FROM identity_providers WHERE tenant_id = %s ORDER BY id", [tenant_id]).fetchall()
    sessions = owner_conn.execute("SELECT id, revoked_at FROM sessions WHERE tenant_id = %s ORDER BY id", [tenant_id]).fetchall()
    audit = owner_conn.execute("SELECT count(*) FROM audit_log WHERE tenant_id = %s", [tenant_id]).fetchone()
    return users, providers, sessions, audit


BRAVO_STRINGS = ("bravo-victim", "bravo-sso", "bravo-admin", "Bravo IdP", "bravo-idp.example", "bravo-client")


def assert_no_bravo(text: str, where: str) -> None:
    for s in BRAVO_STRINGS:
        assert s not in text, f"{where} leaked {s!r}"


async def test_every_route_refuses_another_tenants_ids(app, web: Web, owner_conn, two_tenants) -> None:
    t = two_tenants
    async with new_web(app) as b_browser:
        await b_browser.login(t["victim"])  # B's user has a live session that must survive
        before = snapshot(owner_conn, t["b"][0])
        await web.login(t["admin_a"])
        uid, sso_uid, pid = t["victim"].user_id, t["sso_b"], t["provider_b"]

        page_calls = [
            ("GET", f"/management/users/{uid}", None),
            ("GET", f"/management/users/{sso_uid}", None),
            ("POST", f"/management/users/{uid}/role", {"role": "viewer"}),
            ("POST", f"/management/users/{uid}/disable", {}),
            ("POST", f"/management/users/{uid}/enable", {}),
            ("POST", f"/management/users/{uid}/reset-password", {}),
            ("GET", f"/management/sso/{pid}", None),
            ("POST", f"/management/sso/{pid}", {"name": "Hijacked", "discovery_url": "https://x.example",
                                                "client_id": "x", "default_role": "viewer", "enabled": "on"}),
            ("POST", f"/management/sso/{pid}/test", {}),
        ]
        for method, path, data in page_calls:
            r = await (web.get(path) if method == "GET" else web.post_form(path, data))
            assert r.status_code == 404, f"{method} {path}: {r.status_code}"
            assert_no_bravo(r.text, path)

        api_calls = [
            ("GET", f"/api/tenant/users/{uid}", None),
            ("PATCH", f"/api/tenant/users/{uid}", {"role": "viewer"}),
            ("PATCH", f"/api/tenant/users/{uid}", {"is_active": False}),
            ("POST", f"/api/tenant/users/{uid}/reset-password", None),
            ("POST", f"/api/tenant/users/{sso_uid}/reset-password", None),
        ]
        for method, path, payload in api_calls:
            r = await web.api(method, path, json=payload)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", f"{method} {path}: {r.status_code}"
            assert_no_bravo(r.text, path)

        # query strings and form fields that name tenant B are ignored: only A's data, A's writes
        b_id = t["b"][0]
        for path in (f"/management/users?tenant_id={b_id}&q=bravo", f"/management/audit?tenant_id={b_id}&q=bravo",
                     f"/management/audit?target_id={uid}", f"/management/sso?tenant_id={b_id}",
                     f"/api/tenant/users?tenant_id={b_id}&q=bravo", f"/api/tenant/audit?tenant_id={b_id}",
                     f"/api/tenant/audit?target_id={uid}", f"/management/users/new?tenant_id={b_id}"):
            r = await (web.api("GET", path) if path.startswith("/api/") else web.get(path))
            assert r.status_code == 200, path
            assert_no_bravo(r.text, path)
        r = await web.post_form("/management/users", {"username": "planted", "email": "planted@x.test", "role": "viewer",
                                                      "tenant_id": str(b_id)})
        assert r.status_code in (302, 303)
        r = await web.api("POST", "/api/tenant/users", json={"username": "planted2", "email": "p2@x.test", "role": "viewer",
                                                             "tenant_id": str(b_id)})
        assert r.status_code in (400, 422)
        # a username that exists only in B is free in A (uniqueness is per tenant)
        r = await web.post_form("/management/users", {"username": "bravo-victim2", "email": "bravo-victim@example.test",
                                                      "role": "viewer"})
        assert r.status_code in (302, 303)

        assert snapshot(owner_conn, b_id) == before
        assert owner_conn.execute("SELECT tenant_id FROM users WHERE username = 'planted'").fetchone()[0] == t["a"][0]
        assert (await b_browser.get("/account/password")).status_code == 200  # B's session untouched


async def test_platform_owner_cannot_use_tenant_routes(app, accounts, two_tenants) -> None:
    owner = await accounts.user("platform_owner")
    async with new_web(app) as web:
        await web.login(owner)
        assert (await web.get("/management/users")).status_code == 403
        r = await web.api("GET", "/api/tenant/users")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = await web.api("PATCH", f"/api/tenant/users/{two_tenants['victim'].user_id}", json={"is_active": False})
        assert r.status_code == 403


async def test_tenant_roles_other_than_admin_are_refused(app, accounts, two_tenants) -> None:
    engineer = await accounts.user("engineer", two_tenants["a"])
    async with new_web(app) as web:
        await web.login(engineer)
        for path in ("/management/users", "/management/audit", "/management/sso", "/api/tenant/users"):
            r = await (web.api("GET", path) if path.startswith("/api/") else web.get(path))
            assert r.status_code == 403, path
