"""Integrations API against the real OPC-UA and PI Web API simulators: platform defaults merge, the
connection test (success, secure session, wrong password, policy not offered, unreachable hosts
failing fast), browse, the action log, and secrets that never come back."""

from __future__ import annotations

import logging
import time

import pytest_asyncio

from optria.demo.opcua_server import NONE_ONLY
from optria.shell.app import create_app
from tests.fix_opcua import OPCUA_PASSWORD, OPCUA_USER
from tests.fix_pi import PI_PASSWORD, PI_USER
from tests.web.integrations_setup import app, web  # noqa: F401  (fixtures: the app on the simulators)
from tests.web.integrations_setup import (
    MARKER,
    create,
    integ_settings,
    rows,
    same_loop_web,
    tenant_with_plant,
    test_it,
)


@pytest_asyncio.fixture
async def admin_web(web, db, accounts):
    tenant = await tenant_with_plant(db, accounts)
    await web.login(tenant.admin)
    web.tenant = tenant
    return web


# ----------------------------------------------------------------------------- defaults merge


async def test_opcua_without_endpoint_uses_the_global_one_and_says_so(admin_web, opcua_sim) -> None:
    created = await create(admin_web, "opcua", "Plant OPC-UA", {"security_policy": "None", "auth_type": "anonymous"})
    assert created["endpoint"] == {"display": f"127.0.0.1:{opcua_sim.port}", "source": "global",
                                   "uses_global_default": True}
    assert created["has_password"] is False and created["config"] == {"security_policy": "None",
                                                                       "auth_type": "anonymous"}
    result = await test_it(admin_web, created["id"])
    assert result["success"] is True, result
    assert result["details"]["endpoint_source"] == "global" and result["details"]["uses_global_default"] is True
    assert result["details"]["config_sources"]["endpoint_url"] == "global"
    assert result["details"]["server_product"] and "tested_at" in result


async def test_opcua_with_own_endpoint_uses_it(admin_web, opcua_sim_factory) -> None:
    other = await opcua_sim_factory()
    created = await create(admin_web, "opcua", "Own endpoint", {"endpoint_url": other.endpoint_url})
    assert created["endpoint"]["source"] == "tenant" and created["endpoint"]["display"] == f"127.0.0.1:{other.port}"
    result = await test_it(admin_web, created["id"])
    assert result["success"] is True and result["details"]["endpoint_source"] == "tenant"
    assert result["details"]["endpoint_host"] == f"127.0.0.1:{other.port}"


async def test_pi_without_base_url_uses_global_with_tenant_credentials(admin_web, pi_sim) -> None:
    created = await create(admin_web, "pi", "Plant PI", {"auth_type": "basic", "username": PI_USER}, PI_PASSWORD)
    assert created["endpoint"]["source"] == "global" and created["has_password"] is True
    result = await test_it(admin_web, created["id"])
    assert result["success"] is True, result
    assert result["details"]["product_title"] and result["details"]["data_servers"]
    assert result["details"]["config_sources"] == {"base_url": "global"}


async def test_pi_with_own_base_url_and_without_any(tmp_path, db, accounts, pi_sim_factory) -> None:
    own = await pi_sim_factory(users=None)
    app = create_app(integ_settings(tmp_path), db)  # no platform defaults at all
    tenant = await tenant_with_plant(db, accounts)
    async with same_loop_web(app) as w:
        await w.login(tenant.admin)
        with_url = await create(w, "pi", "Own PI", {"base_url": own.base_url + "/", "auth_type": "anonymous"})
        assert with_url["endpoint"]["source"] == "tenant" and with_url["config"]["base_url"] == own.base_url
        assert (await test_it(w, with_url["id"]))["success"] is True
        without = await create(w, "pi", "No address", {})
        assert without["endpoint"] == {"display": None, "source": "missing", "uses_global_default": False}
        result = await test_it(w, without["id"])
        assert result["success"] is False and result["details"]["reason"] == "no_endpoint"
        opc = await create(w, "opcua", "No OPC address", {})
        result = await test_it(w, opc["id"])
        assert result["success"] is False and result["details"]["reason"] == "no_endpoint"
        assert "OPCUA_ENDPOINT_URL" in result["message"]


