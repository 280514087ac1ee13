"""List filters from query strings: parsed once for the pages and the API.

An invalid value (unknown status, a site id that is not in the tenant, a page that is not
a number) is dropped and explained by a notice; pages show the notices above the list, the
API answers 400 with them. An id of another tenant is simply "not found": nothing about it
is revealed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from optria.assets import store
from optria.assets.models import ALERT_STATUS_FILTERS, HEALTH_STATUSES, SEVERITIES, WO_PRIORITIES, WO_STATUS_FILTERS
from optria.assets.store import Conn
from optria.assets.validation import N_, parse_id

MAX_PAGE = 100_000
SEARCH_MAX = 100


def _blank(value: str | None) -> bool:
    return value is None or value.strip() == ""


@dataclass
class ListFilter:
    """Base: the page number, and the query string that reproduces the filter."""

    page: int = 1

    def query(self, **changes: Any) -> str:
        values = asdict(replace(self, **changes)) if changes else asdict(self)
        if values.get("page") == 1:
            values.pop("page")
        pairs = [(k, v) for k, v in values.items() if v not in (None, "")]
        return ("?" + urlencode(pairs)) if pairs else ""

    @property
    def active(self) -> bool:
        return any(v not in (None, "") for k, v in asdict(self).items() if k != "page")


@dataclass
class AssetFilter(ListFilter):
    q: str = ""
    site_id: int | None = None
    unit_id: int | None = None
    status: str | None = None


@dataclass
class AlertFilter(ListFilter):
    status: str | None = None
    severity: str | None = None
    asset_id: int | None = None
    site_id: int | None = None


@dataclass
class WorkOrderFilter(ListFilter):
    status: str | None = None
    priority: str | None = None
    asset_id: int | None = None
    site_id: int | None = None


@dataclass
class Parsed:
    notices: list[str] = field(default_factory=list)

    def page(self, params: Mapping[str, str]) -> int:
        raw = params.get("page")
        if _blank(raw):
            return 1
        number = parse_id(raw)
        if number is None or number > MAX_PAGE:
            self.notices.append(N_("The page number was not valid; showing the first page."))
            return 1
        return number

    def choice(self, params: Mapping[str, str], key: str, choices: tuple[str, ...], notice: str) -> str | None:
        raw = params.get(key)
        if _blank(raw):
            return None
        if raw not in choices:
            self.notices.append(notice)
            return None
        return raw

    def known_id(self, params: Mapping[str, str], key: str, known: set[int], notice: str) -> int | None:
        raw = params.get(key)
        if _blank(raw):
            return None
        ref = parse_id(raw)
        if ref is None or ref not in known:
            self.notices.append(notice)
            return None
        return ref

    async def asset_id(self, conn: Conn, tenant_id: UUID, params: Mapping[str, str]) -> int | None:
        raw = params.get("asset_id")
        if _blank(raw):
            return None
        ref = parse_id(raw)
        if ref is None or await store.asset_exists(conn, tenant_id, ref) is None:
            self.notices.append(N_("The selected asset was not found; the asset filter was ignored."))
            return None
        return ref


SITE_NOT_FOUND = N_("The selected site was not found; the site filter was ignored.")


def asset_filter(params: Mapping[str, str], sites: list[dict[str, Any]],
                 units: list[dict[str, Any]]) -> tuple[AssetFilter, list[str]]:
    p = Parsed()
    site_id = p.known_id(params, "site_id", {s["id"] for s in sites}, SITE_NOT_FOUND)
    unit_site = {u["id"]: u["site_id"] for u in units}
    unit_id = p.known_id(params, "unit_id", set(unit_site),
                         N_("The selected unit was not found; the unit filter was ignored."))
    if unit_id is not None and site_id is not None and unit_site[unit_id] != site_id:
        p.notices.append(N_("The selected unit is not in the selected site; the unit filter was ignored."))
        unit_id = None
    status = p.choice(params, "status", HEALTH_STATUSES, N_("Unknown health status; the status filter was ignored."))
    q = (params.get("q") or "").strip()
    if len(q) > SEARCH_MAX:
        p.notices.append(N_("The search text was shortened to 100 characters."))
        q = q[:SEARCH_MAX]
    return AssetFilter(page=p.page(params), q=q, site_id=site_id, unit_id=unit_id, status=status), p.notices


async def alert_filter(conn: Conn, tenant_id: UUID, params: Mapping[str, str],
                       sites: list[dict[str, Any]]) -> tuple[AlertFilter, list[str]]:
    p = Parsed()
    f = AlertFilter(
        status=p.choice(params, "status", ALERT_STATUS_FILTERS, N_("Unknown alert status; the status filter was ignored.")),
        severity=p.choice(params, "severity", SEVERITIES, N_("Unknown severity; the severity filter was ignored.")),
        asset_id=await p.asset_id(conn, tenant_id, params),
        site_id=p.known_id(params, "site_id", {s["id"] for s in sites}, SITE_NOT_FOUND),
    )
    f.page = p.page(params)
    return f, p.notices


async def work_order_filter(conn: Conn, tenant_id: UUID, params: Mapping[str, str],
                            sites: list[dict[str, Any]]) -> tuple[WorkOrderFilter, list[str]]:
    p = Parsed()
    f = WorkOrderFilter(
        status=p.choice(params, "status", WO_STATUS_FILTERS,
                        N_("Unknown work order status; the status filter was ignored.")),
        priority=p.choice(params, "priority", WO_PRIORITIES, N_("Unknown priority; the priority filter was ignored.")),
        asset_id=await p.asset_id(conn, tenant_id, params),
        site_id=p.known_id(params, "site_id", {s["id"] for s in sites}, SITE_NOT_FOUND),
    )
    f.page = p.page(params)
    return f, p.notices
