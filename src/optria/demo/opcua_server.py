"""OPC-UA demo simulator: the demo plant served by a real asyncua server.

It behaves like the public demo servers a tenant would connect to: secure endpoints,
username logins, an optional client-certificate trust list, engineering units, history,
and values that move. Because every value is written by one loop and counted, a test
or the ingest benchmark can compare what the server wrote with what a client stored.

History is kept by our own in-memory store (one row per update tick) instead of
asyncua's ``historize_node_data_change``: that route puts an internal subscription
and a task per written value on the event loop, which at 10,000 values/s costs more
CPU than the writes themselves, and its per-value DataValue lists do not fit in memory
for an hour of 1,000 signals. The store answers the standard HistoryRead service, so a
client cannot tell the difference, and it survives ``stop()``/``start()`` of the same
simulator (like a server whose historian is on disk).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import math
import signal
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.history import HistoryStorageInterface
from asyncua.server.internal_subscription import InternalSubscription
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from optria.config import load_settings
from optria.connectors.opcua import ensure_app_certificate
from optria.demo.plant import ASSETS, SITES, Plant, Tag

log = logging.getLogger("optria.demo.opcua_server")

NAMESPACE_URI = "urn:optria:demo-plant"
SERVER_APPLICATION_URI = "urn:optria:demo-plant:server"
PRODUCT_URI = "urn:optria:demo-plant"
PRODUCT_NAME = "OPTRIA Demo Plant Simulator"
SOFTWARE_VERSION = "1.0"
MANUFACTURER = "OPTRIA"
BENCH_FOLDER = "Bench"
BENCH_GROUP = 100          # bench signals per sub-folder
_YIELD_EVERY = 500          # writes between two yields to the event loop inside one tick
_EU_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
_UNECE = {"degC": ("CEL", "degree Celsius"), "bar": ("BAR", "bar"), "mm/s": ("C16", "millimetre per second"),
          "m3/h": ("MQH", "cubic metre per hour"), "kW": ("KWT", "kilowatt")}

# Security: "None", or "<Policy>:<Mode>" with Policy Basic256Sha256 | Aes128_Sha256_RsaOaep |
# Aes256_Sha256_RsaPss and Mode Sign | SignAndEncrypt (ua.SecurityPolicyType members work too).
DEFAULT_SECURITY = frozenset({"None", "Basic256Sha256:Sign", "Basic256Sha256:SignAndEncrypt"})
ALL_SECURITY = DEFAULT_SECURITY | {
    "Aes128_Sha256_RsaOaep:Sign", "Aes128_Sha256_RsaOaep:SignAndEncrypt",
    "Aes256_Sha256_RsaPss:Sign", "Aes256_Sha256_RsaPss:SignAndEncrypt",
}
NONE_ONLY = frozenset({"None"})


def parse_security(spec: str | ua.SecurityPolicyType) -> ua.SecurityPolicyType:
    """``"Basic256Sha256:SignAndEncrypt"`` (also ``_`` as separator, any case) → SecurityPolicyType."""
    if isinstance(spec, ua.SecurityPolicyType):
        return spec
    text = spec.strip()
    if text.lower() in ("none", "nosecurity"):
        return ua.SecurityPolicyType.NoSecurity
    policy, sep, mode = text.replace(":", "/").rpartition("/")
    if not sep:
        policy, _, mode = text.rpartition("_")
    wanted = f"{policy.replace('_', '')}_{mode}".lower()
    for member in ua.SecurityPolicyType:
        if member.name.lower() == wanted:
            return member
    raise ValueError(f"unknown security policy {spec!r}; expected e.g. 'None' or 'Basic256Sha256:SignAndEncrypt'")


def bench_value(index: int, seq: int) -> float:
    """Value written to bench signal ``index`` at bench tick ``seq``: different at every tick."""
    return float(seq) + index / 1_000_000


def bench_node_id(index: int) -> str:
    return f"{BENCH_FOLDER}.S{index:05d}"


class SharedDataValue(ua.DataValue):
    """A DataValue that is never mutated after creation, so copies may share it.

    asyncua deep-copies every written DataValue once per monitored item "to prevent
    referencing the inner value"; for a scalar Double that copy was ~80 % of the server's
    CPU per subscribed value (1,000 signals × 10 Hz with one subscriber: 41 % of a core
    with copies). Nothing mutates the values the simulator writes, so the copy is the
    object itself. Field layout and binary encoding are those of DataValue.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedDataValue:
        return self

    def __copy__(self) -> SharedDataValue:
        return self