# ----------------------------------------------------------------------------- connection tests


async def test_secure_session_with_login_then_wrong_password(admin_web, opcua_sim) -> None:
    created = await create(admin_web, "opcua", "Secure", {
        "endpoint_url": opcua_sim.endpoint_url, "security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt",
        "auth_type": "username", "username": OPCUA_USER}, OPCUA_PASSWORD)
    result = await test_it(admin_web, created["id"])
    assert result["success"] is True, result
    assert result["details"]["security_policy"] == "Basic256Sha256" and result["details"]["client_certificate_thumbprint"]
    r = await admin_web.api("PATCH", f"/api/integrations/{created['id']}", json={"password": MARKER})
    assert r.status_code == 200 and r.json()["has_password"] is True
    result = await test_it(admin_web, created["id"])
    assert result["success"] is False and result["details"]["reason"] == "bad_credentials"
    # a blank password on edit keeps the stored (wrong) one
    r = await admin_web.api("PATCH", f"/api/integrations/{created['id']}", json={"name": "Secure 2", "password": ""})
    assert r.status_code == 200 and r.json()["has_password"] is True
    assert (await test_it(admin_web, created["id"]))["details"]["reason"] == "bad_credentials"


async def test_policy_not_offered(admin_web, opcua_sim_factory) -> None:
    plain = await opcua_sim_factory(security=NONE_ONLY)
    created = await create(admin_web, "opcua", "Wants encryption", {
        "endpoint_url": plain.endpoint_url, "security_policy": "Basic256Sha256", "security_mode": "Sign"})
    result = await test_it(admin_web, created["id"])
    assert result["success"] is False and result["details"]["reason"] == "security_policy_not_offered", result


async def test_pi_wrong_password(admin_web) -> None:
    created = await create(admin_web, "pi", "PI wrong", {"auth_type": "basic", "username": PI_USER}, MARKER)
    result = await test_it(admin_web, created["id"])
    assert result["success"] is False and result["details"]["reason"] == "unauthorized", result


async def test_unreachable_hosts_fail_fast_with_a_clear_reason(admin_web, opcua_closed_port) -> None:
    cases = [
        (f"opc.tcp://127.0.0.1:{opcua_closed_port}", "connection_refused"),
        ("opc.tcp://no-such-host.invalid:4840", "dns_failure"),
        ("opc.tcp://opcuademo.sterfive.com:26543", None),  # a public demo server, unreachable from here
    ]
    for url, reason in cases:
        created = await create(admin_web, "opcua", f"Unreachable {url}", {"endpoint_url": url, "timeout_s": 5})
        started = time.monotonic()
        result = await test_it(admin_web, created["id"])
        elapsed = time.monotonic() - started
        assert result["success"] is False, url
        assert elapsed < 12, (url, elapsed)
        if reason:
            assert result["details"]["reason"] == reason, result
        assert result["message"] and len(result["message"]) < 300
    pi = await create(admin_web, "pi", "PI unreachable", {"base_url": f"http://127.0.0.1:{opcua_closed_port}/piwebapi"})
    result = await test_it(admin_web, pi["id"])
    assert result["success"] is False and result["details"]["reason"] == "connection_refused"


async def test_test_records_last_test_and_action_log(admin_web, owner_conn) -> None:
    created = await create(admin_web, "opcua", "Logged", {"auth_type": "anonymous"})
    ok = await test_it(admin_web, created["id"])
    got = (await admin_web.api("GET", f"/api/integrations/{created['id']}")).json()
    assert got["last_test"]["success"] is True and got["last_test"]["message"] == ok["message"]
    log = (await admin_web.api("GET", f"/api/integrations/{created['id']}/log")).json()
    assert log["total"] == 2 and [e["action"] for e in log["items"]] == ["test", "create"]
    entry = log["items"][0]
    assert entry["success"] is True and entry["duration_ms"] is not None and entry["actor_name"] == admin_web.tenant.admin.username
    page2 = (await admin_web.api("GET", f"/api/integrations/{created['id']}/log?page=2&page_size=1")).json()
    assert page2["total"] == 2 and [e["action"] for e in page2["items"]] == ["create"]
    audit = rows(owner_conn, "SELECT action FROM audit_log WHERE target_id = %s ORDER BY id", str(created["id"]))
    assert [a[0] for a in audit] == ["integration.create"]


