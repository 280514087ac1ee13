"""The demo plant: one description shared by the OPC-UA and PI simulators and the seed.

Values are a pure function of (tag, time, active faults), so both simulators agree,
history can be recomputed for any past window, and a test can count exactly what a
simulator produced. Noise comes from a hash of (tag, time), not a random generator.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

# role -> (engineering unit, nominal, amplitude of the slow wave, noise, warn_hi, crit_hi)
ROLE_PROFILE: dict[str, tuple[str, float, float, float, float | None, float | None]] = {
    "temperature": ("degC", 72.0, 3.0, 0.4, 95.0, 110.0),
    "pressure": ("bar", 12.0, 0.6, 0.08, 16.0, 18.0),
    "vibration": ("mm/s", 2.2, 0.3, 0.12, 7.1, 11.0),
    "flow": ("m3/h", 340.0, 15.0, 2.0, None, None),
    "power": ("kW", 850.0, 40.0, 6.0, 1100.0, 1250.0),
    "running": ("", 1.0, 0.0, 0.0, None, None),
}

ROLE_AR = {
    "temperature": "درجة الحرارة",
    "pressure": "الضغط",
    "vibration": "الاهتزاز",
    "flow": "التدفق",
    "power": "القدرة",
    "running": "حالة التشغيل",
}


@dataclass(frozen=True)
class Tag:
    path: str            # "RasTanura.CrudeUnit.P-101.Vibration": stable, used as PI point name
    site: str
    unit: str
    asset: str           # asset code, e.g. "P-101"
    role: str
    eng_unit: str
    nominal: float
    amplitude: float
    noise: float
    warn_hi: float | None
    crit_hi: float | None

    @property
    def opcua_node_id(self) -> str:
        """String NodeId in the simulator's plant namespace (index resolved at run time)."""
        return self.path


@dataclass(frozen=True)
class Asset:
    code: str
    name: str
    name_ar: str
    asset_type: str
    site: str
    unit: str
    criticality: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Site:
    code: str
    name: str
    name_ar: str
    units: tuple[tuple[str, str, str], ...]  # (code, name, name_ar)


SITES: tuple[Site, ...] = (
    Site("RasTanura", "Ras Tanura Refinery", "مصفاة رأس تنورة",
         (("CrudeUnit", "Crude Distillation Unit", "وحدة تقطير الخام"),
          ("Utilities", "Utilities", "المرافق"))),
    Site("Abqaiq", "Abqaiq Processing Plant", "معمل بقيق للمعالجة",
         (("Stabilization", "Stabilization Unit", "وحدة التثبيت"),
          ("GasCompression", "Gas Compression", "ضغط الغاز"))),
)

_PUMP = ("temperature", "pressure", "vibration", "flow", "power", "running")
_COMP = ("temperature", "pressure", "vibration", "power", "running")
_HX = ("temperature", "pressure", "flow")
_TURB = ("temperature", "vibration", "power", "running")

ASSETS: tuple[Asset, ...] = (
    Asset("P-101", "Crude Charge Pump A", "مضخة شحن الخام أ", "pump", "RasTanura", "CrudeUnit", "high", _PUMP),
    Asset("P-102", "Crude Charge Pump B", "مضخة شحن الخام ب", "pump", "RasTanura", "CrudeUnit", "high", _PUMP),
    Asset("E-301", "Preheat Exchanger", "مبادل التسخين المسبق", "heat_exchanger", "RasTanura", "CrudeUnit", "medium", _HX),
    Asset("GT-401", "Gas Turbine Generator", "مولد التوربين الغازي", "turbine", "RasTanura", "Utilities", "high", _TURB),
    Asset("P-150", "Cooling Water Pump", "مضخة مياه التبريد", "pump", "RasTanura", "Utilities", "medium", _PUMP),
    Asset("K-201", "Stabilizer Overhead Compressor", "ضاغط أعلى المثبت", "compressor", "Abqaiq", "Stabilization", "high", _COMP),
    Asset("E-210", "Stabilizer Reboiler", "غلاية المثبت", "heat_exchanger", "Abqaiq", "Stabilization", "medium", _HX),
    Asset("K-301", "Export Gas Compressor", "ضاغط تصدير الغاز", "compressor", "Abqaiq", "GasCompression", "high", _COMP),
    Asset("P-310", "Condensate Pump", "مضخة المكثفات", "pump", "Abqaiq", "GasCompression", "low", _PUMP),
)


