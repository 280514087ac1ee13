"""Data Sources pages as a tenant admin uses them: cards, create/edit forms, Test and Demo stream
buttons, the detail page with its action log, the mapping page (browse, assign, import, edit,
delete), and what other roles see."""

from __future__ import annotations

import json
import re

import pytest_asyncio

from tests.fix_opcua import OPCUA_USER
from tests.fix_pi import PI_PASSWORD, PI_USER
from tests.web.integrations_setup import app, web  # noqa: F401  (fixtures: the app on the simulators)
from tests.web.integrations_setup import MARKER, create, rows, tenant_with_plant


@pytest_asyncio.fixture
async def tenant(db, accounts):
    return await tenant_with_plant(db, accounts)


def card_of(html: str, integration_id: int) -> str:
    m = re.search(rf'<article class="card ds-card" id="integration-{integration_id}".*?</article>', html, re.S)
    assert m, f"no card for {integration_id}"
    return m.group(0)


async def test_empty_page_says_what_to_do(web, tenant) -> None:
    await web.login(tenant.admin)
    r = await web.get("/integrations")
    assert r.status_code == 200 and 'data-testid="integrations-empty"' in r.text and 'href="/integrations/new"' in r.text
    r = await web.get("/integrations/new")
    assert 'data-testid="kind-opcua"' in r.text and 'data-testid="kind-sql-disabled"' in r.text


async def test_create_test_and_see_the_card(web, tenant, opcua_sim, owner_conn) -> None:
    await web.login(tenant.admin)
    form = (await web.get("/integrations/new?kind=opcua")).text
    assert f"127.0.0.1:{opcua_sim.port}" in form and 'data-testid="client-thumbprint"' in form
    r = await web.post_form("/integrations", {"kind": "opcua", "name": "Plant server", "security_policy": "None",
                                              "auth_type": "anonymous", "enabled": "on"})
    assert r.status_code == 303
    integration_id = int(r.headers["location"].rsplit("/", 1)[1])
    page = (await web.get("/integrations")).text
    card = card_of(page, integration_id)
    assert 'data-testid="global-default"' in card and f"127.0.0.1:{opcua_sim.port}" in card
    assert 'data-testid="last-test-result"' not in card and 'data-testid="map-button"' in card
    r = await web.post_form(f"/integrations/{integration_id}/test", {"next": "/integrations"})
    assert r.status_code == 303 and r.headers["location"] == f"/integrations#integration-{integration_id}"
    page = (await web.get("/integrations")).text
    card = card_of(page, integration_id)
    assert 'data-success="true"' in card and 'class="alert alert-success"' in page
    detail = (await web.get(f"/integrations/{integration_id}")).text
    assert 'data-action="test"' in detail and 'data-action="create"' in detail


async def test_form_errors_keep_values_and_edit_keeps_password(web, tenant, owner_conn) -> None:
    await web.login(tenant.admin)
    r = await web.post_form("/integrations", {"kind": "opcua", "name": "Bad", "endpoint_url": "http://x",
                                              "password": MARKER})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text and 'value="Bad"' in r.text
    assert MARKER not in r.text
    r = await web.post_form("/integrations", {"kind": "pi", "name": "PI form", "auth_type": "basic",
                                              "username": PI_USER, "password": PI_PASSWORD, "skip_tls_verify": "on",
                                              "enabled": "on"})
    assert r.status_code == 303
    integration_id = int(r.headers["location"].rsplit("/", 1)[1])
    edit = (await web.get(f"/integrations/{integration_id}/edit")).text
    assert 'data-testid="has-password"' in edit and PI_PASSWORD not in edit and 'name="skip_tls_verify" checked' in edit
    r = await web.post_form(f"/integrations/{integration_id}/edit", {
        "name": "PI form renamed", "auth_type": "basic", "username": PI_USER, "password": "", "enabled": "on"})
    assert r.status_code == 303
    got = (await web.api("GET", f"/api/integrations/{integration_id}")).json()
    assert got["name"] == "PI form renamed" and got["has_password"] is True and "verify_tls" not in got["config"]
    r = await web.post_form(f"/integrations/{integration_id}/edit", {"name": "PI form renamed", "auth_type": "anonymous",
                                                                     "clear_password": "on"})
    assert (await web.api("GET", f"/api/integrations/{integration_id}")).json()["has_password"] is False
    r = await web.post_form("/integrations", {"kind": "opcua", "name": "pi FORM renamed"})
    assert r.status_code == 409


