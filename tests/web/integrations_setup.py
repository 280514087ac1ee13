"""Arranging integrations tests: an app whose platform defaults point at the simulators, a tenant
with a small plant, and helpers that create integrations through the API.

Not the code under test: tests call the API and pages themselves; these only save repetition.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from optria.db import Database
from optria.shell.app import create_app
from tests.fix_web import Account, Accounts, Web, make_settings
from tests.web.assets_setup import PlantIds, make_plant

MARKER = "Zq-MARKER-pw-7731"   # a password that must never come back in any response, log or stored field


@asynccontextmanager
async def same_loop_web(app: Any) -> AsyncIterator[Web]:
    """A browser-like client that runs the app on the test's own event loop.

    Litestar's TestClient answers through a blocking portal on another thread, which blocks the
    test loop for the whole request; the simulators run on the test loop, so a request that
    talks to them (test, browse) would wait on itself. httpx's ASGI transport keeps both on one loop.
    """
    for hook in app.on_startup:  # not app.lifespan(): its task group cannot span a fixture's setup and teardown
        await hook(app)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local",
                                     follow_redirects=False) as client:
            yield Web(client)  # type: ignore[arg-type]
    finally:
        for hook in app.on_shutdown:
            await hook(app)


# Fixtures for the integrations test modules, which import them by name: the app with its platform
# defaults on the two simulators, and a same-loop client (they replace fix_web's app and web there).


@pytest_asyncio.fixture
async def app(db, opcua_sim, pi_sim, tmp_path):
    return create_app(integ_settings(tmp_path, opcua=opcua_sim, pi=pi_sim), db)


@pytest_asyncio.fixture
async def web(app):
    async with same_loop_web(app) as w:
        yield w


def integ_settings(tmp_path: Path, *, opcua: Any = None, pi: Any = None, **extra: Any):
    values: dict[str, Any] = {"OPTRIA_DATA_DIR": str(tmp_path)}
    if opcua is not None:
        values["OPCUA_ENDPOINT_URL"] = opcua.endpoint_url
    if pi is not None:
        values["PI_BASE_URL"] = pi.base_url
    values.update(extra)
    return make_settings(**values)


@dataclass
class Tenant:
    admin: Account
    plant: PlantIds

    @property
    def tenant_id(self) -> Any:
        return self.plant.tenant_id

    def asset(self, n: int = 1) -> int:
        return list(self.plant.assets.values())[n - 1]


async def tenant_with_plant(db: Database, accounts: Accounts, tag: str = "A", assets: int = 3) -> Tenant:
    tenant = await accounts.tenant()
    admin = await accounts.user("tenant_admin", tenant)
    plant = await make_plant(db, tenant[0], tag=tag, assets=assets)
    return Tenant(admin, plant)


async def create(web: Web, kind: str, name: str, config: dict[str, Any] | None = None, password: str | None = None,
                 expect: int = 201) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "name": name, "config": config or {}}
    if password is not None:
        body["password"] = password
    r = await web.api("POST", "/api/integrations/", json=body)
    assert r.status_code == expect, r.text
    return r.json()


async def test_it(web: Web, integration_id: int) -> dict[str, Any]:
    r = await web.api("POST", f"/api/integrations/{integration_id}/test")
    assert r.status_code == 200, r.text
    return r.json()


test_it.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def rows(owner_conn, sql: str, *params: Any) -> list[tuple]:
    return owner_conn.execute(sql, params).fetchall()
