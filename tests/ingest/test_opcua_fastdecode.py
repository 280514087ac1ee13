"""The fast DataChangeNotification decoder gives what asyncua's own decoder gives, or leaves the message to it."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

from ingest import opcua_fastdecode
from ingest.opcua_fastdecode import FastDataChange

NOW = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=timezone.utc)
SCALARS = [
    (ua.VariantType.Double, lambda r: r.uniform(-1e9, 1e9)), (ua.VariantType.Float, lambda r: float(r.randint(-5000, 5000))),
    (ua.VariantType.Int32, lambda r: r.randint(-2**31, 2**31 - 1)), (ua.VariantType.UInt32, lambda r: r.randint(0, 2**32 - 1)),
    (ua.VariantType.Int16, lambda r: r.randint(-2**15, 2**15 - 1)), (ua.VariantType.UInt16, lambda r: r.randint(0, 65535)),
    (ua.VariantType.Int64, lambda r: r.randint(-2**63, 2**63 - 1)), (ua.VariantType.UInt64, lambda r: r.randint(0, 2**64 - 1)),
    (ua.VariantType.SByte, lambda r: r.randint(-128, 127)), (ua.VariantType.Byte, lambda r: r.randint(0, 255)),
    (ua.VariantType.Boolean, lambda r: r.random() < 0.5),
]


def _message(values: list[ua.DataValue]) -> bytes:
    items = [ua.MonitoredItemNotification(ClientHandle=i + 1, Value=v) for i, v in enumerate(values)]
    msg = ua.NotificationMessage(SequenceNumber=7, PublishTime=NOW,
                                 NotificationData=[ua.DataChangeNotification(MonitoredItems=items)])
    return struct_to_binary(ua.PublishResult(SubscriptionId=3, NotificationMessage=msg))


def _decode(blob: bytes, fast: bool):
    saved = opcua_fastdecode.ua_binary.from_binary
    try:
        if fast:
            opcua_fastdecode.install()
        else:
            opcua_fastdecode.ua_binary.from_binary = opcua_fastdecode._original_from_binary
        return struct_from_binary(ua.PublishResult, Buffer(blob)).NotificationMessage.NotificationData[0]
    finally:
        opcua_fastdecode.ua_binary.from_binary = saved


def test_fast_decoding_matches_asyncua_value_for_value() -> None:
    r = random.Random(20261206)
    values = []
    for k in range(2000):
        vtype, make = SCALARS[k % len(SCALARS)]
        status = r.choice([0, 0, 0, ua.StatusCodes.Uncertain, ua.StatusCodes.BadSensorFailure, ua.StatusCodes.GoodClamped])
        stamp = NOW - timedelta(microseconds=r.randint(0, 10**9))
        dv = ua.DataValue(Value=ua.Variant(make(r), vtype) if k % 97 else None)   # now and then no value
        dv.StatusCode = ua.StatusCode(status)
        dv.SourceTimestamp = stamp if k % 13 else None
        dv.ServerTimestamp = stamp + timedelta(milliseconds=3) if k % 11 else None
        values.append(dv)
    blob = _message(values)
    fast = _decode(blob, fast=True)
    slow = _decode(blob, fast=False)
    assert isinstance(fast, FastDataChange) and not isinstance(slow, FastDataChange)
    assert len(fast.items) == len(slow.MonitoredItems) == 2000
    for (handle, code, stamp, value), item in zip(fast.items, slow.MonitoredItems):
        dv = item.Value
        assert handle == item.ClientHandle
        assert code == (dv.StatusCode.value if dv.StatusCode is not None else 0)
        assert stamp == (dv.SourceTimestamp or dv.ServerTimestamp)
        raw = dv.Value.Value if dv.Value is not None else None
        if isinstance(raw, bool):
            raw = 1.0 if raw else 0.0
        assert value == raw, (dv.Value.VariantType if dv.Value else None, value, raw)
    assert fast.MonitoredItems == slow.MonitoredItems   # other code still sees asyncua's objects


@pytest.mark.parametrize("odd", ["string", "array", "picoseconds", "datetime"])
def test_other_shapes_are_left_to_asyncua(odd: str) -> None:
    dv = ua.DataValue(Value=ua.Variant(1.5, ua.VariantType.Double))
    dv.SourceTimestamp = NOW
    if odd == "string":
        dv.Value = ua.Variant("Running", ua.VariantType.String)
    elif odd == "array":
        dv.Value = ua.Variant([1.0, 2.0], ua.VariantType.Double)
    elif odd == "picoseconds":
        dv.SourcePicoseconds = 5
    else:
        dv.Value = ua.Variant(NOW, ua.VariantType.DateTime)
    blob = _message([ua.DataValue(Value=ua.Variant(2.0, ua.VariantType.Double)), dv])
    decoded = _decode(blob, fast=True)
    assert not isinstance(decoded, FastDataChange)
    assert decoded == _decode(blob, fast=False)


def test_the_worker_makes_the_same_rows_from_either_decoding(tmp_path) -> None:
    import uuid

    from ingest.health import IntegrationHealth
    from ingest.store import IntegrationSpec, SignalSpec
    from ingest.workers.opcua import OpcUaWorker
    from tests.fix_ingest import ingest_settings

    r = random.Random(7)
    values = []
    for k in range(500):
        vtype, make = SCALARS[k % len(SCALARS)]
        dv = ua.DataValue(Value=ua.Variant(make(r), vtype) if k % 31 else None)
        dv.StatusCode = ua.StatusCode(r.choice([0, ua.StatusCodes.Uncertain, ua.StatusCodes.BadCommunicationError]))
        dv.SourceTimestamp = datetime.now(timezone.utc) - timedelta(seconds=r.randint(0, 100))
        values.append(dv)
    values[3].SourceTimestamp = datetime(1999, 1, 1, tzinfo=timezone.utc)   # out of range: refused either way
    blob = _message(values)

    class Sink:
        def __init__(self) -> None:
            self.rows = []

        def put_or_spool(self, rows, kind, source) -> bool:
            self.rows.extend(rows)
            return True

    spec = IntegrationSpec(uuid.uuid4(), 1, "opcua", "t", {"endpoint_url": "opc.tcp://127.0.0.1:4840"}, {}, "v",
                           [SignalSpec(i + 1, f"ns=2;s=S{i}") for i in range(500)])
    results = []
    for fast in (True, False):
        sink = Sink()
        worker = OpcUaWorker(spec, spec.config, settings=ingest_settings(tmp_path), writer=sink,
                             health=IntegrationHealth(spec.tenant_id, 1, "w"), store=None)
        worker._handles = {i + 1: i + 1 for i in range(500)}
        notif = _decode(blob, fast=fast)
        result = ua.PublishResult(SubscriptionId=3, NotificationMessage=ua.NotificationMessage(NotificationData=[notif]))
        worker._on_publish(result)
        results.append((sink.rows, worker.health.rejected_total))
    assert results[0] == results[1] and len(results[0][0]) > 400 and results[0][1] > 0
