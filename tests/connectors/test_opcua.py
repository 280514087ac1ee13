"""The OPC-UA connector against the real asyncua simulator (no mocks).

Values are checked against the demo plant itself: the simulator writes
``plant.value(tag, t)`` with SourceTimestamp ``t`` on a 1 s grid, so a test can recompute
every number it reads, live or from history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography import x509
from pydantic import SecretStr

from optria.config import Settings
from optria.connectors import opcua
from optria.connectors.base import ConnectorError, TestResult
from optria.demo.opcua_server import NAMESPACE_URI, NONE_ONLY, OpcUaSimulator, bench_value
from optria.demo.plant import TAGS, TAGS_BY_PATH
from tests.fix_opcua import (  # noqa: F401  (fixtures are used by name)
    OPCUA_PASSWORD,
    OPCUA_USER,
    OpcUaSimFactory,
    opcua_config_for,
    opcua_secure_config_for,
)

GLOBAL_URL = "opc.tcp://global-plant:4840"
TENANT_URL = "opc.tcp://tenant-plant:4841"
VIBRATION = "RasTanura.CrudeUnit.P-101.Vibration"


def _settings(endpoint: str | None = GLOBAL_URL, user: str | None = "global-user",
              password: str | None = "global-secret") -> Settings:
    return Settings(OPCUA_ENDPOINT_URL=endpoint, OPCUA_USERNAME=user, OPCUA_PASSWORD=password)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _encoded(result: TestResult) -> str:
    return msgspec.json.encode(result).decode()


# --------------------------------------------------------------------------- defaults merge (pure)


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        # tenant endpoint + tenant credentials: everything from the tenant
        ({"endpoint_url": TENANT_URL, "auth_type": "username", "username": "t-user", "password": "t-pass"},
         {"endpoint_url": TENANT_URL, "username": "t-user", "password": "t-pass",
          "_sources": {"endpoint_url": "tenant", "username": "tenant", "password": "tenant"}}),
        # nothing from the tenant: the global endpoint with its global credentials
        ({}, {"endpoint_url": GLOBAL_URL, "auth_type": "username", "username": "global-user",
              "password": "global-secret",
              "_sources": {"endpoint_url": "global", "username": "global", "password": "global"}}),
        # blank endpoint counts as absent; explicit username auth without credentials → global ones
        ({"endpoint_url": "  ", "auth_type": "username"},
         {"endpoint_url": GLOBAL_URL, "username": "global-user", "password": "global-secret",
          "_sources": {"endpoint_url": "global", "username": "global"}}),
        # global endpoint, tenant credentials
        ({"auth_type": "username", "username": "t-user", "password": "t-pass"},
         {"endpoint_url": GLOBAL_URL, "username": "t-user", "password": "t-pass",
          "_sources": {"endpoint_url": "global", "username": "tenant"}}),
        # tenant endpoint without credentials: the platform's credentials are NOT sent there
        ({"endpoint_url": TENANT_URL, "auth_type": "username"},
         {"endpoint_url": TENANT_URL, "username": None, "password": None,
          "_sources": {"endpoint_url": "tenant", "username": "missing", "password": "missing"}}),
        # ... unless the tenant typed the global endpoint itself (same host:port)
        ({"endpoint_url": "opc.tcp://GLOBAL-PLANT:4840/", "auth_type": "username"},
         {"username": "global-user", "password": "global-secret", "_sources": {"username": "global"}}),
        # tenant endpoint, auth absent, no username: anonymous
        ({"endpoint_url": TENANT_URL},
         {"endpoint_url": TENANT_URL, "auth_type": "anonymous", "username": None, "password": None}),
        # explicit anonymous wins over global credentials
        ({"auth_type": "anonymous"}, {"endpoint_url": GLOBAL_URL, "auth_type": "anonymous", "username": None}),
    ],
)
def test_merge_config_precedence(tenant: dict[str, Any], expected: dict[str, Any]) -> None:
    merged = opcua.merge_config(tenant, _settings())
    for key, value in expected.items():
        if key == "_sources":
            for source_key, source in value.items():
                assert merged["_sources"][source_key] == source, source_key
        else:
            assert _secret(merged[key]) == value, key


def test_merge_config_defaults_and_secret_handling() -> None:
    merged = opcua.merge_config({"security_policy": "basic256sha256", "password": "x", "username": "u"},
                                _settings(endpoint=None, user=None, password=None))
    assert merged["endpoint_url"] is None and merged["_sources"]["endpoint_url"] == "missing"
    assert (merged["security_policy"], merged["security_mode"]) == ("Basic256Sha256", "SignAndEncrypt")
    assert merged["timeout_s"] == 10 and merged["_sources"]["timeout_s"] == "default"
    assert merged["publishing_interval_ms"] == 1000
    assert isinstance(merged["password"], SecretStr)
    assert "x" not in repr(merged["password"])
    assert merged["auth_type"] == "username"   # inferred from the tenant username
    # a plain object works as settings, and None means "no platform defaults"
    class Plain:
        opcua_endpoint_url, opcua_username, opcua_password = GLOBAL_URL, "g", SecretStr("gp")
    assert opcua.merge_config({}, Plain())["username"] == "g"
    assert opcua.merge_config({}, None)["endpoint_url"] is None
    assert opcua.merge_config({"security_policy": "Aes256Sha256RsaPss"}, None)["security_policy"] == "Aes256_Sha256_RsaPss"


async def test_no_endpoint_anywhere(tmp_path: Path) -> None:
    merged = opcua.merge_config({}, _settings(endpoint=None))
    result = await opcua.test_connection(merged, tmp_path)
    assert not result.success
    assert result.details["reason"] == "no_endpoint"


@pytest.mark.parametrize("url", ["http://localhost:4840", "localhost:4840", "opc.tcp://", "opc.tcp://host:99999",
                                 "opc.tcp://host:port", "opc.tcp://user:pw@host:4840", "opc.tcp://bad host:4840"])
async def test_malformed_endpoint(url: str, tmp_path: Path) -> None:
    started = time.perf_counter()
    result = await opcua.test_connection({"endpoint_url": url}, tmp_path)
    assert not result.success
    assert result.details["reason"] == "invalid_endpoint", result.message
    assert time.perf_counter() - started < 0.5
    assert "pw" not in result.message


async def test_inconsistent_security_config(tmp_path: Path) -> None:
    result = await opcua.test_connection(
        {"endpoint_url": "opc.tcp://127.0.0.1:1", "security_policy": "Basic256Sha256", "security_mode": "None"},
        tmp_path)
    assert result.details["reason"] == "invalid_config"
    result = await opcua.test_connection({"endpoint_url": "opc.tcp://127.0.0.1:1", "security_policy": "Basic128"},
                                         tmp_path)
    assert result.details["reason"] == "invalid_config"


# --------------------------------------------------------------------------- sessions


async def test_none_security_anonymous_session(opcua_sim: OpcUaSimulator, tmp_path: Path) -> None:
    result = await opcua.test_connection(opcua_config_for(opcua_sim), tmp_path)
    assert result.success, result.message
    details = result.details
    assert details["server_product"] == "OPTRIA Demo Plant Simulator"
    assert details["server_state"] == "Running"
    assert NAMESPACE_URI in details["namespaces"]
    assert (details["security_policy"], details["security_mode"]) == ("None", "None")
    assert 0 < details["round_trip_ms"] < 1000
    assert details["endpoint_host"] == opcua_sim.endpoint_url.removeprefix("opc.tcp://")
    assert "reason" not in details
    assert not list(tmp_path.iterdir())  # no certificate needed without security


@pytest.mark.parametrize(("policy", "mode"), [("Basic256Sha256", "SignAndEncrypt"), ("Basic256Sha256", "Sign"),
                                              ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
                                              ("Aes256_Sha256_RsaPss", "SignAndEncrypt")])
async def test_secure_session_with_username(opcua_sim: OpcUaSimulator, opcua_client_pki: Path,
                                            policy: str, mode: str) -> None:
    result = await opcua.test_connection(opcua_secure_config_for(opcua_sim, policy, mode), opcua_client_pki)
    assert result.success, result.message
    assert (result.details["security_policy"], result.details["security_mode"]) == (policy, mode)
    assert result.details["client_certificate_thumbprint"] == opcua.client_certificate_thumbprint(opcua_client_pki)
    assert result.details["server_certificate_thumbprint"] == opcua_sim.server_certificate_thumbprint
    assert OPCUA_PASSWORD not in _encoded(result)


async def test_wrong_password_is_bad_credentials(opcua_sim: OpcUaSimulator, opcua_client_pki: Path) -> None:
    config = opcua_secure_config_for(opcua_sim, password="not-the-password-42")
    result = await opcua.test_connection(config, opcua_client_pki)
    assert not result.success
    assert result.details["reason"] == "bad_credentials"
    assert "not-the-password-42" not in _encoded(result)
    # same on an unencrypted channel (the password is then encrypted with the server key)
    result = await opcua.test_connection(opcua_config_for(opcua_sim, auth_type="username", username=OPCUA_USER,
                                                          password="not-the-password-42"), opcua_client_pki)
    assert result.details["reason"] == "bad_credentials"
    result = await opcua.test_connection(opcua_config_for(opcua_sim, auth_type="username", username=OPCUA_USER,
                                                          password=OPCUA_PASSWORD), opcua_client_pki)
    assert result.success, result.message


async def test_policy_not_offered(opcua_sim_factory: OpcUaSimFactory, opcua_client_pki: Path) -> None:
    sim = await opcua_sim_factory(security=NONE_ONLY)
    assert (await opcua.test_connection(opcua_config_for(sim), opcua_client_pki)).success
    result = await opcua.test_connection(opcua_secure_config_for(sim), opcua_client_pki)
    assert not result.success
    assert result.details["reason"] == "security_policy_not_offered"
    assert "None/None" in result.message


async def test_certificate_rejected_until_trusted(opcua_sim_factory: OpcUaSimFactory, tmp_path: Path) -> None:
    sim = await opcua_sim_factory(trusted_client_certs_dir=tmp_path / "trusted", allow_anonymous=False)
    pki = tmp_path / "client-pki"
    result = await opcua.test_connection(opcua_secure_config_for(sim), pki)
    assert not result.success
    assert result.details["reason"] == "certificate_rejected", result.message
    assert result.details["client_certificate_thumbprint"] == opcua.client_certificate_thumbprint(pki)
    assert sim.validator is not None and sim.validator.rejected == 1
    # the same client succeeds once its certificate is in the server's trust list
    sim.trust_client_certificate(opcua.ensure_client_certificate(pki).cert_der)
    result = await opcua.test_connection(opcua_secure_config_for(sim), pki)
    assert result.success, result.message
    # this server does not take anonymous sessions
    result = await opcua.test_connection(opcua_config_for(sim), pki)
    assert result.details["reason"] == "bad_credentials"


async def test_connection_refused_is_fast(opcua_closed_port: int, tmp_path: Path) -> None:
    started = time.perf_counter()
    result = await opcua.test_connection({"endpoint_url": f"opc.tcp://127.0.0.1:{opcua_closed_port}"}, tmp_path)
    assert result.details["reason"] == "connection_refused", result.message
    assert time.perf_counter() - started < 2


async def test_dns_failure_is_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = await opcua.test_connection({"endpoint_url": "opc.tcp://no-such-host.invalid:4840"}, tmp_path,
                                         timeout=5)
    assert result.details["reason"] == "dns_failure", result.message
    assert "no-such-host.invalid" in result.message
    assert time.perf_counter() - started < 5


async def test_silent_server_times_out(opcua_silent_endpoint: str, tmp_path: Path) -> None:
    started = time.perf_counter()
    result = await opcua.test_connection({"endpoint_url": opcua_silent_endpoint, "auth_type": "username",
                                          "username": "u", "password": "silent-secret-7"}, tmp_path, timeout=1)
    elapsed = time.perf_counter() - started
    assert result.details["reason"] == "timeout", result.message
    assert 0.9 <= elapsed < 1.8
    assert "silent-secret-7" not in _encoded(result)


async def test_no_secret_in_results_or_logs(opcua_sim: OpcUaSimulator, opcua_client_pki: Path,
                                            opcua_closed_port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "S3cret-never-shown"
    sim_users = opcua_sim.users
    configs = [
        opcua_secure_config_for(opcua_sim, password=secret),
        opcua_config_for(opcua_sim, auth_type="username", username=OPCUA_USER, password=secret),
        {"endpoint_url": f"opc.tcp://127.0.0.1:{opcua_closed_port}", "username": "u", "password": secret},
        opcua.merge_config({"endpoint_url": "opc.tcp://x.invalid:1"}, _settings(password=secret)),
    ]
    for config in configs:
        result = await opcua.test_connection(config, opcua_client_pki, timeout=5)
        assert not result.success
        assert secret not in _encoded(result)
    assert OPCUA_PASSWORD in sim_users.values()  # the check above really had a wrong password
    assert secret not in caplog.text
    assert all(secret not in str(r.args) for r in caplog.records)


# --------------------------------------------------------------------------- browse and reads


async def test_browse_objects_lists_plant(opcua_sim: OpcUaSimulator, tmp_path: Path) -> None:
    items = await opcua.browse(opcua_config_for(opcua_sim), tmp_path)
    plant = next(i for i in items if i.name == "Plant")
    assert plant.id == "ns=2;s=Plant" and plant.has_children and not plant.is_signal


async def test_browse_plant_tree(opcua_sim: OpcUaSimulator, tmp_path: Path) -> None:
    items = await opcua.browse(opcua_config_for(opcua_sim), tmp_path, "ns=2;s=Plant", depth=4, max_items=1000)
    by_path = {i.path: i for i in items}
    asset = by_path["RasTanura/CrudeUnit/P-101"]
    assert asset.display_name == "Crude Charge Pump A" and asset.has_children and not asset.is_signal
    assert asset.id == "ns=2;s=RasTanura.CrudeUnit.P-101"
    vib = by_path["RasTanura/CrudeUnit/P-101/Vibration"]
    assert vib.id == f"ns=2;s={VIBRATION}"
    assert (vib.is_signal, vib.has_children, vib.data_type, vib.eng_unit) == (True, False, "Double", "mm/s")
    signals = [i for i in items if i.is_signal]
    assert sorted(i.id for i in signals) == sorted(f"ns=2;s={t.path}" for t in TAGS)
    assert {i.eng_unit for i in signals} == {t.eng_unit or None for t in TAGS}
    assert not any(i.name in ("EngineeringUnits", "EURange") for i in items)
    # depth and max_items are limits
    sites = await opcua.browse(opcua_config_for(opcua_sim), tmp_path, "ns=2;s=Plant", depth=1)
    assert [s.name for s in sites] == ["RasTanura", "Abqaiq"]
    assert len(await opcua.browse(opcua_config_for(opcua_sim), tmp_path, "ns=2;s=Plant", depth=4, max_items=7)) == 7


async def test_browse_missing_node(opcua_sim: OpcUaSimulator, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError) as err:
        await opcua.browse(opcua_config_for(opcua_sim), tmp_path, "ns=2;s=No.Such.Node")
    assert err.value.code == "node_not_found"
    assert "ns=2;s=No.Such.Node" in err.value.message
    with pytest.raises(ConnectorError) as err:
        await opcua.browse(opcua_config_for(opcua_sim), tmp_path, "not a node id")
    assert err.value.code == "invalid_node_id"


async def test_read_current_matches_plant(opcua_sim: OpcUaSimulator, tmp_path: Path) -> None:
    paths = [VIBRATION, "Abqaiq.GasCompression.K-301.Power", "RasTanura.Utilities.GT-401.Running"]
    samples = await opcua.read_current(opcua_config_for(opcua_sim), tmp_path,
                                       [f"ns=2;s={p}" for p in paths] + ["ns=2;s=Missing.Tag"])
    now = datetime.now(timezone.utc)
    for path, sample in zip(paths, samples, strict=False):
        assert sample.signal_id == f"ns=2;s={path}"
        assert sample.quality == "good" and sample.error is None
        assert timedelta(0) <= now - sample.time < timedelta(seconds=3)
        assert sample.time.microsecond == 0  # the 1 Hz grid
        assert sample.value == opcua_sim.plant.value(TAGS_BY_PATH[path], sample.time.timestamp())
    missing = samples[-1]
    assert (missing.quality, missing.value, missing.error) == ("bad", None, "BadNodeIdUnknown")


async def _history(client, node_ids: list[str], start: datetime, end: datetime, **kwargs) -> list:
    """Every page of ``iter_history`` joined, grouped by node in input order (each node read to its end)."""
    out: dict[str, list] = {n: [] for n in node_ids}
    done: set[str] = set()
    async for page in opcua.iter_history(client, node_ids, start, end, **kwargs):
        for part in page:
            assert part.error is None, part.error
            out[part.node_id].extend(part.samples)
            if part.done:
                done.add(part.node_id)
    assert done == set(node_ids)
    return [s for n in node_ids for s in out[n]]


async def test_history_pages_follow_continuation_points(opcua_sim: OpcUaSimulator, tmp_path: Path) -> None:
    node = f"ns=2;s={VIBRATION}"
    while opcua_sim.values_written_for(node) < 6:
        await asyncio.sleep(0.2)
    end = datetime.now(timezone.utc) - timedelta(seconds=0.5)
    start = end - timedelta(seconds=60)
    async with opcua.open_client(opcua_config_for(opcua_sim), tmp_path) as client:
        whole = await _history(client, [node], start, end)
        pages = []
        async for page in opcua.iter_history(client, [node], start, end, values_per_node=2):
            pages.append(page[0])
    assert len(whole) >= 5
    assert len(pages) == (len(whole) + 1) // 2 and all(len(p.samples) <= 2 for p in pages)
    assert [p.more for p in pages] == [True] * (len(pages) - 1) + [False]
    # the last page ends the window unless it is full: a full page without a continuation point may
    # not be the end (the caller reads on from its last timestamp), so an even count is not done yet
    assert pages[-1].done == (len(whole) % 2 == 1)
    assert [s for p in pages for s in p.samples] == whole


async def test_history_read_returns_what_was_written(opcua_sim: OpcUaSimulator, tmp_path: Path) -> None:
    node = f"ns=2;s={VIBRATION}"
    while opcua_sim.values_written_for(node) < 4:
        await asyncio.sleep(0.2)
    end = datetime.now(timezone.utc) - timedelta(seconds=0.5)
    start = end - timedelta(seconds=30)
    async with opcua.open_client(opcua_config_for(opcua_sim), tmp_path) as client:
        samples = await _history(client, [node, "ns=2;s=Abqaiq.Stabilization.E-210.Flow"], start, end)
    vib = [s for s in samples if s.signal_id == node]
    assert len(vib) >= 3
    assert [(s.time, s.value) for s in vib] == opcua_sim.written_samples(node, start, end)
    for s in vib:
        assert s.value == opcua_sim.plant.value(TAGS_BY_PATH[VIBRATION], s.time.timestamp())
    assert all(b.time - a.time == timedelta(seconds=1) for a, b in zip(vib, vib[1:], strict=False))
    assert len([s for s in samples if s.signal_id != node]) == len(vib)


async def test_client_certificate_is_reused(opcua_sim: OpcUaSimulator, tmp_path: Path) -> None:
    first = opcua.client_certificate_thumbprint(tmp_path)
    cert_file = tmp_path / "client.pem"
    mtime = cert_file.stat().st_mtime_ns
    opcua._cert_cache.clear()  # force a reload from disk, as a new process would
    result = await opcua.test_connection(opcua_secure_config_for(opcua_sim), tmp_path)
    assert result.success, result.message
    assert result.details["client_certificate_thumbprint"] == first
    assert opcua.client_certificate_thumbprint(tmp_path) == first
    assert cert_file.stat().st_mtime_ns == mtime
    assert oct(cert_file.stat().st_mode & 0o777) == "0o600"
    cert = x509.load_der_x509_certificate((tmp_path / "client_cert.der").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert opcua.CLIENT_APPLICATION_URI in san.get_values_for_type(x509.UniformResourceIdentifier)
    # another directory is another identity
    assert opcua.client_certificate_thumbprint(tmp_path / "other") != first


# --------------------------------------------------------------------------- simulator


async def test_simulator_counts_every_write_and_restarts(opcua_sim_factory: OpcUaSimFactory,
                                                         tmp_path: Path) -> None:
    sim = await opcua_sim_factory(bench_signals=3, bench_hz=20)
    node = "ns=2;s=Bench.S00001"
    while sim.values_written_for(node) < 10:
        await asyncio.sleep(0.05)
    sim.history.max_history_data_response_size = 4  # make the client follow continuation points
    async with opcua.open_client(opcua_config_for(sim), tmp_path) as client:
        now = datetime.now(timezone.utc)
        written = sim.values_written_for(node)
        history = await _history(client, [node], now - timedelta(minutes=5), now + timedelta(minutes=1))
    assert written <= len(history) <= written + 2  # a tick may land between the two reads
    values = [s.value for s in history]
    assert values == [bench_value(1, seq) for seq in range(1, len(values) + 1)]  # every write a change
    assert sim.values_written == sum(sim.values_written_for(n) for n in
                                     [f"ns=2;s={t.path}" for t in TAGS] + [f"ns=2;s=Bench.S{i:05d}" for i in range(3)])
    port, before = sim.port, sim.values_written
    started = time.perf_counter()
    await sim.stop()
    assert time.perf_counter() - started < 0.5
    await sim.start()
    assert sim.port == port and sim.values_written >= before
    result = await opcua.test_connection(opcua_config_for(sim), tmp_path)
    assert result.success, result.message
    async with opcua.open_client(opcua_config_for(sim), tmp_path) as client:
        now = datetime.now(timezone.utc)
        again = await _history(client, [node], now - timedelta(minutes=5), now)
    assert len(again) >= len(history)  # history survived the restart
