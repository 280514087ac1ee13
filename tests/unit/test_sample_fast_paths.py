"""The per-value fast paths give exactly what the general code gives.

A PI page's good numbers skip ``sample_from_value`` and the workers' finite floats skip
``make_sample``; each is checked here against the general path on the shapes a source can
send, the unusual ones included (the PI stamp's caches: tests/connectors/test_pi.py)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from uuid import uuid4

import msgspec
import pytest

from ingest.samples import QUALITY_CODES, Rejected, make_sample
from ingest.workers.base import BaseWorker
from optria.connectors.base import Sample as SourceSample
from optria.connectors.pi import (_RECORDED, PiClient, _append_new, _RecordedBody, parse_pi_time, pi_ticks,
                                  sample_from_value)
from optria.demo.plant import _noise

STAMP = "2026-12-07T02:30:01.1234567Z"
FALLBACK = datetime(2026, 12, 7, 3, tzinfo=timezone.utc)

PI_VALUES = [
    {"Timestamp": STAMP, "Value": 12.5, "UnitsAbbreviation": "bar", "Good": True, "Questionable": False,
     "Substituted": False, "Annotated": False},
    {"Timestamp": STAMP, "Value": 12.5, "UnitsAbbreviation": "", "Good": True},
    {"Timestamp": STAMP, "Value": 12, "Good": True},
    {"Timestamp": STAMP, "Value": 12.5, "Good": True, "Questionable": True},
    {"Timestamp": STAMP, "Value": 12.5, "Good": True, "Substituted": True},
    {"Timestamp": STAMP, "Value": 12.5, "Good": False},
    {"Timestamp": STAMP, "Value": 12.5},
    {"Timestamp": STAMP, "Value": 12.5, "Good": True, "Errors": ["I/O Timeout"]},
    {"Timestamp": STAMP, "Value": 12.5, "Good": True, "WebException": {"StatusCode": 502, "Errors": []}},
    {"Timestamp": STAMP, "Value": {"Name": "Running", "Value": 1, "IsSystem": False}, "Good": True},
    {"Timestamp": STAMP, "Value": {"Name": "Pt Created", "Value": -11, "IsSystem": True}, "Good": False},
    {"Timestamp": STAMP, "Value": "text", "Good": True},
    {"Timestamp": STAMP, "Value": True, "Good": True},
    {"Timestamp": STAMP, "Value": float("nan"), "Good": True},
    {"Timestamp": STAMP, "Value": None, "Good": True},
    {"Timestamp": STAMP, "Value": 12.5, "Good": "yes"},
]


def _same(a: SourceSample, b: SourceSample) -> bool:
    fields = ("signal_id", "time", "quality", "state", "eng_unit", "error")
    if any(getattr(a, f) != getattr(b, f) for f in fields):
        return False
    return (a.value is None and b.value is None) or a.value == b.value or (math.isnan(a.value) and math.isnan(b.value))


@pytest.mark.parametrize("obj", PI_VALUES, ids=range(len(PI_VALUES)))
def test_a_pi_value_maps_as_the_general_mapping_does(obj: dict) -> None:
    out: list[SourceSample] = []
    _append_new("W1", [obj], None, out, FALLBACK)
    expected = sample_from_value("W1", obj, fallback_time=FALLBACK, moment=parse_pi_time(STAMP))
    assert len(out) == 1 and _same(out[0], expected), (out, expected)

    # the same value in a recorded answer, decoded typed (JSON has no NaN: it travels as null)
    raw = msgspec.json.encode({"Links": {}, "Items": [{"WebId": "W1", "Name": "P", "Items": [obj]}]})
    typed = _RECORDED.decode(raw)
    assert isinstance(typed, _RecordedBody)
    plain = msgspec.json.decode(raw)["Items"][0]["Items"][0]
    out = []
    _append_new("W1", typed.plain()["Items"][0]["Items"], None, out, FALLBACK)
    expected = sample_from_value("W1", plain, fallback_time=FALLBACK, moment=parse_pi_time(STAMP))
    assert len(out) == 1 and _same(out[0], expected), (out, expected)


def test_typed_and_plain_answers_page_alike() -> None:
    """Boundary values at or before ``after`` are dropped and the last stamp returned, either way."""
    stamps = ["2026-12-07T02:30:01.1Z", "2026-12-07T02:30:01.2Z", "2026-12-07T02:30:01.3Z"]
    values = [{"Timestamp": t, "Value": float(i), "Good": True} for i, t in enumerate(stamps)]
    values.insert(2, {"Timestamp": "2026-12-07T02:30:01.25Z", "Value": 5, "Good": True})
    after = pi_ticks(stamps[0])
    raw = msgspec.json.encode({"Items": [{"WebId": "W1", "Items": values}]})
    results = []
    for items in (msgspec.json.decode(raw)["Items"][0]["Items"], _RECORDED.decode(raw).plain()["Items"][0]["Items"]):
        out: list[SourceSample] = []
        last = _append_new("W1", items, after, out, FALLBACK)
        results.append(([(s.time, s.value) for s in out], last))
    assert results[0] == results[1]
    assert results[0][1] == (stamps[2], pi_ticks(stamps[2])) and len(results[0][0]) == 3
    only_old = msgspec.json.encode({"Items": [{"WebId": "W1", "Items": values[:1]}]})
    out = []
    assert _append_new("W1", _RECORDED.decode(only_old).plain()["Items"][0]["Items"], after, out, FALLBACK) \
        == (stamps[0], after) and not out


@pytest.mark.parametrize("body", [
    {"Items": [{"WebId": "W1", "Items": [{"Timestamp": STAMP, "Value": 1.0}, 7]}]},
    {"Items": [{"WebId": "W1", "Items": "none"}]},
    {"Items": ["W1"]},
    {"Items": {"W1": []}},
    [1, 2],
])
def test_an_answer_of_another_shape_is_read_as_plain_json(body) -> None:
    raw = msgspec.json.encode(body)
    client = PiClient({"base_url": "https://pi.invalid/piwebapi"})
    assert client._decode(raw, "application/json", 200, "streamsets/recorded", _RECORDED) == body


class _Health:
    def __init__(self) -> None:
        self.reasons: list[tuple[str, int | None]] = []

    def reject(self, reason: str, n: int = 1, *, signal_id: int | None = None, detail: str | None = None) -> None:
        self.reasons.append((reason, signal_id))


def test_a_worker_converts_as_make_sample_does() -> None:
    now = datetime.now(timezone.utc)
    naive = now.replace(tzinfo=None)
    cases = [
        (1.5, now, "good"), (1.5, now, "questionable"), (1.5, now, "bad"), (2, now, "good"), (True, now, "good"),
        (float("nan"), now, "good"), (float("inf"), now, "good"), (float("-inf"), now, "good"), (None, now, "good"),
        (None, now, "bad"), (1.5, naive, "good"), (1.5, now + timedelta(minutes=11), "good"),
        (1.5, now + timedelta(minutes=9), "good"), (1.5, datetime(1999, 12, 31, tzinfo=timezone.utc), "good"),
        (1.5, now - timedelta(days=3651), "good"), (1.5, datetime(2000, 1, 1, tzinfo=timezone.utc), "good"),
        (-0.0, now, "good"), (1e308, now, "good"),
    ]
    tenant = uuid4()
    health = _Health()
    worker = SimpleNamespace(signal_by_external={"n": 7}, spec=SimpleNamespace(tenant_id=tenant, id=1), health=health)
    samples = [SourceSample(signal_id="n", time=t, value=v, quality=q) for v, t, q in cases]
    rows = BaseWorker.convert(worker, samples)  # type: ignore[arg-type]

    expected, reasons = [], []
    for v, t, q in cases:
        try:
            expected.append(make_sample(tenant, 7, t, v, QUALITY_CODES[q], now))
        except Rejected as exc:
            reasons.append((exc.reason, 7))
    assert rows == expected
    assert [type(r.value) for r in rows] == [type(r.value) for r in expected]
    assert health.reasons == reasons
    assert {r for r, _ in reasons} == {"nan_or_infinite", "missing_value", "timestamp_out_of_range"}


def test_plant_noise_is_uniform_and_a_function_of_tag_and_millisecond() -> None:
    values = [_noise("Site.Unit.P-1.Vibration", 1_765_000_000 + i / 10) for i in range(20_000)]
    assert all(-1.0 <= v < 1.0 for v in values)
    assert abs(sum(values) / len(values)) < 0.02
    assert abs(sum(v * v for v in values) / len(values) - 1 / 3) < 0.02
    assert values[5] == _noise("Site.Unit.P-1.Vibration", 1_765_000_000 + 5 / 10)
    assert values[5] != _noise("Site.Unit.P-2.Vibration", 1_765_000_000 + 5 / 10)