# --------------------------------------------------------------------------- queue overflow

# StatusCode bits for a DataValue whose monitored item's queue overflowed (OPC UA Part 4, 7.39:
# InfoType "DataValue" 0x400 with the Overflow bit 0x80).
OVERFLOW_BITS = 0x0480
_plain_enqueue = InternalSubscription._enqueue_event


async def _enqueue_reporting_overflow(self: InternalSubscription, mid: int, eventdata: Any, size: int,
                                      queue: dict[int, list[Any]]) -> None:
    """asyncua's queueing, plus what the standard asks of a server and asyncua leaves out: when
    a queue of more than one value discards its oldest, the oldest value left carries the
    Overflow bit, so a client knows values were lost and can read them back from history
    (servers such as node-opcua do this; clients are checked against it)."""
    items = queue.get(mid)
    if size > 1 and items is not None and len(items) >= size and isinstance(eventdata, ua.MonitoredItemNotification):
        items.pop(0)
        oldest = items[0]
        dv = oldest.Value
        code = dv.StatusCode.value if dv.StatusCode is not None else 0
        items[0] = ua.MonitoredItemNotification(ClientHandle=oldest.ClientHandle, Value=ua.DataValue(
            Value=dv.Value, StatusCode=ua.StatusCode(code | OVERFLOW_BITS), SourceTimestamp=dv.SourceTimestamp,
            ServerTimestamp=dv.ServerTimestamp))
        items.append(eventdata)
        return
    await _plain_enqueue(self, mid, eventdata, size, queue)


def report_queue_overflows() -> None:
    """Make every asyncua server of this process flag queue overflows (idempotent)."""
    InternalSubscription._enqueue_event = _enqueue_reporting_overflow


# --------------------------------------------------------------------------- history


@dataclass
class _Series:
    """Tick rows of one group of nodes written together (plant tags, or bench signals)."""

    times: list[float] = field(default_factory=list)   # unix seconds, ascending
    rows: list[Any] = field(default_factory=list)       # plant: array('d') of values; bench: tick seq
    head: int = 0                                       # first live row (older rows trimmed)

    def append(self, t: float, row: Any, keep_s: float) -> None:
        self.times.append(t)
        self.rows.append(row)
        cutoff = t - keep_s
        times = self.times
        while self.head < len(times) and times[self.head] < cutoff:
            self.head += 1
        if self.head > 4096 and self.head * 2 > len(times):
            del self.times[: self.head]
            del self.rows[: self.head]
            self.head = 0

    def window(self, lo: float, hi: float) -> range:
        """Indexes of rows with lo <= t <= hi."""
        return range(bisect_left(self.times, lo, self.head), bisect_right(self.times, hi, self.head))


def _unspecified(value: datetime | None) -> bool:
    return value is None or value.year <= 1601


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


