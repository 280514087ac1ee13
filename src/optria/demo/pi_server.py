"""A PI Web API simulator backed by the demo plant, so a demo tenant works offline and the
PI connector's tests talk to a real HTTP server with the real paths and JSON shapes.

What it serves (all under ``/piwebapi``, names and parameters case-insensitive like IIS):

- ``GET /`` links, ``GET /system``, ``/system/versions``, ``/system/status``;
- ``GET /dataservers``, ``/dataservers/{webId}``, ``/dataservers/{webId}/points?nameFilter=&startIndex=&maxCount=``;
- ``GET /points/{webId}``, ``GET /points?path=\\\\SERVER\\name``;
- ``GET /streams/{webId}/value?time=``, ``/streams/{webId}/recorded?startTime=&endTime=&maxCount=&boundaryType=``;
- ``GET /streamsets/value?webId=..&webId=..``, ``/streamsets/recorded?webId=..``;
- ``POST /batch`` (independent GET sub-requests only; no ParentIds/JSONPath).

Behaviour worth knowing (deliberate, documented choices):

- Timestamps are whole 100 ns ticks rendered with up to seven fractional digits, trailing
  zeros trimmed as PI does. Each point scans on its own grid ``k * scan_period + phase``;
  the phase is odd in ticks, so every plant timestamp shows all seven digits. The scan period
  is ``scan_period_s`` for every point unless ``point_periods_s`` gives a point its own (points
  faster and slower than a client's poll side by side).
- Values are exactly ``Plant.value(tag, ticks / 1e7)``: a test can recompute them.
- Recorded history is computed on demand; it reaches back at most 7 days and never past now.
  Times are ISO 8601 (no zone means UTC, the simulated server's zone) or PI relative times
  (``*``, ``*-1h``, ``t``, ``y``, ``-30m``, ``*-1d+2h``). ``boundaryType`` Inside (default),
  Outside and Interpolated are honoured loosely. ``selectedFields`` is ignored.
- Special points beside the plant tags: ``OPTRIA.Demo.PtCreated`` (current value is the system
  state "Pt Created", Good false), ``OPTRIA.Demo.NoData`` ("No Data", no history),
  ``OPTRIA.Demo.LabDensity`` (Questionable), ``OPTRIA.Demo.ManualFlow`` (Substituted) and
  ``OPTRIA.Demo.Secured``, whose reads fail *inside an HTTP 200*: the value object (or, for
  recorded data, the stream item) carries an ``Errors`` list, as PI does for errors met while
  streaming a response; ``OPTRIA.Demo.Flaky``, whose every seventh recorded event is an error
  object (``Timestamp`` and ``Errors``) among good values.
- Bench points (``bench_points=N``, none by default): ``OPTRIA.Bench.P0000`` … plain Float32
  points with a value that moves (a pure function of time, like the plant's), scanning on
  the same grid as the others; listed after the special points, so every other point keeps
  its WebId. They let a benchmark read hundreds of archived points (``scripts/bench_ingest.py
  --only soak`` reads 200).
- Two AF attributes without a PI point data reference (streams, but not PI points: absent from
  point searches and ``/points``): ``OPTRIA.Demo|Efficiency``, whose recorded data is refused
  with a per-item error (its data reference cannot give recorded values), and
  ``OPTRIA.Demo|Setpoint``, whose recorded data is always empty. Both have a current value
  (``value``) that changes on the scan grid. A client that wants every value of these must
  poll ``value``; for PI points it must read ``recorded``.
- An unknown WebId in a stream set gives HTTP 207 with an ``Errors`` item beside the good
  items; for a single stream or point it gives 404 ``{"Errors": [...]}``.
- Writes (POST/PUT/PATCH/DELETE) need an ``X-Requested-With`` header (PI's CSRF defence);
  without it the answer is 403 with ``Errors``. The exact status of the real server depends
  on its version and configuration; 403 is our approximation.
- Basic authentication when ``users`` is given (401 + ``WWW-Authenticate`` otherwise).

Simulator control, not part of PI, under ``/sim/`` and *without authentication* (a local
demo/test tool; never expose it): ``POST /sim/fault {"asset", "kind", "ramp_s"?}``,
``POST /sim/clear {"asset"?}``, ``POST /sim/outage {"seconds", "status"=500, "html"=false}``
(``seconds`` 0 ends it; status 200 with html imitates a proxy login page), ``GET /sim/status``.
The same controls exist as methods: :meth:`PiWebApiSimulator.start_fault`,
:meth:`~PiWebApiSimulator.clear_faults`, :meth:`~PiWebApiSimulator.start_outage`,
:meth:`~PiWebApiSimulator.end_outage`, :meth:`~PiWebApiSimulator.status`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import functools
import hmac
import logging
import re
import ssl
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
from aiohttp import web
from yarl import URL

from optria.demo.plant import ASSETS, Plant, Tag

log = logging.getLogger("optria.demo.pi_server")

TICKS_PER_SECOND = 10_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
HISTORY_LIMIT_S = 7 * 24 * 3600
MAX_ITEMS_PER_CALL = 150_000
PRODUCT_TITLE = "PI Web API 2023 SP1"
PRODUCT_VERSION = "1.19.1.5"
RUN_STATES = {0: "Stopped", 1: "Running"}
SYSTEM_STATE_PT_CREATED = ("Pt Created", 247)
SYSTEM_STATE_NO_DATA = ("No Data", 248)
SECURED_ERROR = "[-10401] No Read Access - Secure Object"
FLAKY_ERROR = "The archive event could not be read (simulated archive read error)."
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class _PiHttpError(Exception):
    """A PI-style error answer: the status and the ``Errors`` list of the body."""

    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(errors[0] if errors else str(status))
        self.status = status
        self.errors = list(errors)


@dataclass(frozen=True)
class SimPoint:
    """One PI point. ``behaviour`` selects how its values are produced."""

    id: int
    name: str
    web_id: str
    point_type: str          # Float32 | Digital
    eng_unit: str
    descriptor: str
    tag: Tag | None
    behaviour: str = "plant"  # plant | pt_created | no_data | questionable | substituted | secured | flaky
    #                           | attr_refused | attr_empty (AF attributes without archive)
    phase_ticks: int = 1
    period_ticks: int = TICKS_PER_SECOND

    @property
    def is_attribute(self) -> bool:
        return self.behaviour.startswith("attr_")

    @property
    def digital(self) -> bool:
        return self.point_type == "Digital"


# ---------------------------------------------------------------------------------------------
# Time: ticks (100 ns since the Unix epoch), PI time strings, PI timestamp formatting.

_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)
_OFFSET_RE = re.compile(r"\s*([+-])\s*(\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)
_UNIT_SECONDS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}


def now_ticks() -> int:
    return time.time_ns() // 100


@functools.lru_cache(maxsize=4096)
def _seconds_text(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def format_ticks(ticks: int) -> str:
    """PI's timestamp format: seconds, then up to seven fractional digits without trailing zeros."""
    seconds, frac = divmod(ticks, TICKS_PER_SECOND)
    if frac:   # both parts cached: a busy answer holds many values of each second, each point its own phase
        return f"{_seconds_text(seconds)}.{_fraction_text(frac)}Z"
    return _seconds_text(seconds) + "Z"


