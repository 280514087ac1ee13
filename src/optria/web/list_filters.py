"""List filters from query strings, parsed once for a page and its JSON API.

An area declares its filters as dataclasses of :class:`ListFilter` (the fields are the query
string's keys; ``start``/``end`` travel as ``from``/``to``) and reads a query string with
:class:`Parsed`. A value that is simply invalid (an unknown status, a date that is not a date,
page "x") is dropped and explained by a notice, a msgid: pages show the notices above the
list, the APIs answer 400 with them. What an id means (an asset of the tenant, say) the area
checks itself. :func:`pager` turns a filter and a total into the pager the templates draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from optria.web import formatting
from optria.web.request_context import MAX_ID

MAX_PAGE = 100_000
SEARCH_MAX = 100


def N_(message: str) -> str:
    """Mark a msgid for extraction; translated where it is shown."""
    return message


def parse_id(value: Any) -> int | None:
    """A positive database id from an int or a string of ASCII digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= MAX_ID else None
    text = str(value).strip() if value is not None else ""
    if text.isdigit() and text.isascii():
        number = int(text)
        return number if 0 < number <= MAX_ID else None
    return None


def parse_time(raw: str, *, end: bool = False) -> datetime | None:
    """A date or date-time from a filter box; naive values are in the page's time zone (the one its
    times are shown in). A bare date as the end of a range means the whole day."""
    text = raw.strip()
    zone = formatting.zone()
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").date()
            value = datetime.combine(day, time(0), zone)
            return value + timedelta(days=1) if end else value
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if not 1900 <= value.year <= 2200:
        return None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _out(value: Any) -> Any:
    """A filter value as the query string and the filter boxes carry it (times in the page's zone)."""
    if isinstance(value, datetime):
        return value.astimezone(formatting.zone()).strftime("%Y-%m-%dT%H:%M")
    if value is True:
        return "1"
    return value


@dataclass
class ListFilter:
    """Base: the page number, and the query string that reproduces the filter."""

    page: int = 1

    def query(self, **changes: Any) -> str:
        values = asdict(replace(self, **changes)) if changes else asdict(self)
        if values.get("page") == 1:
            values.pop("page")
        pairs = [(("from" if k == "start" else "to" if k == "end" else k), _out(v))
                 for k, v in values.items() if v not in (None, "", False)]
        return ("?" + urlencode(pairs)) if pairs else ""

    def query_value(self, name: str) -> str:
        """A field as its filter box shows it (times in the page's time zone)."""
        value = getattr(self, name, None)
        return "" if value in (None, False) else str(_out(value))

    @property
    def active(self) -> bool:
        return any(v not in (None, "", False) for k, v in asdict(self).items() if k != "page")


@dataclass
class Parsed:
    """A query string being read into a filter; ``notices`` collects what was dropped and why."""

    params: Mapping[str, str]
    notices: list[str] = field(default_factory=list)

    def raw(self, key: str) -> str | None:
        """The value, or None when it is missing or blank."""
        value = self.params.get(key)
        return None if value is None or value.strip() == "" else value

    def page(self) -> int:
        raw = self.raw("page")
        if raw is None:
            return 1
        number = parse_id(raw)
        if number is None or number > MAX_PAGE:
            self.notices.append(N_("The page number was not valid; showing the first page."))
            return 1
        return number

    def choice(self, key: str, choices: tuple[str, ...], notice: str) -> str | None:
        raw = self.raw(key)
        if raw is None:
            return None
        if raw not in choices:
            self.notices.append(notice)
            return None
        return raw

    def known_id(self, key: str, known: set[int], notice: str) -> int | None:
        """An id that must be one of ``known`` (the tenant's sites, say); anything else is dropped."""
        raw = self.raw(key)
        if raw is None:
            return None
        ref = parse_id(raw)
        if ref is None or ref not in known:
            self.notices.append(notice)
            return None
        return ref

    def flag(self, key: str) -> bool:
        return (self.raw(key) or "").lower() in ("1", "true", "yes", "on")

    def search(self, key: str = "q") -> str:
        """Search text, shortened to ``SEARCH_MAX`` characters."""
        text = (self.raw(key) or "").strip()
        if len(text) > SEARCH_MAX:
            self.notices.append(N_("The search text was shortened to 100 characters."))
            text = text[:SEARCH_MAX]
        return text

    def time_range(self) -> tuple[datetime | None, datetime | None]:
        """``from`` and ``to``; an end before the start is dropped."""
        start = end = None
        raw = self.raw("from")
        if raw is not None:
            start = parse_time(raw)
            if start is None:
                self.notices.append(N_("The start of the time range was not a valid date; it was ignored."))
        raw = self.raw("to")
        if raw is not None:
            end = parse_time(raw, end=True)
            if end is None:
                self.notices.append(N_("The end of the time range was not a valid date; it was ignored."))
        if start and end and end <= start:
            self.notices.append(N_("The time range ends before it starts; the end was ignored."))
            end = None
        return start, end


def pager(f: ListFilter, total: int, page_size: int, base: str, *, capped: bool = False) -> dict[str, Any]:
    """Page links and figures for the templates' pager; ``capped``: the total stopped counting at a cap,
    so there may be a next page past the last counted one."""
    pages = max(1, math.ceil(total / page_size))
    first = (f.page - 1) * page_size + 1
    has_next = f.page < pages or (capped and f.page * page_size < total)
    return {
        "page": f.page, "pages": pages, "total": total, "capped": capped,
        "first": first if total else 0, "last": min(total, f.page * page_size),
        "prev": base + f.query(page=f.page - 1) if f.page > 1 else None,
        "next": base + f.query(page=f.page + 1) if has_next else None,
    }
