"""Route × role: every route answers each role as the permission matrix says.

The matrix (identity/rbac.py) is the single source; a route whose guard is removed or
changed fails here because its declared permission no longer matches what happens.
"""

from __future__ import annotations

import pytest

from optria.identity.rbac import MATRIX, Permission, Role, has_permission
from tests.fix_web import new_web
from tests.web.routes_walk import walk

def _is_login_redirect(r) -> bool:
    return r.status_code in (302, 303) and r.headers.get("location", "").startswith("/login")


async def _call(web, route):
    path = route.concrete()
    if route.method == "GET":
        return await web.get(path)
    return await web.api(route.method, path, json={}) if path.startswith("/api/") else await web.post_form(path, {})


@pytest.mark.parametrize("role", [r.value for r in Role])
async def test_every_route_for_role(role: str, app, accounts) -> None:
    tenant = None if role == "platform_owner" else await accounts.tenant()
    account = await accounts.user(role, tenant)
    routes = sorted(walk(app), key=lambda r: r.path == "/logout")  # sign out last
    mismatches = []
    async with new_web(app) as web:
        await web.login(account)
        for route in routes:
            r = await _call(web, route)
            allowed = route.public or (route.permission is not None and has_permission(role, route.permission))
            # public routes may answer 401 for their own reasons (a failed sign-in); logout ends at /login
            denied = r.status_code == 403 or (not route.public and route.path != "/logout"
                                               and (r.status_code == 401 or _is_login_redirect(r)))
            if allowed and denied:
                mismatches.append(f"{route.method} {route.path}: {role} should be allowed, got {r.status_code}")
            if not allowed and r.status_code != 403:
                mismatches.append(f"{route.method} {route.path}: {role} should get 403, got {r.status_code}")
            if r.status_code >= 500:
                mismatches.append(f"{route.method} {route.path}: {role} got {r.status_code}")
    assert mismatches == []


async def test_anonymous_gets_401_or_login_redirect(app) -> None:
    async with new_web(app) as web:
        for route in walk(app):
            if route.public:
                continue
            r = await _call(web, route)
            if route.path.startswith(("/api/", "/internal/")):
                assert r.status_code == 401, f"{route.method} {route.path}: {r.status_code}"
                assert r.json()["error"]["code"] == "unauthorized"
            else:
                assert _is_login_redirect(r) or r.status_code == 401, f"{route.method} {route.path}: {r.status_code}"


def test_matrix_cells() -> None:
    """The matrix read cell by cell, as the product's access policy states it."""
    expect = {
        Permission.PLATFORM_CONSOLE: {Role.PLATFORM_OWNER},
        Permission.MANAGE_USERS: {Role.TENANT_ADMIN},
        Permission.VIEW_AUDIT: {Role.TENANT_ADMIN},
        Permission.MANAGE_INTEGRATIONS: {Role.TENANT_ADMIN},
        Permission.EDIT_MAPPINGS: {Role.TENANT_ADMIN},
        Permission.TEST_INTEGRATIONS: {Role.TENANT_ADMIN, Role.OPTIMIZATION_ENGINEER, Role.RELIABILITY_ENGINEER,
                                       Role.ENGINEER},
        Permission.ACT_ON_INCIDENTS: {Role.TENANT_ADMIN, Role.RELIABILITY_ENGINEER},
        Permission.RUN_OPTIMIZATION: {Role.TENANT_ADMIN, Role.OPTIMIZATION_ENGINEER},
        Permission.VIEW_BLACKBOX_DETAILS: {Role.TENANT_ADMIN, Role.OPTIMIZATION_ENGINEER, Role.RELIABILITY_ENGINEER,
                                           Role.ENGINEER},
        Permission.EDIT_ASSETS: {Role.TENANT_ADMIN, Role.OPTIMIZATION_ENGINEER, Role.RELIABILITY_ENGINEER,
                                 Role.ENGINEER},
        Permission.RAISE_ALERTS: {Role.TENANT_ADMIN, Role.OPTIMIZATION_ENGINEER, Role.RELIABILITY_ENGINEER,
                                  Role.ENGINEER},
        Permission.AUTHENTICATED: set(Role),
    }
    tenant_roles = set(Role) - {Role.PLATFORM_OWNER}
    for perm in (Permission.VIEW_DASHBOARD, Permission.VIEW_TWIN, Permission.VIEW_ASSETS, Permission.VIEW_INTEGRATIONS,
                 Permission.VIEW_BLACKBOX, Permission.VIEW_OPTIMIZATION):
        expect[perm] = tenant_roles
    assert set(expect) == set(Permission), "every permission must have its expected row here"
    for perm, roles in expect.items():
        for role in Role:
            assert has_permission(role, perm) == (role in roles), f"{role} × {perm}"
    assert set(MATRIX) == set(Role)
    assert not has_permission("nobody", Permission.VIEW_TWIN)
