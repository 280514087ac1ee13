"""The PI Web API connector against the real simulator over HTTP (no mocks).

Values are checked against the demo plant itself: the simulator stamps each point on a grid
``k * period + phase`` (100 ns ticks) and serves ``plant.value(tag, ticks / 1e7)``, so a test
can recompute every number and every timestamp it receives.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import msgspec
import pytest

from optria.config import Settings
from optria.connectors import pi
from optria.connectors.base import ConnectorError, Sample
from optria.demo.pi_server import PiWebApiSimulator
from optria.demo.plant import TAGS_BY_PATH
from tests.fix_pi import (  # noqa: F401  (fixtures are used by name)
    PI_PASSWORD,
    PI_USER,
    closed_port,
    pi_config,
    pi_config_for,
    pi_sim,
    pi_sim_factory,
    self_signed_context,
    silent_server,
)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
P101 = "RasTanura.CrudeUnit.P-101"
SEVEN_DIGITS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")


def _ticks(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 10


def _grid_tick(sim: PiWebApiSimulator, name: str, moment: datetime) -> int:
    """The exact event tick behind a microsecond-truncated sample time (must be within 1 µs)."""
    phase, period = sim.point(name).phase_ticks, sim.period_ticks
    approx = _ticks(moment)
    exact = round((approx - phase) / period) * period + phase
    assert 0 <= exact - approx < 10, (exact, approx)
    return exact


def _auth_header(user: str = PI_USER, password: str = PI_PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def _raw_get(sim: PiWebApiSimulator, path: str, params: list[tuple[str, str]] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession(headers=_auth_header()) as session:
        async with session.get(sim.base_url + path, params=params or []) as response:
            return response.status, await response.json()


def _settings(pi_base_url: str) -> Settings:
    return Settings(PI_BASE_URL=pi_base_url)


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant_url", "env_url", "expected", "source"),
    [
        ("http://tenant-pi/piwebapi", "http://env-pi/piwebapi", "http://tenant-pi/piwebapi", "integration"),
        ("http://tenant-pi/piwebapi/", "", "http://tenant-pi/piwebapi", "integration"),
        (None, "http://env-pi/piwebapi", "http://env-pi/piwebapi", "environment"),
        ("   ", "http://env-pi/piwebapi", "http://env-pi/piwebapi", "environment"),
        (None, "", None, None),
    ],
)
def test_merge_config_base_url_precedence(tenant_url: str | None, env_url: str, expected: str | None,
                                          source: str | None) -> None:
    config = {} if tenant_url is None else {"base_url": tenant_url}
    merged = pi.merge_config(config, _settings(env_url))
    assert merged["base_url"] == expected
    assert merged["base_url_source"] == source
    assert pi.merge_config(merged, _settings(env_url)) == merged  # idempotent


def test_merge_config_defaults_flags_and_userinfo() -> None:
    merged = pi.merge_config({"base_url": "https://pi/piwebapi"}, None)
    assert merged["auth_type"] == "anonymous" and merged["verify_tls"] is True
    assert merged["timeout_s"] == 10.0 and merged["data_server"] is None and merged["poll_interval_s"] == 5.0

    merged = pi.merge_config({"base_url": "https://pi/piwebapi", "username": "u", "password": "p",
                              "verify_tls": "false", "timeout_s": "0.01", "data_server": " PISRV "}, None)
    assert merged["auth_type"] == "basic" and merged["verify_tls"] is False
    assert merged["timeout_s"] == 0.5 and merged["data_server"] == "PISRV"

    merged = pi.merge_config({"base_url": f"http://{PI_USER}:{PI_PASSWORD}@pi:8443/piwebapi"}, None)
    assert merged["base_url"] == "http://pi:8443/piwebapi"
    assert (merged["auth_type"], merged["username"], merged["password"]) == ("basic", PI_USER, PI_PASSWORD)
    shown = pi.public_config(merged)
    assert shown["password_set"] is True and "password" not in shown
    assert PI_PASSWORD not in msgspec.json.encode(shown).decode()


async def test_no_endpoint_invalid_endpoint_and_invalid_config() -> None:
    result = await pi.test_connection(pi.merge_config({}, _settings("")))
    assert not result.success and result.details["reason"] == "no_endpoint"
    for url in ("not a url", "ftp://pi/piwebapi", "http:///piwebapi"):
        result = await pi.test_connection({"base_url": url})
        assert result.details["reason"] == "invalid_endpoint", url
    result = await pi.test_connection({"base_url": "http://pi/piwebapi", "auth_type": "kerberos"})
    assert result.details["reason"] == "invalid_config"


# -- connection test ---------------------------------------------------------------------------


async def test_connection_reports_product_and_data_servers(pi_sim: PiWebApiSimulator,
                                                           pi_config: dict[str, Any]) -> None:
    result = await pi.test_connection(pi_config)
    assert result.success, result.message
    details = result.details
    assert details["reason"] == "ok"
    assert details["product_title"] == "PI Web API 2023 SP1" and details["product_version"]
    assert details["data_servers"] == ["OPTRIA-PI-DEMO"] and details["data_server"] == "OPTRIA-PI-DEMO"
    assert 0 < details["round_trip_ms"] < 5000
    assert details["base_url"] == pi_sim.base_url
    assert "PI Web API 2023 SP1" in result.message


async def test_wrong_password_is_unauthorized(pi_config: dict[str, Any]) -> None:
    result = await pi.test_connection({**pi_config, "password": "wrong-secret-77"})
    assert not result.success
    assert result.details["reason"] == "unauthorized" and result.details["status"] == 401
    assert "wrong-secret-77" not in msgspec.json.encode(result).decode()


async def test_anonymous_against_auth_server_then_anonymous_server(pi_sim: PiWebApiSimulator,
                                                                   pi_sim_factory) -> None:
    result = await pi.test_connection({"base_url": pi_sim.base_url})
    assert result.details["reason"] == "unauthorized"
    assert "requires authentication" in result.message

    open_sim = await pi_sim_factory(users=None)
    result = await pi.test_connection({"base_url": open_sim.base_url, "auth_type": "anonymous"})
    assert result.success and result.details["auth_type"] == "anonymous"


async def test_outages_html_500_json_503_and_html_200(pi_sim_factory) -> None:
    sim = await pi_sim_factory()
    config = pi_config_for(sim)

    sim.start_outage(30, status=500, html=True)
    result = await pi.test_connection(config)
    assert result.details["reason"] == "server_error" and result.details["status"] == 500
    assert result.details["content_type"] == "text/html"

    sim.start_outage(30, status=200, html=True)   # a proxy's login page
    result = await pi.test_connection(config)
    assert result.details["reason"] == "not_pi_web_api" and "HTML" in result.message

    async with aiohttp.ClientSession() as session:
        async with session.post(sim.root_url + "/sim/outage", json={"seconds": 30, "status": 503}) as response:
            assert response.status == 200 and (await response.json())["outage"]["status"] == 503
        result = await pi.test_connection(config)
        assert result.details["reason"] == "server_error" and result.details["status"] == 503
        async with session.post(sim.root_url + "/sim/outage", json={"seconds": 0}) as response:
            assert (await response.json())["outage"] is None
    assert (await pi.test_connection(config)).success


async def test_address_that_is_not_pi_web_api(pi_sim: PiWebApiSimulator) -> None:
    result = await pi.test_connection({"base_url": pi_sim.root_url + "/sim"})
    assert result.details["reason"] == "not_pi_web_api" and result.details["status"] == 404


async def test_connection_refused_fast(closed_port: int) -> None:
    started = time.monotonic()
    result = await pi.test_connection({"base_url": f"http://127.0.0.1:{closed_port}/piwebapi"}, timeout=5)
    assert result.details["reason"] == "connection_refused"
    assert time.monotonic() - started < 2


async def test_dns_failure_fast() -> None:
    started = time.monotonic()
    result = await pi.test_connection({"base_url": "http://no-such-host.invalid/piwebapi"}, timeout=5)
    assert result.details["reason"] == "dns_failure", result.message
    assert "no-such-host.invalid" in result.message
    assert time.monotonic() - started < 5


async def test_timeout_is_bounded(silent_server: str) -> None:
    started = time.monotonic()
    result = await pi.test_connection({"base_url": silent_server, "timeout_s": 30}, timeout=1)
    elapsed = time.monotonic() - started
    assert result.details["reason"] == "timeout"
    assert 0.9 <= elapsed < 2.5


async def test_self_signed_tls_fails_unless_verification_is_off(pi_sim_factory, tmp_path) -> None:
    sim = await pi_sim_factory(ssl_context=self_signed_context(tmp_path))
    assert sim.base_url.startswith("https://")
    result = await pi.test_connection(pi_config_for(sim))
    assert result.details["reason"] == "tls_error", result.message
    result = await pi.test_connection(pi_config_for(sim, verify_tls=False))
    assert result.success and result.details["verify_tls"] is False


async def test_unknown_data_server(pi_config: dict[str, Any]) -> None:
    result = await pi.test_connection({**pi_config, "data_server": "NOPE"})
    assert result.details["reason"] == "data_server_not_found" and "OPTRIA-PI-DEMO" in result.message
    with pytest.raises(ConnectorError) as info:
        await pi.search_points(pi_config, "*", data_server="NOPE")
    assert info.value.code == "data_server_not_found"


# -- point search ------------------------------------------------------------------------------


async def test_search_points_filter_and_fields(pi_sim: PiWebApiSimulator, pi_config: dict[str, Any]) -> None:
    items = await pi.search_points(pi_config, f"{P101}.*")
    names = [i.name for i in items]
    assert names == sorted(f"{P101}.{r}" for r in ("Flow", "Power", "Pressure", "Running", "Temperature",
                                                   "Vibration"))
    by_name = {i.name: i for i in items}
    vibration, running = by_name[f"{P101}.Vibration"], by_name[f"{P101}.Running"]
    assert vibration.id == pi_sim.web_id(f"{P101}.Vibration")
    assert vibration.path == f"\\\\OPTRIA-PI-DEMO\\{P101}.Vibration"
    assert (vibration.data_type, vibration.eng_unit, vibration.is_signal) == ("Float32", "mm/s", True)
    assert (running.data_type, running.eng_unit) == ("Digital", None)

    assert [i.name for i in await pi.browse(pi_config, "rastanura.crudeunit.p-10?.vib*")] == [
        "RasTanura.CrudeUnit.P-101.Vibration", "RasTanura.CrudeUnit.P-102.Vibration"]
    assert await pi.search_points(pi_config, "No.Such.Point*") == []


async def test_search_points_paging(pi_sim: PiWebApiSimulator, pi_config: dict[str, Any]) -> None:
    everything = await pi.search_points(pi_config, "*", max_count=1000)
    assert len(everything) == len(pi_sim.points)
    async with pi.PiClient(pi_config) as client:
        pages = [await client.search_points("*", start, 20) for start in range(0, len(everything), 20)]
    assert [len(p) for p in pages[:-1]] == [20] * (len(pages) - 1) and 0 < len(pages[-1]) <= 20
    assert [i.id for page in pages for i in page] == [i.id for i in everything]
    assert len({i.id for i in everything}) == len(everything)


# -- current values ----------------------------------------------------------------------------


async def test_read_current_numbers_and_digital_state(pi_sim: PiWebApiSimulator, pi_config: dict[str, Any]) -> None:
    names = [f"{P101}.Vibration", f"{P101}.Pressure", f"{P101}.Running"]
    before = datetime.now(timezone.utc)
    samples = await pi.read_current(pi_config, [pi_sim.web_id(n) for n in names])
    after = datetime.now(timezone.utc)
    assert [s.signal_id for s in samples] == [pi_sim.web_id(n) for n in names]
    for name, sample in zip(names, samples, strict=True):
        assert sample.error is None and sample.quality == "good"
        assert sample.time.tzinfo is not None and sample.time.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=pi_sim.scan_period_s + 0.1) <= sample.time <= after
        exact = _grid_tick(pi_sim, name, sample.time)
        assert sample.value == pi_sim.plant.value(TAGS_BY_PATH[name], exact / 1e7)
    vibration, pressure, running = samples
    assert (vibration.eng_unit, pressure.eng_unit) == ("mm/s", "bar")
    assert (running.value, running.state, running.eng_unit) == (1.0, "Running", None)


async def test_system_states_are_bad_with_state_name(pi_sim: PiWebApiSimulator, pi_config: dict[str, Any]) -> None:
    created, no_data = await pi.read_current(
        pi_config, [pi_sim.web_id("OPTRIA.Demo.PtCreated"), pi_sim.web_id("OPTRIA.Demo.NoData")])
    assert (created.value, created.quality, created.state, created.error) == (None, "bad", "Pt Created", None)
    assert (no_data.value, no_data.quality, no_data.state, no_data.error) == (None, "bad", "No Data", None)
    status, raw = await _raw_get(pi_sim, f"/streams/{pi_sim.web_id('OPTRIA.Demo.PtCreated')}/value")
    assert status == 200 and raw["Good"] is False
    assert raw["Value"] == {"Name": "Pt Created", "Value": 247, "IsSystem": True}


async def test_questionable_and_substituted_quality(pi_sim: PiWebApiSimulator, pi_config: dict[str, Any]) -> None:
    lab, manual = await pi.read_current(
        pi_config, [pi_sim.web_id("OPTRIA.Demo.LabDensity"), pi_sim.web_id("OPTRIA.Demo.ManualFlow")])
    assert (lab.quality, manual.quality) == ("questionable", "substituted")
    assert lab.value is not None and manual.value is not None


async def test_unknown_web_id_gives_207_and_per_item_error(pi_sim: PiWebApiSimulator,
                                                          pi_config: dict[str, Any]) -> None:
    good = pi_sim.web_id(f"{P101}.Flow")
    status, raw = await _raw_get(pi_sim, "/streamsets/value", [("webId", good), ("webId", "F1DPbogus-id")])
    assert status == 207 and raw["Items"][1]["Errors"] and "Errors" not in raw["Items"][0]
    status, raw = await _raw_get(pi_sim, "/streams/F1DPbogus-id/value")
    assert status == 404 and raw["Errors"]

    flow, bogus = await pi.read_current(pi_config, [good, "F1DPbogus-id"])
    assert flow.error is None and flow.value is not None and flow.eng_unit == "m3/h"
    assert bogus.signal_id == "F1DPbogus-id" and bogus.value is None and bogus.quality == "bad"
    assert "F1DPbogus-id" in (bogus.error or "")


async def test_error_object_inside_200(pi_sim: PiWebApiSimulator, pi_config: dict[str, Any]) -> None:
    secured, flow = pi_sim.web_id("OPTRIA.Demo.Secured"), pi_sim.web_id(f"{P101}.Flow")
    status, raw = await _raw_get(pi_sim, "/streamsets/value", [("webId", secured), ("webId", flow)])
    assert status == 200 and raw["Items"][0]["Value"]["Errors"]

    bad, good = await pi.read_current(pi_config, [secured, flow])
    assert bad.value is None and bad.quality == "bad" and "No Read Access" in (bad.error or "")
    assert good.error is None and good.value is not None


async def test_read_current_batches_at_most_100_web_ids(pi_sim: PiWebApiSimulator,
                                                        pi_config: dict[str, Any]) -> None:
    web_ids = [p.web_id for p in pi_sim.points] * 3
    pi_sim.requests.clear()
    samples = await pi.read_current(pi_config, web_ids)
    assert [s.signal_id for s in samples] == web_ids
    calls = [q for m, q in pi_sim.requests if "/streamsets/value" in q]
    assert len(calls) == -(-len(web_ids) // 100)
    assert max(q.count("webId=") for q in calls) == 100


# -- timestamps --------------------------------------------------------------------------------


def test_seven_digit_timestamp_parser() -> None:
    expected = datetime(2026, 11, 25, 9, 30, 1, 123456, tzinfo=timezone.utc)
    assert pi.parse_pi_time("2026-11-25T09:30:01.1234567Z") == expected
    assert pi.pi_ticks("2026-11-25T09:30:01.1234567Z") - pi.pi_ticks("2026-11-25T09:30:01Z") == 1234567
    assert pi.parse_pi_time("2026-11-25T12:30:01.1234567+03:00") == expected
    assert pi.parse_pi_time("2026-11-25T09:30:01.123456789Z") == expected
    assert pi.parse_pi_time("2026-11-25T09:30:01Z") == expected.replace(microsecond=0)
    assert pi.parse_pi_time("2026-11-25T09:30:01.5Z").microsecond == 500000
    with pytest.raises(ValueError):
        pi.parse_pi_time("yesterday")


@pytest.mark.parametrize("text", [
    "2026-11-25T09:30:01.1234567Z", "2026-11-25T09:30:01.1234567Z",   # the second from the kept seconds
    "2026-11-25T09:30:01Z", "2026-11-25T09:30:01.5Z", "2026-11-25T09:30:01.123456789Z",
    "2026-11-25T12:30:01.1234567+03:00", "2026-11-25 09:30:01.25Z", "2026-11-25T09:30:01.25z",
    " 2026-11-25T09:30:01.25Z ", "1999-12-31T23:59:59.9999999Z", "2026-11-25T09:30:01.\u0661\u0662Z"])
def test_the_quick_stamp_parser_agrees_with_the_exact_one(text: str) -> None:
    assert pi.pi_stamp(text) == (pi.pi_ticks(text), pi.parse_pi_time(text))


@pytest.mark.parametrize("text", ["2026-11-25T09:30:01.12a4Z",
                                  "2026-13-25T09:30:01.1Z", "2026-11-25T09:30:61Z", "2026-11-25T09:30:01.Z",
                                  "yesterday-and-more-than-20Z"])
def test_the_quick_stamp_parser_refuses_what_the_exact_one_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        pi.pi_ticks(text)
    with pytest.raises(ValueError):
        pi.pi_stamp(text)


async def test_server_sends_seven_digits_and_client_keeps_them(pi_sim: PiWebApiSimulator,
                                                               pi_config: dict[str, Any]) -> None:
    web_id = pi_sim.web_id(f"{P101}.Temperature")
    status, raw = await _raw_get(pi_sim, f"/streams/{web_id}/value")
    assert status == 200 and SEVEN_DIGITS.match(raw["Timestamp"]), raw["Timestamp"]
    seconds, fraction = raw["Timestamp"][:-1].split(".")
    expected = datetime.fromisoformat(seconds).replace(tzinfo=timezone.utc) + timedelta(
        microseconds=int(fraction[:6]))
    (sample,) = await pi.read_current(pi_config, [web_id])
    assert sample.time >= expected      # the same or a later scan
    assert sample.time.microsecond == (_grid_tick(pi_sim, f"{P101}.Temperature", sample.time) // 10) % 1_000_000


# -- recorded values ---------------------------------------------------------------------------


async def test_recorded_pages_across_max_count(pi_sim: PiWebApiSimulator, pi_config: dict[str, Any]) -> None:
    name = f"{P101}.Pressure"
    point, period = pi_sim.point(name), pi_sim.period_ticks
    anchor = time.time_ns() // 100 - 3 * 3600 * 10_000_000
    first = (anchor - point.phase_ticks) // period * period + point.phase_ticks
    start = EPOCH + timedelta(microseconds=(first - 5_000_000) // 10)    # half a scan before `first`
    end = start + timedelta(seconds=2500) - timedelta(microseconds=1)    # so exactly 2,500 scans inside

    pi_sim.requests.clear()
    samples = await pi.read_recorded(pi_config, [point.web_id], start, end, max_count=1000)

    assert len(samples) == 2500
    ticks = [_grid_tick(pi_sim, name, s.time) for s in samples]
    assert ticks == [first + i * period for i in range(2500)]   # ordered, no duplicates, no gaps
    assert all(s.quality == "good" and s.error is None and s.eng_unit == "bar" for s in samples)
    tag = TAGS_BY_PATH[name]
    assert [s.value for s in samples] == [pi_sim.plant.value(tag, t / 1e7) for t in ticks]
    assert len([q for m, q in pi_sim.requests if "/streamsets/recorded" in q]) == 3


async def test_recorded_several_streams_with_errors(pi_sim: PiWebApiSimulator, pi_config: dict[str, Any]) -> None:
    names = [f"{P101}.Flow", f"{P101}.Running"]
    ids = [pi_sim.web_id(n) for n in names] + ["F1DPbogus-id", pi_sim.web_id("OPTRIA.Demo.Secured")]
    end = datetime.now(timezone.utc) - timedelta(minutes=5)
    start = end - timedelta(seconds=30)
    samples = await pi.read_recorded(pi_config, ids, start, end, max_count=7)

    by_stream: dict[str, list[Sample]] = {}
    for sample in samples:
        by_stream.setdefault(sample.signal_id, []).append(sample)
    assert list(by_stream) == ids
    for name in names:
        stream = by_stream[pi_sim.web_id(name)]
        assert len(stream) in (30, 31) and all(start <= s.time <= end for s in stream)
        assert [s.time for s in stream] == sorted({s.time for s in stream})
    assert {s.state for s in by_stream[pi_sim.web_id(names[1])]} == {"Running"}
    (bogus,) = by_stream["F1DPbogus-id"]
    (secured,) = by_stream[ids[3]]
    assert bogus.error and bogus.value is None
    assert "No Read Access" in (secured.error or "") and secured.value is None


# -- writes and CSRF ---------------------------------------------------------------------------


async def test_post_requires_x_requested_with(pi_sim: PiWebApiSimulator, pi_config: dict[str, Any]) -> None:
    body = {"1": {"Method": "GET", "Resource": pi_sim.base_url + "/system"}}
    async with aiohttp.ClientSession(headers=_auth_header()) as session:
        async with session.post(pi_sim.base_url + "/batch", json=body) as response:
            assert response.status == 403
            assert "X-Requested-With" in (await response.json())["Errors"][0]

    web_id = pi_sim.web_id(f"{P101}.Vibration")
    async with pi.PiClient(pi_config) as client:
        answer = await client.batch({**body, "2": {"Method": "GET",
                                                   "Resource": f"{pi_sim.base_url}/streams/{web_id}/value"}})
    assert answer["1"]["Status"] == 200 and answer["1"]["Content"]["ProductTitle"] == "PI Web API 2023 SP1"
    assert answer["2"]["Status"] == 200 and SEVEN_DIGITS.match(answer["2"]["Content"]["Timestamp"])


# -- fault injection ---------------------------------------------------------------------------


async def test_fault_injection_raises_vibration(pi_sim_factory) -> None:
    sim = await pi_sim_factory(scan_period_s=0.1)
    config = pi_config_for(sim)
    ids = [sim.web_id(f"{P101}.Vibration"), sim.web_id("RasTanura.CrudeUnit.P-102.Vibration")]
    normal = await pi.read_current(config, ids)
    assert all(s.value is not None and s.value < 4 for s in normal)

    async with aiohttp.ClientSession() as session:
        async with session.post(sim.root_url + "/sim/fault",
                                json={"asset": "P-101", "kind": "bearing", "ramp_s": 0.001}) as response:
            assert response.status == 200
        async with session.post(sim.root_url + "/sim/fault", json={"asset": "X-999"}) as response:
            assert response.status == 400
        await asyncio.sleep(0.3)
        faulty = await pi.read_current(config, ids)
        async with session.get(sim.root_url + "/sim/status") as response:
            assert [f["asset"] for f in (await response.json())["faults"]] == ["P-101"]
        assert faulty[0].value is not None and faulty[0].value > normal[0].value + 10
        assert faulty[1].value is not None and faulty[1].value < 4

        async with session.post(sim.root_url + "/sim/clear", json={}) as response:
            assert (await response.json())["faults"] == []
    await asyncio.sleep(0.3)
    cleared = await pi.read_current(config, ids)
    assert cleared[0].value is not None and cleared[0].value < 4


# -- secrets -----------------------------------------------------------------------------------


async def test_password_never_in_results_errors_or_logs(pi_sim: PiWebApiSimulator, closed_port: int,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-secret-77"
    configs = [
        {"base_url": pi_sim.base_url, "username": PI_USER, "password": PI_PASSWORD},
        {"base_url": f"http://{PI_USER}:{PI_PASSWORD}@127.0.0.1:{pi_sim.port}/piwebapi"},
        {"base_url": pi_sim.base_url, "username": PI_USER, "password": secret},
        {"base_url": f"http://{PI_USER}:{secret}@127.0.0.1:{closed_port}/piwebapi"},
        {"base_url": f"http://{PI_USER}:{secret}@no-such-host.invalid/piwebapi"},
    ]
    texts = []
    for config in configs:
        result = await pi.test_connection(config, timeout=3)
        texts.append(msgspec.json.encode(result).decode())
    assert [msgspec.json.decode(t)["success"] for t in texts] == [True, True, False, False, False]
    with pytest.raises(ConnectorError) as info:
        await pi.read_current(configs[2], [pi_sim.web_id(f"{P101}.Flow")])
    assert info.value.code == "unauthorized"
    texts.append(info.value.message)
    texts += [record.getMessage() + repr(record.__dict__) for record in caplog.records]
    for text in texts:
        assert PI_PASSWORD not in text and secret not in text
