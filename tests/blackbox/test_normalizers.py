"""OPC-UA Alarms & Conditions and SQL-source rows → events; malformed records rejected and counted."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from optria.blackbox.events import EventRecord, MalformedRecord, validate
from optria.blackbox.normalizers import SourceContext, normalize_all, opcua_event, sql_event
from optria.blackbox.recording import Rejected, record
from optria.db import Database
from tests.blackbox.arrange import make_plant, rows

TENANT = uuid.uuid4()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
CTX = SourceContext(TENANT, integration_id=7, assets={"ns=2;s=P-101": (11, 1, 2), "P-101": (11, 1, 2)}, site_id=1)


class LocalizedText:
    def __init__(self, text: str) -> None:
        self.Text = text


def alarm(**fields) -> dict:
    base = {"EventId": b"\x01\x02", "EventType": "ns=0;i=2955", "SourceNode": "ns=2;s=P-101", "SourceName": "P-101",
            "Time": NOW, "Message": LocalizedText("Bearing temperature HiHi"), "Severity": 900,
            "ConditionName": "TempHiHi", "ActiveState/Id": True, "AckedState/Id": False, "Retain": True}
    base.update(fields)
    return base


def test_opcua_active_alarm() -> None:
    e = opcua_event(alarm(), CTX)
    assert (e.source_system, e.source_type, e.severity, e.event_category) == ("opcua", "opcua_alarm_active", "critical",
                                                                               "alarm")
    assert e.summary == "Bearing temperature HiHi" and e.source_id == "ev:0102"
    assert (e.asset_id, e.site_id, e.unit_id, e.integration_id) == (11, 1, 2, 7)
    assert e.alarm_key == "opcua:7:ns=2;s=P-101:TempHiHi"
    assert e.payload["opcua_severity"] == 900 and e.payload["condition"] == "TempHiHi"


def test_opcua_acknowledged_inactive_failure_and_plain_events() -> None:
    ack = opcua_event(alarm(EventId=b"\x03", **{"AckedState/Id": True, "ClientUserId": "op1"}), CTX)
    assert (ack.source_type, ack.severity, ack.event_category, ack.actor, ack.alarm_key) == (
        "opcua_alarm_acknowledged", "info", "operator_action", "op1", None)
    gone = opcua_event(alarm(EventId=b"\x04", **{"ActiveState/Id": False}), CTX)
    assert (gone.source_type, gone.severity, gone.alarm_key) == ("opcua_alarm_inactive", "info", None)
    failure = opcua_event({"EventId": "f1", "EventType": "i=2131", "SourceName": "Unknown drive", "Time": NOW,
                           "Message": "Drive fault", "Severity": 700}, CTX)
    assert (failure.source_type, failure.event_category, failure.severity) == ("opcua_device_failure", "failure", "high")
    assert failure.asset_id is None and failure.site_id == 1     # unknown source: kept under its site/integration
    plain = opcua_event({"EventId": "p1", "SourceName": "P-101", "Time": NOW.replace(tzinfo=None), "Message": "Started",
                         "Severity": 100}, CTX)
    assert (plain.source_type, plain.event_category, plain.asset_id) == ("opcua_event", "process", 11)
    assert plain.event_time.tzinfo is not None


@pytest.mark.parametrize("raw, reason", [
    (alarm(EventId=None), "no_event_id"),
    (alarm(Time=None), "bad_time"),
    (alarm(Time="yesterday"), "bad_time"),
    (alarm(Severity=0), "bad_severity"),
    (alarm(Severity=5000), "bad_severity"),
    (alarm(Message=None, ConditionName=None, SourceName=None), "no_summary"),
    (["not", "a", "mapping"], "not_a_record"),
])
def test_opcua_malformed(raw, reason) -> None:
    with pytest.raises(MalformedRecord) as err:
        opcua_event(raw, CTX)
    assert err.value.reason == reason


def test_sql_rows() -> None:
    ctx = SourceContext(TENANT, integration_id=9, assets={"P-101": (11, 1, 2)}, site_id=1, timezone=ZoneInfo("Asia/Riyadh"))
    e = sql_event({"ID": 42, "Event_Time": "2026-03-01 15:00:00", "Priority": "Fatal", "Message": "Pump tripped",
                   "Category": "trip", "Equipment": "P-101", "Operator": "khalid", "shift": "B", "reading": 12.5}, ctx)
    assert e.event_time == NOW                          # naive 15:00 Riyadh = 12:00 UTC
    assert (e.severity, e.event_category, e.asset_id, e.actor, e.source_id) == ("critical", "failure", 11, "khalid", "42")
    assert e.payload == {"shift": "B", "reading": 12.5}
    unknown = sql_event({"event_id": "x", "time": NOW, "severity": 300, "summary": "High level", "category": "alarm",
                         "asset": "T-9", "count": 3}, ctx)
    assert unknown.asset_id is None and unknown.site_id == 1 and unknown.payload["unknown_asset"] == "T-9"
    assert unknown.alarm_key == "sql:9:T-9:high level" and unknown.repeat_count == 3 and unknown.severity == "low"


@pytest.mark.parametrize("row, reason", [
    ({"time": NOW, "severity": "high", "summary": "x"}, "no_source_id"),
    ({"id": 1, "severity": "high", "summary": "x"}, "bad_time"),
    ({"id": 1, "time": "13/13/2026", "severity": "high", "summary": "x"}, "bad_time"),
    ({"id": 1, "time": NOW, "severity": "purple", "summary": "x"}, "bad_severity"),
    ({"id": 1, "time": NOW, "severity": "high", "summary": "  "}, "no_summary"),
    ({"id": 1, "time": NOW, "severity": "high", "summary": "x", "count": "many"}, "bad_repeat_count"),
    ("not a row", "not_a_record"),
])
def test_sql_malformed(row, reason) -> None:
    with pytest.raises(MalformedRecord) as err:
        sql_event(row, CTX)
    assert err.value.reason == reason


def test_validation_flags_time_and_rejects_bad_payloads() -> None:
    def ev(**kw) -> EventRecord:
        base = dict(tenant_id=TENANT, source_system="sql", source_type="sql_event", source_id="1", event_time=NOW,
                    severity="low", event_category="process", summary="  two   words ")
        base.update(kw)
        return EventRecord(**base)

    assert validate(ev(), NOW).time_flag is None and validate(ev(), NOW).summary == "two words"
    assert validate(ev(event_time=NOW + timedelta(hours=1)), NOW).time_flag == "future"
    assert validate(ev(event_time=NOW - timedelta(days=30)), NOW).time_flag == "far_past"
    assert validate(ev(event_time=NOW + timedelta(minutes=4)), NOW).time_flag is None   # clock drift tolerated
    for bad, reason in [(dict(payload=[1, 2]), "bad_payload"), (dict(payload={"x": float("nan")}), "bad_payload"),
                        (dict(payload={"x": "y" * 20_000}), "payload_too_large"), (dict(severity="huge"), "bad_severity"),
                        (dict(event_category="misc"), "bad_category"), (dict(event_time=NOW.replace(tzinfo=None)), "bad_time"),
                        (dict(asset_id=-1), "bad_reference"), (dict(summary=""), "no_summary")]:
        with pytest.raises(MalformedRecord) as err:
            validate(ev(**bad), NOW)
        assert err.value.reason == reason, bad


async def test_malformed_records_are_rejected_and_counted(db: Database, owner_conn) -> None:
    p = make_plant(owner_conn)
    asset = p.assets[0]
    ctx = SourceContext(p.tenant_id, integration_id=p.integration_id, site_id=p.site_id, assets={"P-101": (asset, p.site_id, p.unit_id)})
    now = datetime.now(timezone.utc)
    raws = [
        {"id": "a1", "time": now, "severity": "high", "summary": "Level high", "asset": "P-101"},
        {"id": "a2", "time": now, "severity": "high", "summary": "No asset known", "asset": "ZZZ"},
        {"id": "a3", "time": now, "severity": "bogus", "summary": "bad"},
        {"id": "a4", "severity": "high", "summary": "no time"},
        {"id": "a5", "time": now, "severity": "high", "summary": "huge", "blob": "x" * 20_000},
        {"id": "a6", "time": now + timedelta(days=3), "severity": "low", "summary": "clock ahead"},
    ]
    async with db.tenant(p.tenant_id) as conn:   # a tenant transaction: RLS holds the rows to this tenant
        out = await record(conn, normalize_all(raws, sql_event, ctx, "sql"))
    assert (out.inserted, out.rejected) == (3, 3)
    async with db.tenant(p.tenant_id) as conn:   # replaying the same rows adds nothing, but counts the bad ones again
        again = await record(conn, normalize_all(raws, sql_event, ctx, "sql"))
    assert (again.inserted, again.duplicates, again.rejected) == (0, 3, 3)
    stored = rows(owner_conn, "SELECT source_id, asset_id, site_id, time_flag FROM industrial_events WHERE tenant_id = %s "
                              "ORDER BY source_id", p.tenant_id)
    assert stored == [("a1", asset, p.site_id, None), ("a2", None, p.site_id, None), ("a6", None, p.site_id, "future")]
    counts = dict(rows(owner_conn, "SELECT reason, count FROM blackbox_rejections WHERE tenant_id = %s", p.tenant_id))
    assert counts == {"bad_severity": 2, "bad_time": 2, "payload_too_large": 2}
    assert isinstance(normalize_all([None], sql_event, ctx, "sql")[0], Rejected)