def _build_tags() -> tuple[Tag, ...]:
    tags = []
    for asset in ASSETS:
        for role in asset.roles:
            unit, nominal, amp, noise, warn, crit = ROLE_PROFILE[role]
            tags.append(Tag(
                path=f"{asset.site}.{asset.unit}.{asset.code}.{role.capitalize()}",
                site=asset.site, unit=asset.unit, asset=asset.code, role=role, eng_unit=unit,
                nominal=nominal, amplitude=amp, noise=noise, warn_hi=warn, crit_hi=crit,
            ))
    return tuple(tags)


TAGS: tuple[Tag, ...] = _build_tags()
TAGS_BY_PATH: dict[str, Tag] = {t.path: t for t in TAGS}

# Faults: "bearing" makes vibration (and a little temperature) climb over ramp_s seconds;
# "trip" stops the machine (running 0, flow/power collapse).
FAULT_KINDS = ("bearing", "trip")


@dataclass
class Fault:
    asset: str
    kind: str
    started: float          # unix seconds
    ramp_s: float = 60.0
    ended: float | None = None


@dataclass
class Plant:
    """Deterministic plant with a mutable fault schedule (thread-safe: servers read it from other threads)."""

    tags: tuple[Tag, ...] = TAGS
    faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start_fault(self, asset: str, kind: str = "bearing", at: float | None = None, ramp_s: float = 60.0) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if asset not in {a.code for a in ASSETS}:
            raise ValueError(f"unknown asset {asset!r}")
        fault = Fault(asset=asset, kind=kind, started=_now() if at is None else at, ramp_s=max(ramp_s, 0.001))
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self, asset: str | None = None, at: float | None = None) -> None:
        end = _now() if at is None else at
        with self._lock:
            for f in self.faults:
                if f.ended is None and (asset is None or f.asset == asset):
                    f.ended = end

    def active_faults(self, at: float | None = None) -> list[Fault]:
        t = _now() if at is None else at
        with self._lock:
            return [f for f in self.faults if f.started <= t and (f.ended is None or f.ended > t)]

    def value(self, tag: Tag, t: float) -> float:
        """The tag's value at unix time t, including any fault active at t."""
        base = tag.nominal + tag.amplitude * math.sin(2 * math.pi * t / 600.0 + _phase(tag.path))
        base += tag.noise * _noise(tag.path, t)
        faults = []
        if self.faults:    # none is the common case, read without the lock (a benchmark asks 50,000 values/s)
            with self._lock:
                faults = [f for f in self.faults
                          if f.asset == tag.asset and f.started <= t and (f.ended is None or f.ended > t)]
        for f in faults:
            progress = min(1.0, (t - f.started) / f.ramp_s)
            if f.kind == "bearing":
                if tag.role == "vibration":
                    base += progress * 12.0
                elif tag.role == "temperature":
                    base += progress * 18.0
            elif f.kind == "trip":
                if tag.role in ("running", "flow", "power"):
                    base = 0.0
        if tag.role == "running":
            return 1.0 if base >= 0.5 else 0.0
        return round(base, 4)

    def snapshot(self, t: float) -> dict[str, float]:
        return {tag.path: self.value(tag, t) for tag in self.tags}


@functools.lru_cache(maxsize=None)   # a pure function of the tag (a few thousand tags)
def _phase(path: str) -> float:
    return (int.from_bytes(hashlib.blake2b(path.encode(), digest_size=4).digest(), "big") % 6283) / 1000.0


@functools.lru_cache(maxsize=None)
def _seed(path: str) -> int:
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "big")


_M64 = (1 << 64) - 1


def _noise(path: str, t: float) -> float:
    """Uniform in [-1, 1), a pure function of (tag, millisecond): SplitMix64's mix of the tag's
    seed plus the millisecond (a blake2b hash per value cost 1.6 times as much here; the
    simulators produce tens of thousands of values a second)."""
    z = (_seed(path) + int(round(t * 1000)) * 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return ((z ^ (z >> 31)) >> 32) / 2**31 - 1.0


def _now() -> float:
    return datetime.now(timezone.utc).timestamp()


def asset_by_code(code: str) -> Asset:
    for a in ASSETS:
        if a.code == code:
            return a
    raise KeyError(code)