# ----------------------------------------------------------------------------- browse


async def test_browse_opcua_lazily_and_bad_nodes(admin_web) -> None:
    created = await create(admin_web, "opcua", "Browse", {})
    base = f"/api/integrations/{created['id']}/browse"
    top = (await admin_web.api("GET", base)).json()["items"]
    plant = next(i for i in top if i["id"] == "ns=2;s=Plant")
    assert plant["has_children"] and not plant["is_signal"]
    pump = (await admin_web.api("GET", base + "?node_id=ns=2;s=RasTanura.CrudeUnit.P-101")).json()["items"]
    vib = next(i for i in pump if i["name"] == "Vibration")
    assert vib == vib | {"id": "ns=2;s=RasTanura.CrudeUnit.P-101.Vibration", "is_signal": True, "eng_unit": "mm/s",
                         "suggested_role": "vibration", "mapping_id": None}
    r = await admin_web.api("GET", base + "?node_id=ns=2;s=No.Such.Node")
    assert r.status_code == 404 and r.json()["error"]["code"] == "node_not_found"
    r = await admin_web.api("GET", base + "?node_id=garbage;;")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_node_id"


async def test_browse_pi_search_with_paging(admin_web) -> None:
    created = await create(admin_web, "pi", "PI browse", {"username": PI_USER}, PI_PASSWORD)
    base = f"/api/integrations/{created['id']}/browse"
    first = (await admin_web.api("GET", base + "?q=RasTanura.*&count=5")).json()
    assert len(first["items"]) == 5 and first["next_start"] == 5 and first["items"][0]["id"].startswith("F1DP")
    second = (await admin_web.api("GET", base + "?q=RasTanura.*&count=5&start=5")).json()
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    few = (await admin_web.api("GET", base + "?q=*P-101.Vib*")).json()
    assert [i["name"] for i in few["items"]] == ["RasTanura.CrudeUnit.P-101.Vibration"] and few["next_start"] is None


async def test_browse_unreachable_source_is_a_424_with_a_message(admin_web, opcua_closed_port) -> None:
    created = await create(admin_web, "opcua", "Down", {"endpoint_url": f"opc.tcp://127.0.0.1:{opcua_closed_port}"})
    r = await admin_web.api("GET", f"/api/integrations/{created['id']}/browse")
    assert r.status_code == 424 and "refused" in r.json()["error"]["message"].lower()
    assert r.json()["error"]["code"] == "source_unreachable"


# ----------------------------------------------------------------------------- validation


