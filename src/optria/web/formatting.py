"""Numbers, percentages, quantities with units, times and durations, per language and time zone.

Every figure a page shows goes through these helpers (the template filters ``dt``, ``num``,
``pct``, ``qty``, ``unit``, ``duration``, ``rate``), so:

- numbers and dates follow the reader's locale (Babel: Arabic or English, Western digits in
  both, 24-hour clock);
- every shown time is in the site's time zone (a page about one site or asset) or the
  tenant's (the zone most of its sites use; UTC when it has none, and for the platform
  owner's cross-tenant pages), never silently UTC: ``<time>`` carries the ISO instant and
  the zone's name;
- a figure that mixes directions (a number with "%", a value with its unit, a date in an
  Arabic sentence) is isolated in ``<bdi>``, so it never reorders with its neighbours
  ("%2", "s/4.7");
- engineering units read in the reader's language (``degC`` → °C / °م, ``mm/s`` → مم/ث);
  a unit this table does not know is shown as written, isolated.

Helpers return escaped ``Markup``; values never reach a page unescaped.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_skeleton, format_timedelta, get_timezone_location
from babel.numbers import format_decimal
from markupsafe import Markup, escape

from optria.web import i18n

DEFAULT_ZONE = "UTC"
current_zone: ContextVar[str] = ContextVar("optria_zone", default=DEFAULT_ZONE)

# Engineering units as sources and mappings spell them → (English symbol, Arabic symbol). Keys are
# compared case-sensitively first, then case-insensitively (``DegC``, ``KW``).
UNITS: dict[str, tuple[str, str]] = {
    "degc": ("°C", "°م"), "°c": ("°C", "°م"), "c": ("°C", "°م"), "celsius": ("°C", "°م"),
    "degf": ("°F", "°ف"), "°f": ("°F", "°ف"), "k": ("K", "كلفن"),
    "bar": ("bar", "بار"), "barg": ("barg", "بار (مقياس)"), "mbar": ("mbar", "ملي بار"), "pa": ("Pa", "باسكال"),
    "kpa": ("kPa", "كيلوباسكال"), "mpa": ("MPa", "ميغاباسكال"), "psi": ("psi", "رطل/بوصة²"),
    "mm/s": ("mm/s", "مم/ث"), "in/s": ("in/s", "بوصة/ث"), "um": ("µm", "ميكرومتر"), "µm": ("µm", "ميكرومتر"),
    "g": ("g", "g"),
    "m3/h": ("m³/h", "م³/س"), "m³/h": ("m³/h", "م³/س"), "l/s": ("L/s", "لتر/ث"), "l/min": ("L/min", "لتر/د"),
    "t/h": ("t/h", "طن/س"), "kg/s": ("kg/s", "كغ/ث"), "kg/h": ("kg/h", "كغ/س"), "bbl/d": ("bbl/d", "برميل/يوم"),
    "kw": ("kW", "كيلوواط"), "mw": ("MW", "ميغاواط"), "w": ("W", "واط"), "kwh": ("kWh", "كيلوواط ساعة"),
    "mwh": ("MWh", "ميغاواط ساعة"), "kwh/m3": ("kWh/m³", "كيلوواط ساعة/م³"), "kwh/m³": ("kWh/m³", "كيلوواط ساعة/م³"),
    "a": ("A", "أمبير"), "v": ("V", "فولت"), "kv": ("kV", "كيلوفولت"), "hz": ("Hz", "هرتز"),
    "rpm": ("rpm", "دورة/د"), "%": ("%", "%"), "m": ("m", "م"), "mm": ("mm", "مم"), "s": ("s", "ث"),
    "ms": ("ms", "ملي ث"), "h": ("h", "س"), "ppm": ("ppm", "جزء في المليون"),
}
NO_SPACE = ("°C", "°F", "%")


def lang() -> str:
    return i18n.current_lang.get()


def page_dir() -> str:
    return i18n.LANGUAGES[lang()]["dir"]


@lru_cache(maxsize=8)
def _locale(code: str) -> Locale:
    return Locale.parse(code)


@lru_cache(maxsize=256)
def zone_info(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def zone() -> ZoneInfo:
    return zone_info(current_zone.get())


def zone_label(name: str | None = None) -> str:
    """The zone's name in the reader's language ("Saudi Arabia Time"), for a page's "times in" line."""
    z = name or current_zone.get()
    if z in ("UTC", "Etc/UTC"):
        return "UTC"
    try:
        return get_timezone_location(zone_info(z), locale=_locale(lang()))
    except (LookupError, ValueError):
        return z


def _bdi(text: str, css: str | None = None, **attrs: str) -> Markup:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    cls = f' class="{css}"' if css else ""
    return Markup(f'<bdi dir="{page_dir()}"{cls}{extra}>{escape(text)}</bdi>')


# ----------------------------------------------------------------------------- numbers