class TickHistory(HistoryStorageInterface):
    """HistoryRead backend over the tick rows written by the simulator (see module doc)."""

    def __init__(self, keep_s: float, max_response: int = 10_000) -> None:
        super().__init__(max_history_data_response_size=max_response)
        self.keep_s = keep_s
        self.plant = _Series()
        self.bench = _Series()
        self._nodes: dict[ua.NodeId, tuple[_Series, int]] = {}
        # Faults and server behaviours a client must survive (tests set them):
        self.fail_reads = 0              # the next N node reads fail the whole HistoryRead with ``fail_status``
        self.fail_status = ua.StatusCodes.BadSessionNotActivated
        self.failed_reads = 0            # how many reads failed so far
        self.reads = 0                   # node reads answered (or failed)
        # Part 11 asks for a continuation point when NumValuesPerNode cuts a read short; asyncua's
        # own history storage returns none there, so a client cannot tell a full page from the end.
        self.continuation_when_limited = True

    def register(self, node_id: ua.NodeId, series: _Series, column: int) -> None:
        self._nodes[node_id] = (series, column)

    def value_at(self, series: _Series, column: int, row: int) -> float:
        data = series.rows[row]
        return bench_value(column, data) if series is self.bench else data[column]

    def samples(self, node_id: ua.NodeId, lo: float = 0.0, hi: float = math.inf) -> list[tuple[float, float]]:
        """(unix time, value) pairs kept for a node, oldest first."""
        if node_id not in self._nodes:
            return []
        series, column = self._nodes[node_id]
        return [(series.times[i], self.value_at(series, column, i)) for i in series.window(lo, hi)]

    async def init(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def new_historized_node(self, node_id: ua.NodeId, period: timedelta | None, count: int = 0) -> None:
        return None

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        return None  # rows are appended by the update loop, never by a subscription

    async def read_node_history(self, node_id: ua.NodeId, start: datetime | None, end: datetime | None,
                                nb_values: int) -> tuple[list[ua.DataValue], datetime | None]:
        """Start and end inclusive. No start: newest first back to end; no end: oldest first
        from start; start > end: newest first (OPC UA Part 11 semantics)."""
        self.reads += 1
        if self.fail_reads > 0:
            self.fail_reads -= 1
            self.failed_reads += 1
            raise ua.UaStatusCodeError(self.fail_status)
        entry = self._nodes.get(node_id)
        if entry is None:
            return [], None
        series, column = entry
        if _unspecified(start) and _unspecified(end):
            return [], None
        if _unspecified(start):
            idx, backwards = list(reversed(series.window(-math.inf, _epoch(end)))), True  # type: ignore[arg-type]
        elif _unspecified(end):
            idx, backwards = list(series.window(_epoch(start), math.inf)), False  # type: ignore[arg-type]
        else:
            lo, hi = _epoch(start), _epoch(end)  # type: ignore[arg-type]
            backwards = lo > hi
            idx = list(reversed(series.window(hi, lo))) if backwards else list(series.window(lo, hi))
        cont = None
        if nb_values and len(idx) > nb_values:
            if self.continuation_when_limited and not backwards:
                cont = _dt(series.times[idx[nb_values]])
            idx = idx[:nb_values]
        if len(idx) > self.max_history_data_response_size:
            cont = _dt(series.times[idx[self.max_history_data_response_size]])
            idx = idx[: self.max_history_data_response_size]
        good = ua.StatusCode()
        return [ua.DataValue(Value=ua.Variant(self.value_at(series, column, i), ua.VariantType.Double),
                             StatusCode=good, SourceTimestamp=_dt(series.times[i]),
                             ServerTimestamp=_dt(series.times[i])) for i in idx], cont


# --------------------------------------------------------------------------- users and trust


class DemoUserManager(UserManager):
    """Username/password from a dict; anonymous only when allowed. Constant-time compare."""

    def __init__(self, users: dict[str, str] | None, allow_anonymous: bool) -> None:
        self._users = dict(users or {})
        self._allow_anonymous = allow_anonymous

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self._allow_anonymous else None
        expected = self._users.get(username)
        if expected is None or not hmac.compare_digest(str(password or "").encode(), expected.encode()):
            log.info("opcua_sim.login_rejected", extra={"user": username})
            return None
        return User(role=UserRole.User, name=username)


def _thumbprints(directory: Path) -> set[str]:
    prints = set()
    for path in sorted(directory.glob("*")):
        if path.suffix.lower() not in (".der", ".pem", ".crt", ".cer"):
            continue
        data = path.read_bytes()
        try:
            cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
        except ValueError:
            continue
        prints.add(hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest())  # noqa: S324
    return prints


class TrustListValidator:
    """Accept a client certificate only if a copy of it is in ``directory`` (read at each
    session, so trusting a client takes effect without restarting the server)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.rejected = 0

    async def __call__(self, cert: x509.Certificate, app_description: ua.ApplicationDescription) -> None:
        der = cert.public_bytes(Encoding.DER)
        if hashlib.sha1(der).hexdigest() not in _thumbprints(self.directory):  # noqa: S324
            self.rejected += 1
            log.info("opcua_sim.certificate_rejected", extra={"application_uri": app_description.ApplicationUri})
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)


# --------------------------------------------------------------------------- address space


def _unit_id(code: str) -> int:
    value = 0
    for char in code:
        value = (value << 8) | ord(char)
    return value


def _eu_information(unit: str) -> ua.EUInformation:
    code, description = _UNECE.get(unit, ("", unit))
    return ua.EUInformation(NamespaceUri=_EU_NAMESPACE, UnitId=_unit_id(code) if code else -1,
                            DisplayName=ua.LocalizedText(unit), Description=ua.LocalizedText(description))


def _eu_range(tag: Tag) -> ua.Range:
    if tag.role == "running":
        return ua.Range(Low=0.0, High=1.0)
    high = max(tag.crit_hi or 0.0, tag.nominal + 3 * tag.amplitude) * 1.5
    return ua.Range(Low=0.0, High=round(high, 1))


def _object_item(parent: ua.NodeId, nid: ua.NodeId, name: str, display: str, *, folder: bool,
                 description: ua.LocalizedText | None = None) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId, item.ParentNodeId = nid, parent
    item.BrowseName = ua.QualifiedName(name, nid.NamespaceIndex)
    item.NodeClass = ua.NodeClass.Object
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.Organizes)
    item.TypeDefinition = ua.NodeId(ua.ObjectIds.FolderType if folder else ua.ObjectIds.BaseObjectType)
    attrs = ua.ObjectAttributes()
    attrs.DisplayName = ua.LocalizedText(display)
    attrs.Description = description or ua.LocalizedText(display)
    attrs.EventNotifier = 0
    item.NodeAttributes = attrs
    return item


def _variable_item(parent: ua.NodeId, nid: ua.NodeId, name: str, value: Any, *, datatype: int,
                   historizing: bool = False, prop: bool = False, analog: bool = False,
                   description: str | None = None) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId, item.ParentNodeId = nid, parent
    item.BrowseName = ua.QualifiedName(name, 0 if prop else nid.NamespaceIndex)
    item.NodeClass = ua.NodeClass.Variable
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasProperty if prop else ua.ObjectIds.HasComponent)
    item.TypeDefinition = ua.NodeId(ua.ObjectIds.PropertyType if prop else
                                    ua.ObjectIds.AnalogItemType if analog else ua.ObjectIds.BaseDataVariableType)
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(description or name)
    attrs.DataType = ua.NodeId(datatype)
    attrs.Value = ua.Variant(value, ua.VariantType.Double) if datatype == ua.ObjectIds.Double else ua.Variant(value)
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.ArrayDimensions = None
    attrs.WriteMask = attrs.UserWriteMask = 0
    access = ua.AccessLevel.CurrentRead.mask | (ua.AccessLevel.HistoryRead.mask if historizing else 0)
    attrs.AccessLevel = attrs.UserAccessLevel = access
    attrs.Historizing = historizing
    attrs.MinimumSamplingInterval = 0.0
    item.NodeAttributes = attrs
    return item


def _plant_items(ns: int, plant: Plant, t: float, historizing: bool) -> list[ua.AddNodesItem]:
    """Objects → Plant → site → unit → asset → one Double per tag, with EU properties."""
    objects = ua.NodeId(ua.ObjectIds.ObjectsFolder)
    root = ua.NodeId("Plant", ns)
    items = [_object_item(objects, root, "Plant", "Plant", folder=True)]
    tags_by_asset: dict[str, list[Tag]] = {}
    for tag in plant.tags:
        tags_by_asset.setdefault(tag.asset, []).append(tag)
    for site in SITES:
        site_id = ua.NodeId(site.code, ns)
        items.append(_object_item(root, site_id, site.code, site.name, folder=True,
                                  description=ua.LocalizedText(site.name_ar, "ar")))
        for unit_code, unit_name, unit_ar in site.units:
            unit_id = ua.NodeId(f"{site.code}.{unit_code}", ns)
            items.append(_object_item(site_id, unit_id, unit_code, unit_name, folder=True,
                                      description=ua.LocalizedText(unit_ar, "ar")))
            for asset in (a for a in ASSETS if a.site == site.code and a.unit == unit_code):
                asset_id = ua.NodeId(f"{site.code}.{unit_code}.{asset.code}", ns)
                items.append(_object_item(unit_id, asset_id, asset.code, asset.name, folder=False,
                                          description=ua.LocalizedText(asset.name_ar, "ar")))
                for tag in tags_by_asset.get(asset.code, []):
                    items.extend(_tag_items(ns, asset_id, tag, plant.value(tag, t), historizing))
    return items


def _tag_items(ns: int, asset_id: ua.NodeId, tag: Tag, value: float, historizing: bool) -> list[ua.AddNodesItem]:
    nid = ua.NodeId(tag.path, ns)
    name = tag.path.rsplit(".", 1)[-1]
    items = [_variable_item(asset_id, nid, name, value, datatype=ua.ObjectIds.Double, historizing=historizing,
                            analog=bool(tag.eng_unit), description=f"{tag.asset} {tag.role}")]
    if tag.eng_unit:
        items.append(_variable_item(nid, ua.NodeId(f"{tag.path}.EngineeringUnits", ns), "EngineeringUnits",
                                    _eu_information(tag.eng_unit), datatype=ua.ObjectIds.EUInformation, prop=True))
    items.append(_variable_item(nid, ua.NodeId(f"{tag.path}.EURange", ns), "EURange", _eu_range(tag),
                                datatype=ua.ObjectIds.Range, prop=True))
    return items


def _bench_items(ns: int, count: int, historizing: bool) -> list[ua.AddNodesItem]:
    """Bench → G000 … → S00000 …: groups of BENCH_GROUP, because asyncua checks every new
    child against all of its parent's references (5,000 siblings took 13 s to create)."""
    folder = ua.NodeId(BENCH_FOLDER, ns)
    items = [_object_item(ua.NodeId(ua.ObjectIds.ObjectsFolder), folder, BENCH_FOLDER, BENCH_FOLDER, folder=True)]
    for first in range(0, count, BENCH_GROUP):
        last = min(first + BENCH_GROUP, count) - 1
        group_id = ua.NodeId(f"{BENCH_FOLDER}.G{first // BENCH_GROUP:03d}", ns)
        items.append(_object_item(folder, group_id, f"G{first // BENCH_GROUP:03d}",
                                  f"S{first:05d}-S{last:05d}", folder=True))
        items.extend(_variable_item(group_id, ua.NodeId(bench_node_id(i), ns), bench_node_id(i).split(".", 1)[1],
                                    bench_value(i, 0), datatype=ua.ObjectIds.Double, historizing=historizing)
                     for i in range(first, last + 1))
    return items


# --------------------------------------------------------------------------- simulator


@dataclass
class _Group:
    """Nodes written together at one rate, with exact per-node write counters."""

    name: str
    hz: float
    node_ids: list[ua.NodeId]
    series: _Series
    counts: list[int]
    ticks: int = 0
    skipped_ticks: int = 0
    seq: int = 0
    index: dict[ua.NodeId, int] = field(default_factory=dict)


class OpcUaSimulator:
    """The demo plant (and optional benchmark signals) served over OPC-UA.

    ``async with OpcUaSimulator(plant, port=..., cert_dir=...) as sim:`` starts the server
    and its update loops; ``sim.endpoint_url`` is what a client dials. ``stop()`` then
    ``start()`` again restarts the server on the same port (sessions are lost, counters
    and history are kept, as with a real server restart).
    """

    def __init__(
        self,
        plant: Plant,
        *,
        host: str = "127.0.0.1",
        port: int = 4840,
        cert_dir: Path,
        users: dict[str, str] | None = None,
        allow_anonymous: bool = True,
        security: Iterable[str | ua.SecurityPolicyType] | None = None,
        update_hz: float = 1.0,
        bench_signals: int = 0,
        bench_hz: float = 10.0,
        history: bool = True,
        history_period_s: int = 3600,
        bench_history_s: int | None = None,
        trusted_client_certs_dir: Path | None = None,
    ) -> None:
        if update_hz <= 0 or bench_hz <= 0:
            raise ValueError("update_hz and bench_hz must be positive")
        if not 0 <= bench_signals <= 99_999:
            raise ValueError("bench_signals must be between 0 and 99999")
        self.plant = plant
        self.host, self.port = host, port
        self.cert_dir = Path(cert_dir)
        self.users = dict(users or {})
        self.allow_anonymous = allow_anonymous
        self.security = [parse_security(s) for s in (DEFAULT_SECURITY if security is None else security)]
        self.update_hz, self.bench_signals, self.bench_hz = update_hz, bench_signals, bench_hz
        self.history_enabled = history
        self.history = TickHistory(keep_s=history_period_s)
        # Bench history shares the period unless told otherwise; its rows are tiny (one int per tick).
        self.bench_history_s = history_period_s if bench_history_s is None else bench_history_s
        self.trusted_client_certs_dir = Path(trusted_client_certs_dir) if trusted_client_certs_dir else None
        self.validator = TrustListValidator(self.trusted_client_certs_dir) if self.trusted_client_certs_dir else None
        self.namespace_index: int | None = None
        self.server_certificate_thumbprint: str | None = None
        self.loop_cpu_s = 0.0           # CPU seconds spent inside the update loops (this thread)
        self.write_errors = 0
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._groups: list[_Group] = []
        self._started_at: float | None = None

    # ---- lifecycle

    @property
    def endpoint_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"opc.tcp://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> OpcUaSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Build the address space and listen: about 2 s (1.5 s is asyncua loading its standard
        nodes), +0.3 s per 1,000 bench signals, +0.2 s the first time a certificate is made."""
        if self._server is not None:
            return
        t0 = time.perf_counter()
        report_queue_overflows()
        server = Server(user_manager=DemoUserManager(self.users, self.allow_anonymous))
        server.iserver.history_manager.set_storage(self.history)
        await server.init()
        server.set_endpoint(f"opc.tcp://{self.host}:{self.port}")
        server.set_server_name(PRODUCT_NAME)
        server.product_uri = PRODUCT_URI
        server.manufacturer_name = MANUFACTURER
        server.application_type = ua.ApplicationType.Server
        await server.set_application_uri(SERVER_APPLICATION_URI)
        await server.set_build_info(PRODUCT_URI, MANUFACTURER, PRODUCT_NAME, SOFTWARE_VERSION, "1",
                                    datetime(2025, 1, 1, tzinfo=timezone.utc))
        await self._load_certificate(server)
        server.set_security_policy(self.security)
        tokens: list[type] = [ua.UserNameIdentityToken]
        if self.allow_anonymous:
            tokens.insert(0, ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if self.validator is not None:
            server.set_certificate_validator(self.validator)
        self.namespace_index = await server.register_namespace(NAMESPACE_URI)
        await self._build_address_space(server)
        try:
            await server.start()
        except BaseException:
            await self._stop_clock(server)
            raise
        if self.port == 0 and server.bserver is not None:
            self.port = server.bserver.port  # resolved ephemeral port, kept for restarts
        self._server = server
        self._started_at = time.time()
        for group in self._groups:
            await self._initial_tick(group)
        self._tasks = [asyncio.create_task(self._run_group(g), name=f"opcua-sim-{g.name}") for g in self._groups]
        log.info("opcua_sim.started", extra={"endpoint": self.endpoint_url, "signals": self.signal_count,
                                             "startup_s": round(time.perf_counter() - t0, 2)})

    async def stop(self) -> None:
        """Stop the loops and the server quickly (no waiting on asyncua's 1 s clock tick)."""
        server, self._server = self._server, None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if server is None:
            return
        await self._stop_clock(server)
        await server.stop()
        await self._close_orphan_sessions(server)
        log.info("opcua_sim.stopped", extra={"endpoint": self.endpoint_url, "values_written": self.values_written})

    @staticmethod
    async def _close_orphan_sessions(server: Server) -> None:
        """Sessions with subscriptions outlive their TCP connection (OPC UA Part 4 §6.7) and
        would keep their loops, and asyncua's process-wide session count, until they time
        out; a stopped server has no use for them."""
        registry = getattr(server.iserver, "_external_sessions", None) or {}
        for session in list(registry.values()):
            with contextlib.suppress(Exception):
                await session.close_session(True)

    @staticmethod
    async def _stop_clock(server: Server) -> None:
        iserver = server.iserver
        task = getattr(iserver, "time_task", None)
        if task is not None:
            iserver._time_task_stop = True  # noqa: SLF001 - lets stop() skip its 1 s sleep
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            iserver.time_task = None

    async def _load_certificate(self, server: Server) -> None:
        hosts = [] if _is_ip(self.host) or self.host in ("", "localhost") else [self.host]
        cert = await asyncio.to_thread(
            ensure_app_certificate, self.cert_dir, stem="server", application_uri=SERVER_APPLICATION_URI,
            common_name=PRODUCT_NAME, server=True, hostnames=hosts)
        await server.load_certificate(cert.cert_der, format="der")
        await server.load_private_key(cert.key_pem, format="pem")
        self.server_certificate_thumbprint = cert.thumbprint

    async def _build_address_space(self, server: Server) -> None:
        ns = self.namespace_index
        assert ns is not None
        now = math.floor(time.time() * self.update_hz) / self.update_hz
        items = _plant_items(ns, self.plant, now, self.history_enabled)
        if self.bench_signals:
            items.extend(_bench_items(ns, self.bench_signals, self.history_enabled))
        results = await server.iserver.isession.add_nodes(items)
        for item, res in zip(items, results, strict=True):
            if not res.StatusCode.is_good():
                raise RuntimeError(f"could not create {item.RequestedNewNodeId.to_string()}: {res.StatusCode.name}")
        if not self._groups:
            self._groups = self._make_groups(ns)
        for group in self._groups:
            for column, nid in enumerate(group.node_ids):
                if self.history_enabled:
                    self.history.register(nid, group.series, column)

    def _make_groups(self, ns: int) -> list[_Group]:
        plant_ids = [ua.NodeId(tag.path, ns) for tag in self.plant.tags]
        groups = [_Group("plant", self.update_hz, plant_ids, self.history.plant, [0] * len(plant_ids))]
        if self.bench_signals:
            bench_ids = [ua.NodeId(bench_node_id(i), ns) for i in range(self.bench_signals)]
            groups.append(_Group("bench", self.bench_hz, bench_ids, self.history.bench, [0] * len(bench_ids)))
        for group in groups:
            group.index = {nid: i for i, nid in enumerate(group.node_ids)}
        return groups

    # ---- update loops

    async def _run_group(self, group: _Group) -> None:
        """Write the group on a wall-clock grid (t = k / hz); if the loop falls more than a
        tick behind it skips ahead (counted in skipped_ticks) instead of bursting."""
        hz = group.hz
        k = math.floor(time.time() * hz) + 1
        try:
            while True:
                delay = k / hz - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif -delay > 1.0 / hz:
                    behind = math.floor(time.time() * hz) - k
                    group.skipped_ticks += behind
                    k += behind
                await self._write_tick(group, k / hz)
                k += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - keep the server alive, but make it loud
            log.exception("opcua_sim.update_loop_failed", extra={"group": group.name})
            raise

    async def _initial_tick(self, group: _Group) -> None:
        """Write (and count) the value a client sees before the first loop tick, so every value
        a client can receive was written by ``_write_tick`` and is in the counters and history."""
        t = math.floor(time.time() * group.hz) / group.hz
        times = group.series.times
        if not times or t > times[-1]:
            await self._write_tick(group, t)

    async def _write_tick(self, group: _Group, t: float) -> None:
        cpu = time.thread_time()
        aspace = self._server.iserver.aspace  # type: ignore[union-attr]
        stamp = _dt(t)
        t = stamp.timestamp()  # microsecond-exact, so history bounds round-trip through DateTime
        server_stamp = datetime.now(timezone.utc)
        good = ua.StatusCode()
        double = ua.VariantType.Double
        value_attr = ua.AttributeIds.Value
        group.seq += 1
        if group.name == "plant":
            values: Sequence[float] = array("d", (self.plant.value(tag, t) for tag in self.plant.tags))
            row: Any = values
        else:
            seq = group.seq
            values = [bench_value(i, seq) for i in range(len(group.node_ids))]
            row = seq
        if self.history_enabled:
            keep = self.history.keep_s if group.name == "plant" else self.bench_history_s
            group.series.append(t, row, keep)
        counts = group.counts
        for i, nid in enumerate(group.node_ids):
            dv = SharedDataValue(Value=ua.Variant(values[i], double), StatusCode=good,
                                 SourceTimestamp=stamp, ServerTimestamp=server_stamp)
            status = await aspace.write_attribute_value(nid, value_attr, dv)
            if status.is_good():
                counts[i] += 1
            else:
                self.write_errors += 1
            if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                self.loop_cpu_s += time.thread_time() - cpu
                await asyncio.sleep(0)
                if self._server is None:
                    return
                cpu = time.thread_time()
        group.ticks += 1
        self.loop_cpu_s += time.thread_time() - cpu

    # ---- counters for tests and the benchmark

    @property
    def signal_count(self) -> int:
        return len(self.plant.tags) + self.bench_signals

    @property
    def values_written(self) -> int:
        """Exact number of values written (all nodes, since construction)."""
        return sum(sum(g.counts) for g in self._groups)

    def _locate(self, node_id: str | ua.NodeId) -> tuple[_Group, int] | None:
        nid = node_id if isinstance(node_id, ua.NodeId) else (
            ua.NodeId.from_string(node_id) if node_id.startswith(("ns=", "i=", "s=", "nsu=")) else
            ua.NodeId(node_id, self.namespace_index or 2))
        for group in self._groups:
            if nid in group.index:
                return group, group.index[nid]
        return None

    def session_count(self) -> int:
        """Sessions the server holds now (a client that leaves without closing keeps one until it times out)."""
        server = self._server
        return len(getattr(server.iserver, "_external_sessions", None) or {}) if server else 0

    def values_written_for(self, node_id: str | ua.NodeId) -> int:
        """Exact number of values written to one node (``ns=2;s=…`` or the bare tag path)."""
        found = self._locate(node_id)
        return found[0].counts[found[1]] if found else 0

    def written_samples(self, node_id: str | ua.NodeId, start: datetime | None = None,
                        end: datetime | None = None) -> list[tuple[datetime, float]]:
        """What was written to a node within the kept history window, oldest first."""
        found = self._locate(node_id)
        if not found or not self.history_enabled:
            return []
        group, column = found
        lo = _epoch(start) if start else 0.0
        hi = _epoch(end) if end else math.inf
        return [(_dt(t), v) for t, v in self.history.samples(group.node_ids[column], lo, hi)]

    def stats(self) -> dict[str, Any]:
        """Counters for logs and the benchmark (no secrets)."""
        uptime = time.time() - self._started_at if self._started_at else 0.0
        return {
            "endpoint": self.endpoint_url, "signals": self.signal_count, "values_written": self.values_written,
            "write_errors": self.write_errors, "loop_cpu_s": round(self.loop_cpu_s, 3), "uptime_s": round(uptime, 1),
            "groups": {g.name: {"hz": g.hz, "signals": len(g.node_ids), "ticks": g.ticks,
                                "skipped_ticks": g.skipped_ticks} for g in self._groups},
            "rejected_certificates": self.validator.rejected if self.validator else 0,
        }

    def trust_client_certificate(self, cert_der: bytes, name: str = "client") -> Path:
        """Put a client certificate in the trust list (only with ``trusted_client_certs_dir``)."""
        if self.trusted_client_certs_dir is None:
            raise RuntimeError("this simulator accepts every client certificate; there is no trust list")
        self.trusted_client_certs_dir.mkdir(parents=True, exist_ok=True)
        path = self.trusted_client_certs_dir / f"{name}.der"
        path.write_bytes(cert_der)
        return path


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- manual runs


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m optria.demo.opcua_server",
                                     description="Serve the OPTRIA demo plant over OPC-UA.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4840)
    parser.add_argument("--cert-dir", type=Path, default=None, help="default: <data_dir>/pki/simulator")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                        help="add a login (repeatable); OPCUA_USERNAME/OPCUA_PASSWORD are added too")
    parser.add_argument("--no-anonymous", action="store_true")
    parser.add_argument("--security", action="append", default=None, metavar="POLICY:MODE",
                        help="'None', 'Basic256Sha256:SignAndEncrypt', ...; 'all' for every supported one")
    parser.add_argument("--update-hz", type=float, default=1.0)
    parser.add_argument("--bench-signals", type=int, default=0)
    parser.add_argument("--bench-hz", type=float, default=10.0)
    parser.add_argument("--no-history", action="store_true")
    parser.add_argument("--history-s", type=int, default=3600)
    parser.add_argument("--trusted-certs", type=Path, default=None)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    settings = load_settings()
    users = dict(u.split(":", 1) for u in args.user if ":" in u)
    if settings.opcua_username and settings.opcua_password:
        users.setdefault(settings.opcua_username, settings.opcua_password.get_secret_value())
    security: Iterable[str] | None = None
    if args.security:
        security = ALL_SECURITY if "all" in args.security else args.security
    sim = OpcUaSimulator(
        Plant(), host=args.host, port=args.port, cert_dir=args.cert_dir or settings.data_dir / "pki" / "simulator",
        users=users, allow_anonymous=not args.no_anonymous, security=security, update_hz=args.update_hz,
        bench_signals=args.bench_signals, bench_hz=args.bench_hz, history=not args.no_history,
        history_period_s=args.history_s, trusted_client_certs_dir=args.trusted_certs)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stopping.set)  # containers stop with SIGTERM
    async with sim:
        print(f"OPC-UA demo plant on {sim.endpoint_url} ({sim.signal_count} signals, users: "
              f"{', '.join(sorted(users)) or 'none'}, anonymous: {'yes' if sim.allow_anonymous else 'no'})", flush=True)
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 60)
            log.info("opcua_sim.stats", extra=sim.stats())


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
