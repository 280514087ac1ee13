"""A fast decoder for the one OPC-UA message ingest lives on: DataChangeNotification.

asyncua decodes every monitored item of a publish response into dataclasses (a
MonitoredItemNotification, a DataValue, a Variant, a StatusCode, two datetimes): about
13 µs per value on this machine, more than everything else ingest does with the value.
This module decodes the common shape — scalar numbers and booleans, status code, source and
server timestamps — straight into tuples ``(client handle, status code, timestamp, value)`` in a few microseconds. Anything else in a message (arrays, strings, picosecond
fields, diagnostic infos) sends the whole message to asyncua's own decoder, so the result
is always what asyncua would produce for the ingest worker's purposes.

The decoded notification is a :class:`FastDataChange`, a DataChangeNotification whose
``MonitoredItems`` are built (by asyncua's decoder, from the kept bytes) only if some other
code asks for them. :func:`install` hooks it into asyncua's ExtensionObject decoding; the
ingest OPC-UA worker installs it in the ingest process only.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua import ua_binary

_I32 = struct.Struct("<i").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I64 = struct.Struct("<q").unpack_from
# Variant built-in type id -> (struct, size, is boolean)
_SCALARS: dict[int, tuple[Any, int, bool]] = {
    1: (struct.Struct("<B").unpack_from, 1, True),     # Boolean
    2: (struct.Struct("<b").unpack_from, 1, False),    # SByte
    3: (struct.Struct("<B").unpack_from, 1, False),    # Byte
    4: (struct.Struct("<h").unpack_from, 2, False),    # Int16
    5: (struct.Struct("<H").unpack_from, 2, False),    # UInt16
    6: (struct.Struct("<i").unpack_from, 4, False),    # Int32
    7: (struct.Struct("<I").unpack_from, 4, False),    # UInt32
    8: (struct.Struct("<q").unpack_from, 8, False),    # Int64
    9: (struct.Struct("<Q").unpack_from, 8, False),    # UInt64
    10: (struct.Struct("<f").unpack_from, 4, False),   # Float
    11: (struct.Struct("<d").unpack_from, 8, False),   # Double
}
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_TICK = timedelta(microseconds=1)
_original_from_binary = ua_binary.from_binary


class _Fallback(Exception):
    """A shape this decoder leaves to asyncua."""


class FastDataChange(ua.DataChangeNotification):
    """A DataChangeNotification decoded into ``items``; ``MonitoredItems`` on demand."""

    def __init__(self, items: list[tuple], raw: bytes) -> None:  # noqa: D107 - dataclass base not initialised on purpose
        self.items = items      # (client handle, status code, timestamp or None, value or None)
        self._raw = raw
        self._full: ua.DataChangeNotification | None = None

    def _decoded(self) -> ua.DataChangeNotification:
        if self._full is None:
            self._full = _original_from_binary(ua.DataChangeNotification, Buffer(self._raw))
        return self._full

    @property
    def MonitoredItems(self) -> list:  # noqa: N802 - asyncua's field name
        return self._decoded().MonitoredItems

    @property
    def DiagnosticInfos(self) -> list:  # noqa: N802
        return self._decoded().DiagnosticInfos

    def __repr__(self) -> str:
        return f"FastDataChange({len(self.items)} items)"


def decode(body: Buffer) -> FastDataChange:
    """Decode a DataChangeNotification body; raises _Fallback for shapes left to asyncua."""
    data = body._data
    pos = body._cur_pos
    end = pos + len(body)
    raw = bytes(data[pos:end])
    data, pos, end = raw, 0, len(raw)
    (count,) = _I32(data, pos)
    pos += 4
    if count < 0 or count * 5 > end:
        raise _Fallback()
    items: list[tuple] = []
    append = items.append
    times: dict[int, datetime] = {}
    scalars = _SCALARS
    for _ in range(count):
        (handle,) = _U32(data, pos)
        mask = data[pos + 4]
        pos += 5
        if mask & 0x30:   # picoseconds: leave to asyncua
            raise _Fallback()
        value = None
        if mask & 1:
            enc = data[pos]
            pos += 1
            if enc & 0xC0:    # array or dimensions
                raise _Fallback()
            kind = enc & 0x3F
            if kind:
                scalar = scalars.get(kind)
                if scalar is None:
                    raise _Fallback()
                unpack, size, boolean = scalar
                (value,) = unpack(data, pos)
                pos += size
                if boolean:
                    value = 1.0 if value else 0.0
        code = 0
        if mask & 2:
            (code,) = _U32(data, pos)
            pos += 4
        source = server = None
        if mask & 4:
            (source,) = _I64(data, pos)
            pos += 8
        if mask & 8:
            (server,) = _I64(data, pos)
            pos += 8
        ticks = source or server
        stamp = None
        if ticks:
            stamp = times.get(ticks)
            if stamp is None:
                stamp = times[ticks] = _FILETIME_EPOCH + _TICK * (ticks // 10)
        append((handle, code, stamp, value))
        if pos > end:
            raise _Fallback()
    (diagnostics,) = _I32(data, pos)
    if diagnostics > 0:
        raise _Fallback()
    return FastDataChange(items, raw)


def _from_binary(uatype: Any, data: Any) -> Any:
    if uatype is ua.DataChangeNotification and isinstance(data, Buffer):
        start, size = data._cur_pos, len(data)
        try:
            return decode(data)
        except (_Fallback, struct.error, IndexError):
            data._cur_pos, data._size = start, size   # untouched (decode works on a copy), to be sure
    return _original_from_binary(uatype, data)


def install() -> None:
    """Route DataChangeNotification bodies through :func:`decode` (idempotent)."""
    if ua_binary.from_binary is not _from_binary:
        ua_binary.from_binary = _from_binary
