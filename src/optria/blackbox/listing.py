"""The incident list and the event log as the pages and the JSON API read them: the query string
parsed into a filter (:mod:`optria.blackbox.filters`), one page of rows, and the total.

Counting a million events to print "page 1 of 40,000" is not worth it: the total is counted at
most ``COUNT_PAGES_AHEAD`` pages past the page shown, and ``capped`` says when it stopped there
("1–25 of more than 250").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from optria.blackbox import store
from optria.blackbox.filters import EventFilter, IncidentFilter, event_filter, incident_filter
from optria.blackbox.store import Conn

COUNT_PAGES_AHEAD = 10

ListRows = Callable[..., Awaitable[tuple[list[dict[str, Any]], int]]]


@dataclass
class Listing:
    filter: IncidentFilter | EventFilter
    notices: list[str]          # filter values that were dropped, and why (msgids)
    rows: list[dict[str, Any]]
    total: int
    capped: bool                # the count stopped at its cap: there may be more


async def incidents(conn: Conn, tenant_id: UUID, query: Mapping[str, str], page_size: int) -> Listing:
    """One page of incidents, newest first. Raises NotInTenant for an id the tenant does not have."""
    f, notices = await incident_filter(conn, tenant_id, query)
    return await _read(conn, tenant_id, f, notices, store.list_incidents, page_size)


async def events(conn: Conn, tenant_id: UUID, query: Mapping[str, str], page_size: int) -> Listing:
    """One page of the event log, newest first. Raises NotInTenant for an id the tenant does not have."""
    f, notices = await event_filter(conn, tenant_id, query)
    return await _read(conn, tenant_id, f, notices, store.list_events, page_size)


async def _read(conn: Conn, tenant_id: UUID, f: IncidentFilter | EventFilter, notices: list[str],
                list_rows: ListRows, page_size: int) -> Listing:
    params, active = f.sql_params()
    offset = (f.page - 1) * page_size
    cap = offset + page_size * COUNT_PAGES_AHEAD
    rows, total = await list_rows(conn, tenant_id, params, active, limit=page_size, offset=offset, cap=cap)
    return Listing(f, notices, rows, total, capped=total >= cap)