async def test_demo_stream_button_only_on_demo_integrations(web, tenant, db, owner_conn) -> None:
    from optria.demo.seed_integrations import seed_demo_integrations
    from optria.secretbox import SecretBox

    owner_conn.execute("INSERT INTO assets (tenant_id, site_id, code, name) VALUES (%s, %s, 'P-101', 'Pump')",
                       [tenant.tenant_id, tenant.plant.site_id])
    await seed_demo_integrations(db, tenant.tenant_id, SecretBox(b"x"))
    await web.login(tenant.admin)
    demo_id = rows(owner_conn, "SELECT id FROM integrations WHERE tenant_id = %s AND kind = 'opcua'", tenant.tenant_id)[0][0]
    plain = await create(web, "opcua", "Not a demo")
    page = (await web.get("/integrations")).text
    assert 'data-testid="demo-stream-button"' in card_of(page, demo_id)
    assert 'data-testid="demo-stream-button"' not in card_of(page, plain["id"])
    r = await web.post_form(f"/integrations/{demo_id}/demo-stream", {"on": "0", "next": "/integrations"})
    assert r.status_code == 303
    assert rows(owner_conn, "SELECT demo_stream FROM integrations WHERE id = %s", demo_id) == [(False,)]
    card = card_of((await web.get("/integrations")).text, demo_id)
    assert "Start demo stream" in card or "بدء" in card
    r = await web.post_form(f"/integrations/{plain['id']}/demo-stream", {"on": "1"})
    assert r.status_code == 303
    assert rows(owner_conn, "SELECT demo_stream FROM integrations WHERE id = %s", plain["id"]) == [(False,)]


async def test_map_page_browse_assign_edit_delete(web, tenant, owner_conn) -> None:
    await web.login(tenant.admin)
    created = await create(web, "opcua", "Mapper")
    iid = created["id"]
    page = await web.get(f"/integrations/{iid}/map?node=ns=2;s=RasTanura.CrudeUnit.P-101")
    assert page.status_code == 200 and 'data-testid="tag-tree"' in page.text
    values = re.findall(r'name="sel" value="([^"]+)"', page.text)
    assert len(values) == 6
    decoded = [json.loads(v.replace("&#34;", '"')) for v in values]
    assert {d["id"] for d in decoded} >= {"ns=2;s=RasTanura.CrudeUnit.P-101.Vibration"}
    picked = [v.replace("&#34;", '"') for v in values[:3]]
    r = await web.post_form(f"/integrations/{iid}/map", {"sel": picked, "asset_id": str(tenant.asset(1)),
                                                         "back": f"/integrations/{iid}/map"})
    assert r.status_code == 303, re.findall(r"alert-error.*?</div>", r.text, re.S)
    page = (await web.get(f"/integrations/{iid}/map")).text
    assert page.count('data-testid="mapping-row"') == 3 and "alert-success" in page
    # limits without one role are refused, and nothing is written
    r = await web.post_form(f"/integrations/{iid}/map", {"sel": [v.replace("&#34;", '"') for v in values[3:]],
                                                         "asset_id": str(tenant.asset(2)), "warn_high": "5"})
    assert r.status_code == 422 and 'data-testid="assign-errors"' in r.text
    assert rows(owner_conn, "SELECT count(*) FROM external_signal_mappings")[0][0] == 3
    # a whole folder
    r = await web.post_form(f"/integrations/{iid}/map", {"folder": "ns=2;s=RasTanura.CrudeUnit.P-102",
                                                         "asset_id": str(tenant.asset(2))})
    assert r.status_code == 303
    assert rows(owner_conn, "SELECT count(*) FROM external_signal_mappings WHERE asset_id = %s", tenant.asset(2))[0][0] == 6
    mapping_id = rows(owner_conn, "SELECT min(id) FROM external_signal_mappings")[0][0]
    form = await web.get(f"/mappings/{mapping_id}/edit")
    assert form.status_code == 200 and 'data-testid="mapping-form"' in form.text
    r = await web.post_form(f"/mappings/{mapping_id}/edit", {"asset_id": str(tenant.asset(3)), "metric_role": "flow",
                                                            "warn_high": "10", "crit_high": "5", "scale": "1",
                                                            "offset": "0", "expected_interval_s": "60", "enabled": "on"})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.text
    r = await web.post_form(f"/mappings/{mapping_id}/edit", {"asset_id": str(tenant.asset(3)), "metric_role": "flow",
                                                            "warn_high": "10", "crit_high": "20", "scale": "2",
                                                            "offset": "0", "expected_interval_s": "30"})
    assert r.status_code == 303
    assert rows(owner_conn, "SELECT asset_id, metric_role, warn_high, crit_high, scale, enabled FROM "
                            "external_signal_mappings WHERE id = %s", mapping_id) == [
        (tenant.asset(3), "flow", 10.0, 20.0, 2.0, False)]
    r = await web.post_form(f"/mappings/{mapping_id}/delete")
    assert r.status_code == 303
    assert rows(owner_conn, "SELECT count(*) FROM external_signal_mappings WHERE id = %s", mapping_id) == [(0,)]