def number_text(value: float | int | None, digits: int = 2) -> str:
    """A plain string for a figure (for text that is escaped later, e.g. a message parameter)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int) or isinstance(value, bool):
        return format_decimal(int(value), format="#,##0", locale=_locale(lang()))
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(value, format=pattern, locale=_locale(lang()))


def measured_text(value: float | None) -> str:
    """A measured value: four significant decimals at most, no trailing zeros (1,250 / 11.35 / 0.0421)."""
    if value is None or not math.isfinite(value):
        return "—"
    if abs(value) >= 10_000:
        pattern = "#,##0"
    elif abs(value) >= 100:
        pattern = "#,##0.#"
    elif abs(value) >= 1:
        pattern = "#,##0.##"
    else:
        pattern = "0.####"
    return format_decimal(value, format=pattern, locale=_locale(lang()))


def num(value: float | int | None, digits: int = 2) -> Markup:
    return escape(number_text(value, digits))


def percent_text(p: float | None, digits: int = 0) -> str:
    """0.853 → "85%" (the locale's pattern)."""
    if p is None or not math.isfinite(p):
        return "—"
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
    return format_decimal(p * 100, format=pattern.replace("%", ""), locale=_locale(lang())) + "%"


def pct(p: float | None, digits: int = 0) -> Markup:
    """A percentage, isolated so it reads the same in every sentence of either direction."""
    return _bdi(percent_text(p, digits), "num")


# ----------------------------------------------------------------------------- units and quantities


def unit_text(unit: str | None) -> str:
    if not unit:
        return ""
    known = UNITS.get(unit) or UNITS.get(unit.strip().lower())
    if known is None:
        return unit
    return known[1] if lang() == "ar" else known[0]


def unit(u: str | None) -> Markup:
    text = unit_text(u)
    return _bdi(text, "unit") if text else Markup("")


def quantity_text(value: float | None, u: str | None, digits: int | None = None) -> str:
    number = measured_text(value) if digits is None else number_text(value, digits)
    symbol = unit_text(u)
    if not symbol or value is None:
        return number
    return f"{number}{symbol}" if symbol in NO_SPACE else f"{number} {symbol}"


def qty(value: float | None, u: str | None = None, digits: int | None = None) -> Markup:
    """A value with its unit, in the reader's language: the number and the unit each isolated inside
    an isolate of the page's direction ("11.35 مم/ث" reads number first in Arabic too; "°م" never
    lands on the wrong side of its number)."""
    number = measured_text(value) if digits is None else number_text(value, digits)
    symbol = unit_text(u)
    inner = f'<bdi dir="ltr">{escape(number)}</bdi>'
    if symbol and value is not None:
        inner += f' <bdi class="unit">{escape(symbol)}</bdi>'
    return Markup(f'<bdi dir="{page_dir()}" class="qty">{inner}</bdi>')


# ----------------------------------------------------------------------------- times and durations


def local(value: datetime, zone_name: str | None = None) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(zone_info(zone_name) if zone_name else zone())


def datetime_text(value: datetime | None, seconds: bool = False, zone_name: str | None = None) -> str:
    if value is None:
        return "—"
    loc = _locale(lang())
    when = local(value, zone_name)
    date = format_skeleton("yMMMd", when, locale=loc)
    time = format_skeleton("Hms" if seconds else "Hm", when, locale=loc)
    return str(loc.datetime_formats["medium"]).replace("{1}", date).replace("{0}", time)


def dt(value: datetime | None, seconds: bool = False, zone_name: str | None = None) -> Markup:
    """``<time>`` with the ISO instant, the zone's name as its title, the local date and time as text."""
    if value is None:
        return Markup("—")
    z = zone_name or current_zone.get()
    iso = value.astimezone(timezone.utc).isoformat() if value.tzinfo else value.isoformat()
    return Markup(f'<time datetime="{escape(iso)}" dir="{page_dir()}" title="{escape(zone_label(z))}">'
                  f'{escape(datetime_text(value, seconds, z))}</time>')


def iso_dt(value: str | None, seconds: bool = False) -> Markup:
    """``dt`` of an ISO 8601 text (times stored inside JSON documents)."""
    if not value:
        return Markup("—")
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return escape(str(value))
    return dt(parsed, seconds)


def clock_text(value: datetime | float, *, with_date: bool = False) -> str:
    """A chart axis label: local clock time ("18:04"), or the day ("6 Dec") for long spans."""
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), timezone.utc)
    when = local(value)
    return format_skeleton("MMMd" if with_date else "Hm", when, locale=_locale(lang()))


def duration_text(seconds: float | None) -> str:
    """A duration in words of the reader's language ("3 seconds" / "3 ثوانٍ", "10 minutes")."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if abs(seconds) < 1:
        return millis_text(seconds * 1000)
    return format_timedelta(seconds, threshold=1.5, format="short", locale=_locale(lang()))


def millis_text(ms: float | None) -> str:
    if ms is None or not math.isfinite(ms):
        return "—"
    symbol = unit_text("ms")
    return f"{number_text(round(ms), 0)} {symbol}"


def duration(seconds: float | None) -> Markup:
    return _bdi(duration_text(seconds), "num")


def millis(ms: float | None) -> Markup:
    return _bdi(millis_text(ms), "num")


def rate(per_s: float | None, digits: int = 1) -> Markup:
    """Samples per second, e.g. "19.0/s" / "19.0/ث", isolated."""
    if per_s is None:
        return Markup("—")
    return _bdi(f"{number_text(per_s, digits)}/{unit_text('s')}", "num")


def ltr(text: object) -> Markup:
    """A figure already formatted, isolated left to right inside a sentence of either direction."""
    return Markup('<bdi dir="ltr">{}</bdi>').format(text)


def filters() -> dict:
    """The template filters this module provides."""
    return {"dt": dt, "iso_dt": iso_dt, "ltr": ltr, "num": num, "pct": pct, "qty": qty, "unit": unit, "duration": duration, "millis": millis,
            "rate": rate}