@functools.lru_cache(maxsize=65536)
def _fraction_text(frac: int) -> str:
    return f"{frac:07d}".rstrip("0")


def parse_time(text: str, now: int) -> int:
    """A PI time string (ISO 8601 or relative) as ticks; raises 400 when unreadable."""
    raw = text.strip()
    iso = _ISO_RE.match(raw)
    if iso:
        return _iso_ticks(iso)
    lowered = raw.lower()
    for base_name, base in (("*", now), ("today", _midnight(now)), ("t", _midnight(now)),
                            ("yesterday", _midnight(now) - 86400 * TICKS_PER_SECOND),
                            ("y", _midnight(now) - 86400 * TICKS_PER_SECOND)):
        if lowered.startswith(base_name):
            return base + _offsets(lowered[len(base_name):], raw)
    if lowered[:1] in "+-":
        return now + _offsets(lowered, raw)
    raise _PiHttpError(400, f"Cannot parse time string '{raw}'.")


def _iso_ticks(m: re.Match[str]) -> int:
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    hour, minute, second = int(m[4] or 0), int(m[5] or 0), int(m[6] or 0)
    frac = int((m[7] or "0")[:7].ljust(7, "0"))
    tz = timezone.utc
    if m[8] and m[8].upper() != "Z":
        sign = -1 if m[8][0] == "-" else 1
        digits = m[8][1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        dt = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:
        raise _PiHttpError(400, f"Cannot parse time string '{m[0]}'.") from None
    return int(dt.timestamp()) * TICKS_PER_SECOND + frac


def _offsets(rest: str, raw: str) -> int:
    total = 0
    pos = 0
    while pos < len(rest.rstrip()):
        m = _OFFSET_RE.match(rest, pos)
        if not m or m[3].lower() not in _UNIT_SECONDS:
            raise _PiHttpError(400, f"Cannot parse time string '{raw}'.")
        sign = -1 if m[1] == "-" else 1
        total += sign * round(float(m[2]) * _UNIT_SECONDS[m[3].lower()] * TICKS_PER_SECOND)
        pos = m.end()
    return total


def _midnight(ticks: int) -> int:
    day = TICKS_PER_SECOND * 86400
    return ticks - ticks % day


# ---------------------------------------------------------------------------------------------
# Points


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _phase(name: str, period_ticks: int) -> int:
    """A per-point offset into the scan grid, odd so no timestamp ends in a zero digit."""
    return (binascii.crc32(name.encode()) % period_ticks) | 1


def _special_tag(name: str, role: str, unit: str, nominal: float, amplitude: float, noise: float) -> Tag:
    return Tag(path=name, site="", unit="", asset="", role=role, eng_unit=unit, nominal=nominal,
               amplitude=amplitude, noise=noise, warn_hi=None, crit_hi=None)


BENCH_PREFIX = "OPTRIA.Bench.P"


def bench_point_name(index: int) -> str:
    return f"{BENCH_PREFIX}{index:04d}"


def build_points(server_name: str, period_ticks: int, tags: tuple[Tag, ...],
                 periods: Mapping[str, int] | None = None, bench: int = 0) -> list[SimPoint]:
    """Plant tags first (ids in plant order), then the special demonstration points, then
    ``bench`` benchmark points.

    ``periods`` gives points (by lower-case name) a scan period of their own, in ticks.
    """
    server_guid = uuid.uuid5(uuid.NAMESPACE_DNS, server_name.lower()).bytes
    asset_names = {a.code: a.name for a in ASSETS}
    specs: list[tuple[str, str, str, str, Tag | None, str]] = []
    for tag in tags:
        digital = tag.role == "running"
        specs.append((tag.path, "Digital" if digital else "Float32", tag.eng_unit,
                      f"{asset_names.get(tag.asset, tag.asset)} {tag.role}", tag, "plant"))
    specs += [
        ("OPTRIA.Demo.PtCreated", "Float32", "bar", "Freshly created point, no value yet", None, "pt_created"),
        ("OPTRIA.Demo.NoData", "Float32", "degC", "Point whose interface stopped sending", None, "no_data"),
        ("OPTRIA.Demo.LabDensity", "Float32", "kg/m3", "Lab density, questionable quality",
         _special_tag("OPTRIA.Demo.LabDensity", "density", "kg/m3", 852.0, 4.0, 0.5), "questionable"),
        ("OPTRIA.Demo.ManualFlow", "Float32", "m3/h", "Manually substituted flow",
         _special_tag("OPTRIA.Demo.ManualFlow", "flow", "m3/h", 120.0, 5.0, 1.0), "substituted"),
        ("OPTRIA.Demo.Secured", "Float32", "bar", "Point the demo user may not read", None, "secured"),
        ("OPTRIA.Demo.Flaky", "Float32", "bar", "Point whose archive read fails on some events",
         _special_tag("OPTRIA.Demo.Flaky", "pressure", "bar", 8.0, 0.5, 0.05), "flaky"),
    ]
    for i in range(bench):
        name = bench_point_name(i)
        specs.append((name, "Float32", "", f"Benchmark point {i}",
                      _special_tag(name, "bench", "", 50.0 + i % 50, 10.0, 1.0), "plant"))
    points = []
    for index, (name, ptype, unit, desc, tag, behaviour) in enumerate(specs, start=1):
        web_id = "F1DP" + _b64(server_guid) + _b64(struct.pack("<I", index))
        period = (periods or {}).get(name.lower(), period_ticks)
        points.append(SimPoint(id=index, name=name, web_id=web_id, point_type=ptype, eng_unit=unit,
                               descriptor=desc, tag=tag, behaviour=behaviour,
                               phase_ticks=_phase(name, period), period_ticks=period))
    return points


def build_attributes(server_name: str, period_ticks: int) -> list[SimPoint]:
    """AF attributes without a PI point data reference: a current value, no archive."""
    af_guid = uuid.uuid5(uuid.NAMESPACE_DNS, "af." + server_name.lower()).bytes
    specs = [
        ("OPTRIA.Demo|Efficiency", "%", "Formula attribute: recorded values refused",
         _special_tag("OPTRIA.Demo|Efficiency", "efficiency", "%", 87.0, 2.0, 0.3), "attr_refused"),
        ("OPTRIA.Demo|Setpoint", "degC", "Attribute whose recorded values are always empty",
         _special_tag("OPTRIA.Demo|Setpoint", "setpoint", "degC", 70.0, 5.0, 0.0), "attr_empty"),
    ]
    return [SimPoint(id=index, name=name, web_id="F1AbE" + _b64(af_guid) + _b64(struct.pack("<I", index)),
                     point_type="Float32", eng_unit=unit, descriptor=desc, tag=tag, behaviour=behaviour,
                     phase_ticks=_phase(name, period_ticks), period_ticks=period_ticks)
            for index, (name, unit, desc, tag, behaviour) in enumerate(specs, start=1)]


def _wildcard(pattern: str) -> re.Pattern[str]:
    """PI name filters: ``*`` and ``?`` are wildcards, everything else literal, case-insensitive."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)


# ---------------------------------------------------------------------------------------------
# The simulator


class _Query:
    """Case-insensitive access to query parameters, as PI Web API treats them."""

    def __init__(self, pairs: Mapping[str, str] | Any) -> None:
        self._values: dict[str, list[str]] = collections.defaultdict(list)
        for key, value in pairs.items():
            self._values[key.lower()].append(value)

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._values.get(name.lower())
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name.lower(), []))

    def integer(self, name: str, default: int) -> int:
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise _PiHttpError(400, f"The value '{raw}' is not valid for {name}.") from None


Handler = Callable[["PiWebApiSimulator", str, re.Match[str], _Query, Any], Any]


class PiWebApiSimulator:
    """An aiohttp server speaking enough PI Web API for the connector, the ingest worker and demos."""

    def __init__(
        self,
        plant: Plant | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: dict[str, str] | None = None,
        scan_period_s: float = 1.0,
        point_periods_s: Mapping[str, float] | None = None,
        data_server_name: str = "OPTRIA-PI-DEMO",
        ssl_context: ssl.SSLContext | None = None,
        bench_points: int = 0,
    ) -> None:
        if scan_period_s <= 0:
            raise ValueError("scan_period_s must be positive")
        if not 0 <= bench_points <= 9_999:
            raise ValueError("bench_points must be between 0 and 9999")
        self.plant = plant or Plant()
        self.host = host
        self.port = port
        self.users = dict(users) if users is not None else None
        self.scan_period_s = scan_period_s
        self.period_ticks = max(1, round(scan_period_s * TICKS_PER_SECOND))
        self.data_server_name = data_server_name
        self.data_server_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, data_server_name.lower()))
        self.data_server_web_id = "F1DS" + _b64(uuid.UUID(self.data_server_id).bytes)
        self.ssl_context = ssl_context
        periods = {}
        for name, seconds in (point_periods_s or {}).items():
            if seconds <= 0:
                raise ValueError(f"the scan period of {name!r} must be positive")
            periods[name.lower()] = max(1, round(seconds * TICKS_PER_SECOND))
        self.points = build_points(data_server_name, self.period_ticks, self.plant.tags, periods, bench_points)
        unknown = set(periods) - {p.name.lower() for p in self.points}
        if unknown:
            raise ValueError(f"point_periods_s names unknown points: {', '.join(sorted(unknown))}")
        self.attributes = build_attributes(data_server_name, self.period_ticks)
        self._by_web_id = {p.web_id: p for p in (*self.points, *self.attributes)}
        self._by_name = {p.name.lower(): p for p in (*self.points, *self.attributes)}
        self.created_ticks = now_ticks()
        self.requests: collections.deque[tuple[str, str]] = collections.deque(maxlen=10_000)
        self._outage: tuple[float, int, bool] | None = None  # (until monotonic, status, html)
        self._runner: web.AppRunner | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}/piwebapi"

    @property
    def root_url(self) -> str:
        """The server root, where ``/sim/`` lives."""
        return self.base_url.rsplit("/piwebapi", 1)[0]

    async def start(self) -> None:
        app = web.Application(middlewares=[self._pi_gate])
        app.router.add_route("*", "/piwebapi{tail:.*}", self._handle_pi)
        app.router.add_post("/sim/fault", self._sim_fault)
        app.router.add_post("/sim/clear", self._sim_clear)
        app.router.add_post("/sim/outage", self._sim_outage)
        app.router.add_get("/sim/status", self._sim_status)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("pi_sim.started", extra={"base_url": self.base_url, "points": len(self.points)})

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            log.info("pi_sim.stopped", extra={"base_url": self.base_url})

    async def __aenter__(self) -> PiWebApiSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- control (also served under /sim/) ---------------------------------------------------

    def web_id(self, name: str) -> str:
        """The WebId of a point or attribute by name (a test helper; clients get WebIds from searches)."""
        return self._by_name[name.lower()].web_id

    def point(self, name: str) -> SimPoint:
        return self._by_name[name.lower()]

    def recorded_values(self, name: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every recorded event of a point in [start, end], as PI value objects (a test's reference:
        what the archive holds, computed by the server itself rather than read through a client)."""
        point = self.point(name)
        if point.is_attribute or point.behaviour == "secured":
            return []
        lo, hi = (int((t - _EPOCH).total_seconds()) * TICKS_PER_SECOND + t.microsecond * 10 for t in (start, end))
        return self._recorded(point, lo, hi, MAX_ITEMS_PER_CALL, "inside")

    def start_fault(self, asset: str, kind: str = "bearing", ramp_s: float = 60.0) -> None:
        self.plant.start_fault(asset, kind, ramp_s=ramp_s)

    def clear_faults(self, asset: str | None = None) -> None:
        self.plant.clear_faults(asset)

    def start_outage(self, seconds: float, status: int = 500, html: bool = False) -> None:
        """Answer every PI request with ``status`` (JSON Errors, or an HTML page) for ``seconds``."""
        if not 200 <= status <= 599:
            raise ValueError("status must be between 200 and 599")
        if seconds <= 0:
            self.end_outage()
            return
        self._outage = (time.monotonic() + seconds, status, html)

    def end_outage(self) -> None:
        self._outage = None

    def status(self) -> dict[str, Any]:
        outage = self._current_outage()
        return {
            "base_url": self.base_url,
            "data_server": self.data_server_name,
            "points": len(self.points),
            "scan_period_s": self.scan_period_s,
            "faults": [{"asset": f.asset, "kind": f.kind, "started": f.started, "ramp_s": f.ramp_s}
                       for f in self.plant.active_faults()],
            "outage": None if outage is None else {
                "status": outage[1], "html": outage[2],
                "remaining_s": round(outage[0] - time.monotonic(), 3)},
            "requests": len(self.requests),
        }

    def _current_outage(self) -> tuple[float, int, bool] | None:
        if self._outage and time.monotonic() >= self._outage[0]:
            self._outage = None
        return self._outage

    # -- HTTP plumbing -----------------------------------------------------------------------

    @web.middleware
    async def _pi_gate(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        """Outage, authentication and CSRF checks, in the order a fronted PI server applies them."""
        if not request.path.lower().startswith("/piwebapi"):
            return await handler(request)
        self.requests.append((request.method, request.path_qs))
        outage = self._current_outage()
        if outage is not None:
            return _outage_response(outage[1], outage[2])
        if self.users is not None and not self._authorized(request.headers.get("Authorization", "")):
            return _json(401, {"Errors": ["Authorization has been denied for this request."]},
                         headers={"WWW-Authenticate": f'Basic realm="{self.data_server_name}"'})
        if request.method in WRITE_METHODS and not request.headers.get("X-Requested-With"):
            return _json(403, {"Errors": [
                "The request was rejected because it lacks the X-Requested-With header "
                "required by the CSRF defence of PI Web API."]})
        return await handler(request)

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token:
            return False
        try:
            user, _, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = (self.users or {}).get(user)
        return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

    async def _handle_pi(self, request: web.Request) -> web.StreamResponse:
        body: Any = None
        if request.method in WRITE_METHODS and request.can_read_body:
            try:
                body = msgspec.json.decode(await request.read())
            except msgspec.DecodeError:
                return _json(400, {"Errors": ["The request body is not valid JSON."]})
        root = f"{request.scheme}://{request.host}/piwebapi"
        status, payload = self.dispatch(request.method, request.match_info["tail"], _Query(request.query),
                                        body, root)
        return _json(status, payload)

    def dispatch(self, method: str, tail: str, query: _Query, body: Any, root: str) -> tuple[int, Any]:
        """Route a PI request (also used for batch sub-requests) to its handler; errors become bodies."""
        path = "/" + tail.strip("/")
        allowed = False
        for route_method, pattern, handler in _ROUTES:
            match = pattern.match(path)
            if not match:
                continue
            allowed = True
            if route_method != method:
                continue
            try:
                return handler(self, root, match, query, body)
            except _PiHttpError as exc:
                return exc.status, {"Errors": exc.errors}
        if allowed:
            return 405, {"Errors": [f"The requested resource does not support http method '{method}'."]}
        return 404, {"Errors": [f"The requested resource '{path}' was not found."]}

    # -- resources ---------------------------------------------------------------------------

    def _home(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        return 200, {"Links": {
            "Self": root + "/", "AssetServers": root + "/assetservers", "DataServers": root + "/dataservers",
            "Search": root + "/search", "System": root + "/system"}}

    def _system(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        return 200, {"ProductTitle": PRODUCT_TITLE, "ProductVersion": PRODUCT_VERSION, "Links": {
            "Self": root + "/system", "Versions": root + "/system/versions",
            "Status": root + "/system/status", "UserInfo": root + "/system/userinfo"}}

    def _versions(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        major, minor, rev, build = PRODUCT_VERSION.split(".")
        entry = {"FullVersion": PRODUCT_VERSION, "MajorMinorRevision": f"{major}.{minor}.{rev}", "Build": build}
        return 200, {name: entry for name in ("OSIsoft.REST.Core", "OSIsoft.REST.Services")}

    def _system_status(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        uptime = (now_ticks() - self.created_ticks) / TICKS_PER_SECOND / 60
        return 200, {"UpTimeInMinutes": round(uptime, 3), "State": "Running", "CacheInstances": 0,
                     "ServerTime": format_ticks(now_ticks())}

    def _data_server_json(self, root: str) -> dict[str, Any]:
        self_url = f"{root}/dataservers/{self.data_server_web_id}"
        return {"WebId": self.data_server_web_id, "Id": self.data_server_id, "Name": self.data_server_name,
                "Path": "\\\\" + self.data_server_name, "IsConnected": True, "ServerVersion": "3.4.445.688",
                "ServerTime": format_ticks(now_ticks()),
                "Links": {"Self": self_url, "Points": self_url + "/points",
                          "EnumerationSets": self_url + "/enumerationsets"}}

    def _dataservers(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        return 200, {"Links": {}, "Items": [self._data_server_json(root)]}

    def _require_data_server(self, web_id: str) -> None:
        if web_id != self.data_server_web_id:
            raise _PiHttpError(404, f"Unknown or invalid WebID '{web_id}' for a data server.")

    def _dataserver(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        self._require_data_server(m["web_id"])
        return 200, self._data_server_json(root)

    def _ds_points(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        self._require_data_server(m["web_id"])
        start, count = q.integer("startIndex", 0), q.integer("maxCount", 1000)
        if start < 0 or count < 1:
            raise _PiHttpError(400, "startIndex must be zero or more and maxCount one or more.")
        pattern = _wildcard(q.get("nameFilter") or "*")
        matches = sorted((p for p in self.points if pattern.match(p.name)), key=lambda p: p.name.lower())
        return 200, {"Links": {}, "Items": [self._point_json(p, root) for p in matches[start:start + count]]}

    def _point_by_path(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        path = q.get("path") or ""
        prefix = "\\\\" + self.data_server_name.lower() + "\\"
        if not path.lower().startswith(prefix):
            raise _PiHttpError(404, f"The specified path '{path}' was not found.")
        point = self._by_name.get(path[len(prefix):].lower())
        if point is None or point.is_attribute:
            raise _PiHttpError(404, f"PI Point not found '{path}'.")
        return 200, self._point_json(point, root)

    def _point(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        point = self._lookup(m["web_id"])
        if point.is_attribute:
            raise _PiHttpError(404, _unknown_web_id(m["web_id"]))
        return 200, self._point_json(point, root)

    def _point_json(self, p: SimPoint, root: str) -> dict[str, Any]:
        point_url, stream_url = f"{root}/points/{p.web_id}", f"{root}/streams/{p.web_id}"
        return {
            "WebId": p.web_id, "Id": p.id, "Name": p.name,
            "Path": f"\\\\{self.data_server_name}\\{p.name}", "Descriptor": p.descriptor,
            "PointClass": "classic", "PointType": p.point_type,
            "DigitalSetName": "OPTRIA_RunState" if p.digital else "",
            "EngineeringUnits": p.eng_unit, "Span": 1.0 if p.digital else 100.0, "Zero": 0.0,
            "Step": p.digital, "Future": False, "DisplayDigits": -5,
            "Links": {"Self": point_url, "DataServer": f"{root}/dataservers/{self.data_server_web_id}",
                      "Attributes": point_url + "/attributes", "Value": stream_url + "/value",
                      "RecordedData": stream_url + "/recorded", "InterpolatedData": stream_url + "/interpolated",
                      "EndValue": stream_url + "/end"},
        }

    def _path(self, point: SimPoint) -> str:
        if point.is_attribute:
            element, _, attribute = point.name.partition("|")
            return f"\\\\{self.data_server_name}-AF\\OPTRIA\\{element}|{attribute}"
        return f"\\\\{self.data_server_name}\\{point.name}"

    def _lookup(self, web_id: str) -> SimPoint:
        point = self._by_web_id.get(web_id)
        if point is None:
            raise _PiHttpError(404, _unknown_web_id(web_id))
        return point

    # -- streams -----------------------------------------------------------------------------

    def _stream_value(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        point = self._lookup(m["web_id"])
        now = now_ticks()
        at = min(parse_time(q.get("time") or "*", now), now)
        return 200, self._value_at(point, at, now)

    def _stream_recorded(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        point = self._lookup(m["web_id"])
        window = self._window(q)
        refusal = _recorded_refusal(point)
        if refusal:
            return 200, {"Links": {}, "Items": [], "UnitsAbbreviation": point.eng_unit, "Errors": [refusal]}
        return 200, {"Links": {}, "Items": self._recorded(point, *window), "UnitsAbbreviation": point.eng_unit}

    def _streamset(self, q: _Query, root: str, item: Callable[[SimPoint, dict[str, Any]], None]) -> tuple[int, Any]:
        """Shared stream-set skeleton: one item per requested WebId; unknown ones make it a 207."""
        web_ids = q.all("webId")
        if not web_ids:
            raise _PiHttpError(400, "At least one webId must be specified.")
        items, partial = [], False
        for web_id in web_ids:
            point = self._by_web_id.get(web_id)
            if point is None:
                partial = True
                items.append({"WebId": web_id, "Name": None, "Path": None, "Errors": [_unknown_web_id(web_id)]})
                continue
            entry: dict[str, Any] = {"WebId": point.web_id, "Name": point.name, "Path": self._path(point),
                                     "Links": {"Source": f"{root}/{'attributes' if point.is_attribute else 'points'}"
                                                         f"/{point.web_id}"}}
            item(point, entry)
            items.append(entry)
        return (207 if partial else 200), {"Links": {}, "Items": items}

    def _streamset_value(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        now = now_ticks()
        at = min(parse_time(q.get("time") or "*", now), now)

        def fill(point: SimPoint, entry: dict[str, Any]) -> None:
            entry["Value"] = self._value_at(point, at, now)

        return self._streamset(q, root, fill)

    def _streamset_recorded(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        window = self._window(q)

        def fill(point: SimPoint, entry: dict[str, Any]) -> None:
            refusal = _recorded_refusal(point)
            if refusal:
                entry.update(Items=[], UnitsAbbreviation=point.eng_unit, Errors=[refusal])
            else:
                entry.update(Items=self._recorded(point, *window), UnitsAbbreviation=point.eng_unit)

        return self._streamset(q, root, fill)

    def _window(self, q: _Query) -> tuple[int, int, int, str]:
        now = now_ticks()
        start = parse_time(q.get("startTime") or "*-1d", now)
        end = parse_time(q.get("endTime") or "*", now)
        max_count = q.integer("maxCount", 1000)
        if max_count < 1:
            raise _PiHttpError(400, "maxCount must be one or more.")
        if max_count > MAX_ITEMS_PER_CALL:
            raise _PiHttpError(400, f"The maximum number of items per call is {MAX_ITEMS_PER_CALL}.")
        boundary = (q.get("boundaryType") or "Inside").lower()
        if boundary not in ("inside", "outside", "interpolated"):
            raise _PiHttpError(400, f"The value '{q.get('boundaryType')}' is not valid for boundaryType.")
        return start, end, max_count, boundary

    # -- values ------------------------------------------------------------------------------

    def _value_at(self, point: SimPoint, at: int, now: int) -> dict[str, Any]:
        """The point's value object at ``at`` (the last event at or before it)."""
        if point.behaviour == "secured":
            obj = _value_obj(at, None, point.eng_unit, good=False)
            obj["Errors"] = [SECURED_ERROR]
            return obj
        if point.behaviour == "no_data":
            return _system_value(now, SYSTEM_STATE_NO_DATA)
        if point.behaviour == "pt_created":
            return _system_value(self.created_ticks, SYSTEM_STATE_PT_CREATED)
        k = (at - point.phase_ticks) // point.period_ticks
        return self._event(point, k * point.period_ticks + point.phase_ticks)

    def _event(self, point: SimPoint, ticks: int) -> dict[str, Any]:
        assert point.tag is not None
        if point.behaviour == "flaky" and (ticks - point.phase_ticks) // point.period_ticks % 7 == 0:
            return {"Timestamp": format_ticks(ticks), "Errors": [FLAKY_ERROR]}
        value = self.plant.value(point.tag, ticks / TICKS_PER_SECOND)
        if point.digital:
            state = int(value)
            return _value_obj(ticks, {"Name": RUN_STATES[state], "Value": state, "IsSystem": False}, "")
        return _value_obj(ticks, value, point.eng_unit,
                          questionable=point.behaviour == "questionable",
                          substituted=point.behaviour == "substituted")

    def _recorded(self, point: SimPoint, start: int, end: int, max_count: int, boundary: str) -> list[dict[str, Any]]:
        """Recorded events in the window, computed from the plant; at most ``max_count``."""
        now = now_ticks()
        descending = end < start
        lo, hi = (end, start) if descending else (start, end)
        lo, hi = max(lo, now - HISTORY_LIMIT_S * TICKS_PER_SECOND), min(hi, now)
        if hi < lo or point.behaviour in ("no_data", "attr_empty"):
            return []
        if point.behaviour == "pt_created":
            ticks = [self.created_ticks] if lo <= self.created_ticks <= hi else []
            return [_system_value(t, SYSTEM_STATE_PT_CREATED) for t in ticks]
        period, phase = point.period_ticks, point.phase_ticks
        first, last = -((phase - lo) // period), (hi - phase) // period   # ceil, floor
        if boundary == "outside":
            first, last = first - 1, (last + 1 if (last + 1) * period + phase <= now else last)
        grid = range(last, first - 1, -1) if descending else range(first, last + 1)
        if point.digital or point.behaviour == "flaky":
            events = [self._event(point, k * period + phase) for k in grid[:max_count]]
        else:   # _event's number branch, its checks made once per point: a benchmark reads 50,000 a second
            tag, unit, value = point.tag, point.eng_unit, self.plant.value
            questionable, substituted = point.behaviour == "questionable", point.behaviour == "substituted"
            events = [_value_obj(ticks, value(tag, ticks / TICKS_PER_SECOND), unit, questionable=questionable,
                                 substituted=substituted)
                      for ticks in (k * period + phase for k in grid[:max_count])]
        if boundary == "interpolated":
            events = self._with_interpolated_ends(point, events, lo, hi, descending, max_count)
        return events

    def _with_interpolated_ends(self, point: SimPoint, events: list[dict[str, Any]], lo: int, hi: int,
                                descending: bool, max_count: int) -> list[dict[str, Any]]:
        """Add values at the exact window ends (the plant is a continuous function, so this is exact)."""
        period, phase = point.period_ticks, point.phase_ticks
        ends: list[dict[str, Any] | None] = []
        for t in (lo, hi):
            if not (t - phase) % period:
                ends.append(None)      # already a recorded event
            elif point.digital:        # step: the state in force, stamped at the window end
                ends.append({**self._event(point, ((t - phase) // period) * period + phase),
                             "Timestamp": format_ticks(t)})
            else:
                ends.append(self._event(point, t))
        head, tail = (ends[1], ends[0]) if descending else (ends[0], ends[1])
        result = ([head] if head else []) + events + ([tail] if tail else [])
        return result[:max_count]

    # -- batch -------------------------------------------------------------------------------

    def _batch(self, root: str, m: re.Match[str], q: _Query, body: Any) -> tuple[int, Any]:
        """Independent GET sub-requests against this server (PI runs them in parallel; we in order)."""
        if not isinstance(body, dict) or not body:
            raise _PiHttpError(400, "The batch request must be a non-empty JSON object.")
        return 207, {key: self._sub_request(root, spec) for key, spec in body.items()}

    def _sub_request(self, root: str, spec: Any) -> dict[str, Any]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if not isinstance(spec, dict) or not isinstance(spec.get("Resource"), str):
            return {"Status": 400, "Headers": headers, "Content": {"Errors": ["A sub-request needs a Resource."]}}
        if spec.get("ParentIds") or spec["Resource"].startswith("$"):
            return {"Status": 400, "Headers": headers,
                    "Content": {"Errors": ["ParentIds and JSONPath resources are not supported by the simulator."]}}
        method = str(spec.get("Method") or "GET").upper()
        if method != "GET":
            return {"Status": 405, "Headers": headers,
                    "Content": {"Errors": [f"Sub-request method '{method}' is not supported by the simulator."]}}
        url = URL(spec["Resource"])
        path = url.path
        if not path.lower().startswith("/piwebapi"):
            return {"Status": 404, "Headers": headers, "Content": {"Errors": [f"'{path}' is not a PI Web API resource."]}}
        status, content = self.dispatch("GET", path[len("/piwebapi"):], _Query(url.query), None, root)
        return {"Status": status, "Headers": headers, "Content": content}

    # -- /sim/ control -----------------------------------------------------------------------

    async def _sim_fault(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        try:
            self.start_fault(str(data.get("asset", "")), str(data.get("kind", "bearing")),
                             ramp_s=float(data.get("ramp_s", 60.0)))
        except (TypeError, ValueError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(200, self.status())

    async def _sim_clear(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        self.clear_faults(data.get("asset") or None)
        return _json(200, self.status())

    async def _sim_outage(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        try:
            self.start_outage(float(data.get("seconds", 5)), status=int(data.get("status", 500)),
                              html=bool(data.get("html", False)))
        except (TypeError, ValueError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(200, self.status())

    async def _sim_status(self, request: web.Request) -> web.Response:
        return _json(200, self.status())


def _route(method: str, pattern: str, handler: Handler) -> tuple[str, re.Pattern[str], Handler]:
    return method, re.compile("^" + pattern + "$", re.IGNORECASE), handler


_SEG = r"(?P<web_id>[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    _route("GET", r"/", PiWebApiSimulator._home),
    _route("GET", r"/system", PiWebApiSimulator._system),
    _route("GET", r"/system/versions", PiWebApiSimulator._versions),
    _route("GET", r"/system/status", PiWebApiSimulator._system_status),
    _route("GET", r"/dataservers", PiWebApiSimulator._dataservers),
    _route("GET", rf"/dataservers/{_SEG}", PiWebApiSimulator._dataserver),
    _route("GET", rf"/dataservers/{_SEG}/points", PiWebApiSimulator._ds_points),
    _route("GET", r"/points", PiWebApiSimulator._point_by_path),
    _route("GET", rf"/points/{_SEG}", PiWebApiSimulator._point),
    _route("GET", rf"/streams/{_SEG}/value", PiWebApiSimulator._stream_value),
    _route("GET", rf"/streams/{_SEG}/recorded", PiWebApiSimulator._stream_recorded),
    _route("GET", r"/streamsets/value", PiWebApiSimulator._streamset_value),
    _route("GET", r"/streamsets/recorded", PiWebApiSimulator._streamset_recorded),
    _route("POST", r"/batch", PiWebApiSimulator._batch),
]


def _recorded_refusal(point: SimPoint) -> str | None:
    """The per-item error a recorded read of this stream gets, if any."""
    if point.behaviour == "secured":
        return SECURED_ERROR
    if point.behaviour == "attr_refused":
        return (f"Recorded values are not supported for the attribute '{point.name}': it has no PI Point "
                "data reference.")
    return None


def _unknown_web_id(web_id: str) -> str:
    if web_id.startswith("F1DP") and len(web_id) > 8:
        return f"Could not find a PI Point with the specified WebID '{web_id}'."
    return f"Unknown or invalid WebID format: '{web_id}'."


def _value_obj(ticks: int, value: Any, unit: str, *, good: bool = True, questionable: bool = False,
               substituted: bool = False) -> dict[str, Any]:
    return {"Timestamp": format_ticks(ticks), "Value": value, "UnitsAbbreviation": unit, "Good": good,
            "Questionable": questionable, "Substituted": substituted, "Annotated": False}


def _system_value(ticks: int, state: tuple[str, int]) -> dict[str, Any]:
    return _value_obj(ticks, {"Name": state[0], "Value": state[1], "IsSystem": True}, "", good=False)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(payload), headers=headers,
                        content_type="application/json", charset="utf-8")


def _outage_response(status: int, html: bool) -> web.Response:
    if html:
        page = (f"<!DOCTYPE html><html><head><title>{status} - Service unavailable</title></head>"
                f"<body><h1>Server Error</h1><p>The PI Web API service is unavailable (simulated).</p></body></html>")
        return web.Response(status=status, text=page, content_type="text/html")
    return _json(status, {"Errors": ["The PI Web API service is unavailable (simulated outage)."]})


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = msgspec.json.decode(await request.read())
    except msgspec.DecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def main(argv: list[str] | None = None) -> None:
    """Run the simulator standalone: ``python -m optria.demo.pi_server --port 8081``."""
    parser = argparse.ArgumentParser(description="OPTRIA PI Web API simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--scan-period", type=float, default=1.0, help="seconds between recorded values")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                        help="require Basic authentication; repeat for several users")
    parser.add_argument("--data-server", default="OPTRIA-PI-DEMO")
    parser.add_argument("--bench-points", type=int, default=0, help="add OPTRIA.Bench.P0000 … points")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    users = dict(u.split(":", 1) for u in args.user) if args.user else None

    async def run() -> None:
        sim = PiWebApiSimulator(Plant(), host=args.host, port=args.port, users=users,
                                scan_period_s=args.scan_period, data_server_name=args.data_server,
                                bench_points=args.bench_points)
        async with sim:
            print(f"PI Web API simulator at {sim.base_url} (control: {sim.root_url}/sim/status)", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