async def test_map_page_with_unreachable_source_shows_why(web, tenant, opcua_closed_port) -> None:
    await web.login(tenant.admin)
    created = await create(web, "opcua", "Down", {"endpoint_url": f"opc.tcp://127.0.0.1:{opcua_closed_port}"})
    r = await web.get(f"/integrations/{created['id']}/map")
    assert r.status_code == 200 and 'data-testid="browse-error"' in r.text


async def test_pi_map_page_searches_and_pages(web, tenant) -> None:
    await web.login(tenant.admin)
    created = await create(web, "pi", "PI pages", {"username": PI_USER}, PI_PASSWORD)
    r = await web.get(f"/integrations/{created['id']}/map?q=*")  # the simulator has 50 points: a full first page
    assert r.text.count('data-testid="tag-checkbox"') == 50 and 'data-testid="pi-next"' in r.text
    r = await web.get(f"/integrations/{created['id']}/map?q=*&start=40")
    assert r.text.count('data-testid="tag-checkbox"') == 10 and 'rel="prev"' not in r.text and "start=0" in r.text
    r = await web.get(f"/integrations/{created['id']}/map?q=Abqaiq.*.K-201.*")
    assert r.text.count('data-testid="tag-checkbox"') == 5 and 'data-testid="pi-next"' not in r.text


async def test_csv_import_from_the_page(web, tenant, owner_conn) -> None:
    await web.login(tenant.admin)
    created = await create(web, "opcua", "CSV page")
    code = rows(owner_conn, "SELECT code FROM assets WHERE id = %s", tenant.asset(1))[0][0]
    good = f"external_id,asset_code,metric_role\nns=2;s=A.B.Temp,{code},\nns=2;s=A.B.Flow,{code},flow\n"
    r = await web.client.post(f"/integrations/{created['id']}/import",
                              data={"_csrf_token": web.csrf(), "mode": "preview"},
                              files={"file": ("m.csv", good.encode(), "text/csv")})
    assert r.status_code == 200 and 'data-testid="import-report"' in r.text and 'data-testid="import-apply"' in r.text
    assert rows(owner_conn, "SELECT count(*) FROM external_signal_mappings")[0][0] == 0
    r = await web.post_form(f"/integrations/{created['id']}/import", {"mode": "apply", "csv_text": good})
    assert r.status_code == 303
    assert rows(owner_conn, "SELECT metric_role FROM external_signal_mappings ORDER BY id") == [("temperature",),
                                                                                             ("flow",)]
    bad = good + "ns=2;s=A.B.X,NO-SUCH,flow\n"
    r = await web.post_form(f"/integrations/{created['id']}/import", {"mode": "apply", "csv_text": bad})
    assert r.status_code == 422 and 'data-testid="rejected-rows"' in r.text
    r = await web.client.post(f"/integrations/{created['id']}/import",
                              data={"_csrf_token": web.csrf(), "mode": "preview"},
                              files={"file": ("m.csv", b"\xff\xfe\x00bad", "text/csv")})
    assert r.status_code == 422 and 'data-testid="import-error"' in r.text


async def test_viewer_sees_cards_without_buttons(web, tenant, accounts, db) -> None:
    await web.login(tenant.admin)
    created = await create(web, "opcua", "Read only", {"auth_type": "username", "username": OPCUA_USER}, MARKER)
    await web.logout()
    viewer = await accounts.user("viewer", (tenant.tenant_id, tenant.admin.organization))
    await web.login(viewer)
    page = (await web.get("/integrations")).text
    card = card_of(page, created["id"])
    assert 'data-testid="test-button"' not in card and 'data-testid="map-button"' not in card
    assert "/edit" not in card and MARKER not in page
    assert (await web.get(f"/integrations/{created['id']}")).status_code == 200
    assert (await web.get(f"/integrations/{created['id']}/map")).status_code == 403
    engineer = await accounts.user("engineer", (tenant.tenant_id, tenant.admin.organization))
    await web.logout()
    await web.login(engineer)
    card = card_of((await web.get("/integrations")).text, created["id"])
    assert 'data-testid="test-button"' in card and 'data-testid="map-button"' not in card
