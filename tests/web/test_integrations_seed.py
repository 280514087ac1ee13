"""The demo seed's integrations: both use the platform defaults, their signals are the ids the two
simulators really serve (so the browse API shows them mapped), and seeding again changes nothing."""

from __future__ import annotations

import pytest_asyncio

from optria.demo.plant import TAGS
from optria.demo.seed import DEMO_TENANT_SLUG, DEMO_USERS, seed_demo_tenant
from optria.secretbox import SecretBox
from optria.shell.app import create_app
from tests.fix_web import Account
from tests.web.integrations_setup import integ_settings, rows, same_loop_web


@pytest_asyncio.fixture
async def app(db, opcua_sim, pi_sim_factory, tmp_path):
    pi = await pi_sim_factory(users=None)
    return create_app(integ_settings(tmp_path, opcua=opcua_sim, pi=pi), db)


async def test_demo_integrations_map_real_simulator_ids(app, db, owner_conn) -> None:
    box = SecretBox(b"seed-test")
    tenant_id = await seed_demo_tenant(db, box)
    counts = rows(owner_conn, "SELECT count(*) FROM external_signal_mappings WHERE tenant_id = %s", tenant_id)
    await seed_demo_tenant(db, box)  # idempotent
    assert rows(owner_conn, "SELECT count(*) FROM external_signal_mappings WHERE tenant_id = %s", tenant_id) == counts
    assert counts[0][0] == len(TAGS)
    admin = next(u for u in DEMO_USERS if u.role == "tenant_admin")
    async with same_loop_web(app) as web:
        await web.login(Account(DEMO_TENANT_SLUG, admin.username, admin.password, admin.role, None, tenant_id))
        items = (await web.api("GET", "/api/integrations/")).json()["items"]
        by_kind = {i["kind"]: i for i in items}
        assert {i["name"] for i in items} == {"Ras Tanura OPC-UA", "Abqaiq PI Web API"}
        for item in items:
            assert item["is_demo"] and item["demo_stream"] and item["enabled"] and item["streams"]
            assert item["endpoint"]["source"] == "global" and item["has_password"] is False
        opc = by_kind["opcua"]
        assert opc["config"] == {"security_policy": "None", "security_mode": "None", "auth_type": "anonymous",
                                 "publishing_interval_ms": 500}
        assert opc["mapped_signals"] == sum(1 for t in TAGS if t.site == "RasTanura")
        pump = (await web.api("GET", f"/api/integrations/{opc['id']}/browse?node_id=ns=2;s=RasTanura.CrudeUnit.P-101")).json()
        assert pump["items"] and all(i["mapped_asset_code"] == "P-101" for i in pump["items"])
        pi = by_kind["pi"]
        points = (await web.api("GET", f"/api/integrations/{pi['id']}/browse?q=Abqaiq.*&count=100")).json()["items"]
        assert len(points) == sum(1 for t in TAGS if t.site == "Abqaiq")
        assert all(p["mapped_asset_code"] == p["name"].split(".")[2] for p in points)
        assert (await web.api("POST", f"/api/integrations/{pi['id']}/test")).json()["success"] is True
        mappings = (await web.api("GET", f"/api/integrations/{opc['id']}/mappings?q=P-101.Vibration")).json()["items"]
        assert mappings[0] == mappings[0] | {"metric_role": "vibration", "unit": "mm/s", "warn_high": 7.1,
                                             "crit_high": 11.0}
