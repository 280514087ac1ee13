"""One severity scale for every event, and how each source's own levels map onto it.

The Black Box compares, filters and groups events from very different sources, so each
source's levels are translated once, here, when an event is normalized:

============================  ==========  =====================================================
source level                  severity    why
============================  ==========  =====================================================
OPC-UA severity 801–1000      critical    OPC-UA Part 9 bands (1–1000 split in five equal bands:
OPC-UA severity 601–800       high        "High", "Medium High", "Medium", "Medium Low", "Low"),
OPC-UA severity 401–600       medium      one band per level of our scale
OPC-UA severity 201–400       low
OPC-UA severity 1–200         info
OPC-UA severity 0 / > 1000    rejected    outside the range the specification allows
alert severity                same name   alerts already use this scale (0003_assets.sql)
work-order priority low       low         a work order is a response, not a fault: even an
work-order priority medium    medium      urgent one never makes an incident critical by
work-order priority high      high        itself, so "urgent" stops at high
work-order priority urgent    high
limit breach (warn_*)         medium      the warning band of a mapping
limit breach (crit_*)         critical    the critical band: opens an incident
return to normal              info
quality bad (3) / stale (4)   medium      data can no longer be trusted / source lost
quality good again            info
integration error             high        data stopped arriving
integration disconnected      high
integration stopped           low         usually deliberate (disabled, lease moved)
integration connected         info
backfill started / finished   low / info
optimization run failed       low
optimization run other        info
acknowledge / clear / close   info        operator and maintenance actions carry no severity
============================  ==========  =====================================================

Text levels from SQL sources accept our names and the common synonyms in ``TEXT_SYNONYMS``
(``warning`` → medium, ``error`` → high, ``fatal`` → critical, ...); a number is read as an
OPC-UA severity.
"""

from __future__ import annotations

SEVERITIES: tuple[str, ...] = ("info", "low", "medium", "high", "critical")
RANK: dict[str, int] = {name: i for i, name in enumerate(SEVERITIES)}

# (lowest OPC-UA severity of the band, our level), highest band first
OPCUA_BANDS: tuple[tuple[int, str], ...] = ((801, "critical"), (601, "high"), (401, "medium"), (201, "low"), (1, "info"))

WORK_ORDER_PRIORITY: dict[str, str] = {"low": "low", "medium": "medium", "high": "high", "urgent": "high"}

LIMIT_LEVEL: dict[str, str] = {"warn_low": "medium", "warn_high": "medium", "crit_low": "critical",
                               "crit_high": "critical", "normal": "info"}

TEXT_SYNONYMS: dict[str, str] = {
    "debug": "info", "information": "info", "informational": "info", "notice": "info", "ok": "info", "normal": "info",
    "minor": "low", "lo": "low",
    "warn": "medium", "warning": "medium", "moderate": "medium", "med": "medium", "major": "high",
    "error": "high", "err": "high", "hi": "high", "severe": "high", "alarm": "high",
    "fatal": "critical", "emergency": "critical", "emerg": "critical", "crit": "critical",
    "hihi": "critical", "high-high": "critical", "trip": "critical",
}


class SeverityError(ValueError):
    """A source level that maps to nothing; the record carrying it is rejected as malformed."""


def opcua_severity(value: object) -> str:
    """OPC-UA event severity (integer 1–1000) to our scale."""
    if isinstance(value, bool):
        raise SeverityError("OPC-UA severity must be a number from 1 to 1000")
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SeverityError("OPC-UA severity must be a number from 1 to 1000") from None
    if isinstance(value, float) and value != number:
        raise SeverityError("OPC-UA severity must be a whole number")
    if not 1 <= number <= 1000:
        raise SeverityError(f"OPC-UA severity {number} is outside 1–1000")
    for lowest, level in OPCUA_BANDS:
        if number >= lowest:
            return level
    raise SeverityError("unreachable")  # pragma: no cover


def alert_severity(value: str) -> str:
    if value not in RANK:
        raise SeverityError(f"unknown alert severity {value!r}")
    return value


def work_order_severity(priority: str) -> str:
    try:
        return WORK_ORDER_PRIORITY[priority]
    except KeyError:
        raise SeverityError(f"unknown work-order priority {priority!r}") from None


def limit_severity(level: str) -> str:
    return LIMIT_LEVEL[level]


def text_severity(value: object) -> str:
    """A level written by an external system: our names, common synonyms, or an OPC-UA number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return opcua_severity(value)
    if not isinstance(value, str) or not value.strip():
        raise SeverityError("severity is missing")
    text = value.strip().lower()
    if text in RANK:
        return text
    if text in TEXT_SYNONYMS:
        return TEXT_SYNONYMS[text]
    if text.isdigit():
        return opcua_severity(int(text))
    raise SeverityError(f"unknown severity {value.strip()[:40]!r}")


def worst(*levels: str | None) -> str:
    """The most severe of the given levels (an incident's severity is the worst of its events)."""
    present = [lv for lv in levels if lv]
    if not present:
        return "info"
    return max(present, key=lambda lv: RANK[lv])