async def test_bad_input_is_refused_with_field_messages(admin_web) -> None:
    bad = [
        ({"kind": "modbus", "name": "x"}, 422, "kind"),
        ({"kind": "opcua", "name": " "}, 422, "name"),
        ({"kind": "opcua", "name": "x", "config": {"endpoint_url": "http://nope"}}, 422, "endpoint_url"),
        ({"kind": "opcua", "name": "x", "config": {"endpoint_url": "opc.tcp://u:p@host:4840"}}, 422, "endpoint_url"),
        ({"kind": "opcua", "name": "x", "config": {"security_policy": "Rot13"}}, 422, "security_policy"),
        ({"kind": "opcua", "name": "x", "config": {"security_policy": "Basic256Sha256", "security_mode": "None"}}, 422,
         "security_mode"),
        ({"kind": "opcua", "name": "x", "config": {"timeout_s": "soon"}}, 422, "timeout_s"),
        ({"kind": "opcua", "name": "x", "config": {"colour": "red"}}, 422, "config"),
        ({"kind": "pi", "name": "x", "config": {"base_url": "ftp://pi"}}, 422, "base_url"),
        ({"kind": "pi", "name": "x", "config": {"base_url": "https://pi/x", "auth_type": "basic"}}, 422, "username"),
    ]
    for body, status, field in bad:
        r = await admin_web.api("POST", "/api/integrations/", json=body)
        assert r.status_code == status, (body, r.text)
        assert field in r.json()["error"]["details"]["fields"], (body, r.text)
    await create(admin_web, "opcua", "Twice")
    r = await admin_web.api("POST", "/api/integrations/", json={"kind": "pi", "name": "TWICE"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "name_taken"
    r = await admin_web.api("POST", "/api/integrations/", json={"kind": "sql", "name": "Historian",
                                                                 "config": {"dsn": "host=x", "query": "q"}})
    assert r.status_code == 409 and r.json()["error"]["code"] == "sql_disabled"
    r = await admin_web.api("GET", "/api/integrations/?kind=modbus")
    assert r.status_code == 400


async def test_patch_merges_config_and_demo_stream_is_for_demo_only(admin_web, opcua_sim) -> None:
    created = await create(admin_web, "opcua", "Patchy", {"endpoint_url": opcua_sim.endpoint_url, "timeout_s": 5})
    base = f"/api/integrations/{created['id']}"
    r = await admin_web.api("PATCH", base, json={"config": {"endpoint_url": None, "publishing_interval_ms": 250}})
    assert r.status_code == 200
    assert r.json()["config"] == {"timeout_s": 5, "publishing_interval_ms": 250}
    assert r.json()["endpoint"]["source"] == "global"
    r = await admin_web.api("PATCH", base, json={"demo_stream": True})
    assert r.status_code == 422 and "demo_stream" in r.json()["error"]["details"]["fields"]
    r = await admin_web.api("PATCH", base, json={"kind": "pi"})
    assert r.status_code == 422
    r = await admin_web.api("PATCH", base, json={"enabled": False})
    assert r.json()["enabled"] is False and r.json()["streams"] is False
    assert r.json()["ingest"]["flags"] == ["disabled"]


# ----------------------------------------------------------------------------- secrets


async def test_secrets_never_in_responses_logs_or_stored_fields(admin_web, owner_conn, opcua_sim) -> None:
    records: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage() + " " + repr(record.__dict__))

    handler = Grab(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        responses = []
        opc = await create(admin_web, "opcua", "Secret OPC", {
            "endpoint_url": opcua_sim.endpoint_url, "security_policy": "Basic256Sha256",
            "security_mode": "SignAndEncrypt", "auth_type": "username", "username": OPCUA_USER}, MARKER)
        pi = await create(admin_web, "pi", "Secret PI", {"username": PI_USER, "password": MARKER})
        for iid in (opc["id"], pi["id"]):
            for method, path in (("POST", f"/api/integrations/{iid}/test"), ("GET", f"/api/integrations/{iid}"),
                                 ("GET", f"/api/integrations/{iid}/log"), ("GET", f"/api/integrations/{iid}/browse"),
                                 ("GET", "/api/integrations/"), ("GET", f"/integrations/{iid}"),
                                 ("GET", f"/integrations/{iid}/edit"), ("GET", f"/integrations/{iid}/map"),
                                 ("GET", "/integrations")):
                r = await admin_web.api(method, path) if path.startswith("/api/") else await admin_web.get(path)
                responses.append((path, r.status_code, r.text))
        r = await admin_web.post_form(f"/integrations/{opc['id']}/test", {"next": "/integrations"})
        responses.append(("form test", r.status_code, r.text + (await admin_web.get("/integrations")).text))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert pi["has_password"] is True and "password" not in pi["config"]
    for path, status, text in responses:
        assert status != 500, (path, status)  # a browse with the wrong password is a 424 from the source
        assert MARKER not in text, path
    assert records and not [r for r in records if MARKER in r]
    stored = rows(owner_conn, "SELECT config::text, secrets::text, coalesce(last_test_message, ''), "
                              "coalesce(last_test_details::text, '') FROM integrations")
    for config, secrets, message, details in stored:
        assert MARKER not in config + message + details
        assert MARKER not in secrets and ("v2:" in secrets or secrets == "{}")
    logged = rows(owner_conn, "SELECT message || details::text FROM integration_action_log "
                              "UNION ALL SELECT coalesce(details::text, '') FROM audit_log")
    assert logged and not [x for (x,) in logged if MARKER in x]
