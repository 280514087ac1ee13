"""Filters of the incident list and the event explorer, parsed once for pages and API.

A value that is simply invalid (an unknown status, a date that is not a date, page "x") is
dropped with a notice: pages show the notices, the API answers 400 with them. An asset,
site or integration id that is not in the signed-in user's tenant is "not found" (404):
the page was asked about one thing, and nothing about it — not even that it exists
elsewhere — is revealed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from optria.blackbox import store
from optria.blackbox.events import CATEGORIES, SOURCE_SYSTEMS
from optria.blackbox.models import INCIDENT_STATUS_FILTERS
from optria.blackbox.severity import SEVERITIES
from optria.blackbox.store import Conn
from optria.web import formatting

MAX_PAGE = 100_000
MAX_ID = 2**63 - 1
SEARCH_MAX = 100


def N_(message: str) -> str:
    """Mark a msgid for extraction; translated where it is shown."""
    return message


class NotInTenant(LookupError):
    """An id in the query string that the tenant does not have."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass
class ListFilter:
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

    def sql_params(self) -> tuple[dict[str, Any], list[str]]:
        """(parameters, names of the active filter fragments) for the store."""
        params: dict[str, Any] = {}
        active: list[str] = []
        for key, value in asdict(self).items():
            if key == "page" or value in (None, "", False):
                continue
            if key == "status" and value == "active":
                active.append("active")
                continue
            if key == "q":
                params["q_like"] = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            elif value is not True:
                params[key] = value
            active.append(key)
        return params, active


def _page_zone():
    """The time zone the page shows times in (filter boxes are read and written in it)."""
    return formatting.zone()


def _out(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(_page_zone()).strftime("%Y-%m-%dT%H:%M")
    if value is True:
        return "1"
    return value


@dataclass
class IncidentFilter(ListFilter):
    status: str | None = None
    severity: str | None = None
    asset_id: int | None = None
    site_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class EventFilter(ListFilter):
    severity: str | None = None
    category: str | None = None
    source_system: str | None = None
    asset_id: int | None = None
    site_id: int | None = None
    integration_id: int | None = None
    alarm_key: str | None = None
    no_asset: bool = False
    flagged: bool = False
    q: str = ""
    start: datetime | None = None
    end: datetime | None = None


def parse_id(raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit():
        return None
    value = int(raw.strip())
    return value if 0 < value <= MAX_ID else None


def parse_time(raw: str, *, end: bool = False) -> datetime | None:
    """A date or date-time from a filter box; naive values are in the page's time zone (the one its
    times are shown in). A bare date as the end of a range means the whole day."""
    text = raw.strip()
    zone = _page_zone()
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


@dataclass
class Parsed:
    params: Mapping[str, str]
    notices: list[str] = field(default_factory=list)

    def raw(self, key: str) -> str | None:
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

    def flag(self, key: str) -> bool:
        return (self.raw(key) or "").lower() in ("1", "true", "yes", "on")

    def time_range(self) -> tuple[datetime | None, datetime | None]:
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

    async def ref(self, conn: Conn, tenant_id: UUID, key: str, query: str, what: str, notice: str) -> int | None:
        raw = self.raw(key)
        if raw is None:
            return None
        ref = parse_id(raw)
        if ref is None:
            self.notices.append(notice)
            return None
        if await store.fetch_one(conn, query, {"tenant_id": tenant_id, key: ref}) is None:
            raise NotInTenant(what)
        return ref


BAD_ASSET = N_("The asset in the filter was not a valid id; the asset filter was ignored.")
BAD_SITE = N_("The site in the filter was not a valid id; the site filter was ignored.")
BAD_SEVERITY = N_("Unknown severity; the severity filter was ignored.")


async def incident_filter(conn: Conn, tenant_id: UUID, params: Mapping[str, str]) -> tuple[IncidentFilter, list[str]]:
    p = Parsed(params)
    start, end = p.time_range()
    f = IncidentFilter(
        status=p.choice("status", INCIDENT_STATUS_FILTERS, N_("Unknown incident status; the status filter was ignored.")),
        severity=p.choice("severity", SEVERITIES, BAD_SEVERITY),
        asset_id=await p.ref(conn, tenant_id, "asset_id", store.ASSET, "asset", BAD_ASSET),
        site_id=await p.ref(conn, tenant_id, "site_id", store.SITE, "site", BAD_SITE),
        start=start, end=end)
    f.page = p.page()
    return f, p.notices


async def event_filter(conn: Conn, tenant_id: UUID, params: Mapping[str, str]) -> tuple[EventFilter, list[str]]:
    p = Parsed(params)
    start, end = p.time_range()
    q = (p.raw("q") or "").strip()
    if len(q) > SEARCH_MAX:
        p.notices.append(N_("The search text was shortened to 100 characters."))
        q = q[:SEARCH_MAX]
    alarm_key = p.raw("alarm_key")
    if alarm_key is not None and len(alarm_key) > 300:
        p.notices.append(N_("The alarm in the filter was not valid; the alarm filter was ignored."))
        alarm_key = None
    f = EventFilter(
        severity=p.choice("severity", SEVERITIES, BAD_SEVERITY),
        category=p.choice("category", CATEGORIES, N_("Unknown category; the category filter was ignored.")),
        source_system=p.choice("source_system", SOURCE_SYSTEMS, N_("Unknown source; the source filter was ignored.")),
        asset_id=await p.ref(conn, tenant_id, "asset_id", store.ASSET, "asset", BAD_ASSET),
        site_id=await p.ref(conn, tenant_id, "site_id", store.SITE, "site", BAD_SITE),
        integration_id=await p.ref(conn, tenant_id, "integration_id", store.INTEGRATION, "integration",
                                   N_("The integration in the filter was not a valid id; the integration filter was ignored.")),
        alarm_key=alarm_key, no_asset=p.flag("no_asset"), flagged=p.flag("flagged"), q=q, start=start, end=end)
    f.page = p.page()
    return f, p.notices
