"""The Digital Twin pages and live stream: grid, filters, empty states, the twin view of an asset,
tenant isolation of every route, and Server-Sent Events fed by real NOTIFYs from the ingest writer."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from optria.twin import live
from optria.twin.jobs import ScoringJob
from tests.fix_web import new_web
from tests.twin_arrange import map_signals, write_values
from tests.web.assets_setup import make_plant
from tests.web.routes_walk import walk

SECRET = "Bravo"  # every name and code of tenant B contains it


@dataclass
class Plant:
    tenant: tuple
    ids: dict[str, int]
    site_id: int
    other_site_id: int
    signals: dict[int, dict[str, int]] = field(default_factory=dict)
    mapped: dict[int, object] = field(default_factory=dict)


async def arrange(db, db_dsn: str, owner_conn, accounts, tag: str, *, critical: bool = True) -> Plant:
    """Three pumps in one unit: P-1 critical (vibration 12.5), P-2 normal, P-3 with no mapped signals."""
    tenant = await accounts.tenant()
    plant = await make_plant(db, tenant[0], tag=tag, assets=3)
    out = Plant(tenant, dict(plant.assets), plant.site_id, plant.other_site_id)
    for code, vibration in ((f"{tag}-P-1", 12.5 if critical else 2.2), (f"{tag}-P-2", 2.2)):
        m = map_signals(owner_conn, tenant[0], out.ids[code], ["vibration", "temperature"])
        out.mapped[out.ids[code]] = m
        out.signals[out.ids[code]] = m.signals
        await write_values(db_dsn, m, {"vibration": vibration, "temperature": 71.0})
    await ScoringJob(db, notify=False).run_once()
    return out


def cards_of(html: str) -> dict[int, str]:
    """asset id -> the card's opening tag (its data attributes)."""
    return {int(m.group(1)): m.group(0) for m in re.finditer(r'<article class="twin-card" data-asset-id="(\d+)"[^>]*>', html)}


# ----------------------------------------------------------------------------- pages


async def test_grid_shows_cards_by_site_and_unit_with_health_and_links(web, accounts, db, db_dsn, owner_conn) -> None:
    p = await arrange(db, db_dsn, owner_conn, accounts, "G")
    await web.login(await accounts.user("viewer", p.tenant))
    r = await web.get("/digital-twin")
    assert r.status_code == 200
    html = r.text
    cards = cards_of(html)
    assert set(cards) == set(p.ids.values())
    one, two, three = (cards[p.ids[f"G-P-{n}"]] for n in (1, 2, 3))
    assert 'data-status="critical"' in one and 'data-risk="high"' in one
    assert 'data-status="normal"' in two and 'data-risk="low"' in two and 'data-data="none"' in two
    assert 'data-status="nodata"' in three and 'data-data="unmapped"' in three
    assert "لا توجد إشارات مربوطة" in html                # "No mapped signals", in Arabic by default
    assert html.index("G North Plant") < html.index("G Unit One") < html.index(f'data-asset-id="{p.ids["G-P-1"]}"')
    assert f'href="/assets/{p.ids["G-P-1"]}"' in html and f'href="/digital-twin/assets/{p.ids["G-P-1"]}"' in html
    # the value and its unit (in the reader's language) are isolated from the Arabic around them
    assert '<bdi dir="ltr" data-field="value">12.50</bdi> <bdi class="unit">مم/ث</bdi>' in html
    assert f'data-testid="spark-{p.signals[p.ids["G-P-1"]]["vibration"]}"' in html   # a sparkline per shown signal
    assert 'data-twin-stream="/digital-twin/stream?ids=' in html and 'dir="rtl"' in html
    assert 'data-testid="twin-setup"' not in html          # integration, mappings and data are all there


async def test_filters_and_invalid_filters(web, accounts, db, db_dsn, owner_conn) -> None:
    p = await arrange(db, db_dsn, owner_conn, accounts, "F")
    await web.login(await accounts.user("engineer", p.tenant))
    only_critical = cards_of((await web.get("/digital-twin?status=critical")).text)
    assert set(only_critical) == {p.ids["F-P-1"]}
    assert set(cards_of((await web.get("/digital-twin?q=F-P-2")).text)) == {p.ids["F-P-2"]}
    empty = (await web.get(f"/digital-twin?site_id={p.other_site_id}")).text
    assert cards_of(empty) == {} and 'data-testid="twin-no-match"' in empty
    for bad in ("status=bogus", "site_id=abc", "site_id=987654321", "page=x", "unit_id=-4", "page=999"):
        r = await web.get(f"/digital-twin?{bad}")
        assert r.status_code == 200, bad
        assert 'data-testid="filter-notices"' in r.text, bad
        assert set(cards_of(r.text)) == set(p.ids.values()), bad


async def test_empty_states_tell_a_new_tenant_what_to_do(web, accounts, db, db_dsn, owner_conn) -> None:
    tenant = await accounts.tenant()
    await web.login(await accounts.user("tenant_admin", tenant))
    html = (await web.get("/digital-twin")).text
    assert 'data-testid="twin-empty"' in html and 'href="/assets/new"' in html and 'href="/integrations"' in html
    plant = await make_plant(db, tenant[0], tag="E", assets=1)
    html = (await web.get("/digital-twin")).text
    assert 'data-testid="twin-setup"' in html and "لم يُربط أي مصدر بيانات بعد" in html   # no integration yet
    m = map_signals(owner_conn, tenant[0], plant.assets["E-P-1"], ["vibration"])
    html = (await web.get("/digital-twin")).text
    assert "بانتظار البيانات" in html                       # mapped, waiting for data
    assert 'data-data="waiting"' in html
    await write_values(db_dsn, m, {"vibration": 3.0})
    html = (await web.get("/digital-twin")).text
    assert 'data-testid="twin-setup"' not in html


async def test_twin_view_of_an_asset(web, accounts, db, db_dsn, owner_conn) -> None:
    p = await arrange(db, db_dsn, owner_conn, accounts, "V")
    asset = p.ids["V-P-1"]
    await web.login(await accounts.user("reliability_engineer", p.tenant))
    r = await web.get(f"/digital-twin/assets/{asset}")
    assert r.status_code == 200
    html = r.text
    vib = p.signals[asset]["vibration"]
    assert f'data-testid="trend-{vib}"' in html and 'data-testid="health-history"' in html
    assert f'href="/blackbox?asset_id={asset}"' in html
    assert f'<a href="/assets">' in html and f'<a href="/assets/{asset}">' in html   # breadcrumbs
    assert re.search(rf'data-signal-id="{vib}" data-state="critical"', html)
    assert 'class="gauge-mark gauge-ch"' in html and '<svg class="svg-chart" dir="ltr"' in html
    assert "فوق الحد الحرج" in html                      # why: above the critical limit
    assert 'data-testid="status-changes"' in html
    for key in ("24h", "7d"):
        assert (await web.get(f"/digital-twin/assets/{asset}?range={key}")).status_code == 200
    bogus = await web.get(f"/digital-twin/assets/{asset}?range=forever")
    assert bogus.status_code == 200 and 'data-testid="filter-notices"' in bogus.text
    no_signals = (await web.get(f"/digital-twin/assets/{p.ids['V-P-3']}")).text
    assert 'data-testid="twin-no-signals"' in no_signals
    assert (await web.get("/digital-twin/assets/987654321")).status_code == 404
    assert (await web.get("/digital-twin/assets/0")).status_code == 404
    assert (await web.get("/digital-twin/assets/99999999999999999999")).status_code in (400, 404)


async def test_other_tenant_ids_are_not_found_and_never_shown(web, accounts, db, db_dsn, owner_conn) -> None:
    a = await arrange(db, db_dsn, owner_conn, accounts, "Alpha")
    b = await arrange(db, db_dsn, owner_conn, accounts, SECRET)
    await web.login(await accounts.user("tenant_admin", a.tenant))
    for b_asset in b.ids.values():
        r = await web.get(f"/digital-twin/assets/{b_asset}")
        assert r.status_code == 404 and SECRET not in r.text
    for query in (f"site_id={b.site_id}", f"unit_id={b.site_id}", "q=P-", "status=critical", ""):
        r = await web.get(f"/digital-twin?{query}")
        assert r.status_code == 200 and SECRET not in r.text, query
        assert not set(cards_of(r.text)) & set(b.ids.values())
    searched = await web.get(f"/digital-twin?q={SECRET}")       # the search text is echoed, nothing else of B
    assert cards_of(searched.text) == {} and f"{SECRET}-P-1" not in searched.text


async def test_every_twin_route_is_covered(app) -> None:
    mine = {r.path for r in walk(app) if r.handler.fn.__module__.startswith("optria.twin")}
    assert mine == {"/digital-twin", "/digital-twin/assets/{asset_id}", "/digital-twin/stream"}


# ----------------------------------------------------------------------------- live stream


class SseStream:
    """Drives the real app's ASGI callable for one streaming GET (the test client buffers whole
    responses, which an endless event stream never ends)."""

    def __init__(self, app, path: str, cookies: dict[str, str], headers: dict[str, str] | None = None) -> None:
        self.app = app
        parts = urlsplit(path)
        hdrs = {"accept": "text/event-stream", "host": "testserver.local",
                "cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()), **(headers or {})}
        self.scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                      "scheme": "http", "path": parts.path, "raw_path": parts.path.encode(),
                      "query_string": parts.query.encode(), "root_path": "", "client": ("127.0.0.1", 50000),
                      "server": ("testserver.local", 80), "state": {},
                      "headers": [(k.encode(), v.encode()) for k, v in hdrs.items()]}
        self.status: int | None = None
        self.buffer = ""
        self.events: list[tuple[str, str, str]] = []   # (event, id, data)
        self._got = asyncio.Event()
        self._gone = asyncio.Event()
        self._asked = False
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> "SseStream":
        self.task = asyncio.create_task(self.app(self.scope, self._receive, self._send))
        await self.wait(lambda: self.status is not None, 5)
        return self

    async def __aexit__(self, *exc) -> None:
        self._gone.set()
        await asyncio.wait_for(self.task, 10)

    async def _receive(self):
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.buffer += message.get("body", b"").decode()
            while "\r\n\r\n" in self.buffer:
                block, self.buffer = self.buffer.split("\r\n\r\n", 1)
                fields = {"event": "message", "id": "", "data": ""}
                for line in block.split("\r\n"):
                    if line.startswith(":"):
                        continue
                    name, _, value = line.partition(": ")
                    if name in fields:
                        fields[name] = value
                if fields["data"]:
                    self.events.append((fields["event"], fields["id"], fields["data"]))
        self._got.set()

    async def wait(self, predicate, timeout: float = 5.0) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            self._got.clear()
            try:
                await asyncio.wait_for(self._got.wait(), left)
            except asyncio.TimeoutError:
                return False
        return True

    def card_ids(self) -> set[int]:
        return {c["id"] for e, _, d in self.events if e == "cards" for c in json.loads(d)["cards"]}

    def cards(self, asset_id: int) -> list[dict]:
        return [c for e, _, d in self.events if e == "cards" for c in json.loads(d)["cards"] if c["id"] == asset_id]


async def test_stream_needs_event_stream_accept_and_a_twin_permission(web, accounts, app) -> None:
    tenant = await accounts.tenant()
    await web.login(await accounts.user("viewer", tenant))
    r = await web.get("/digital-twin/stream")
    assert r.status_code == 406 and "/digital-twin" in r.text
    async with new_web(app) as anon:
        r = await anon.get("/digital-twin/stream", headers={"accept": "text/event-stream"})
        assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    async with new_web(app) as owner_web:
        await owner_web.login(await accounts.user("platform_owner"))
        assert (await owner_web.get("/digital-twin/stream", headers={"accept": "text/event-stream"})).status_code == 403


async def test_sse_pushes_changed_cards_only_to_their_own_tenant(app, client, accounts, db, db_dsn, owner_conn) -> None:
    a = await arrange(db, db_dsn, owner_conn, accounts, "Alpha", critical=False)
    b = await arrange(db, db_dsn, owner_conn, accounts, SECRET, critical=False)
    a_asset, b_asset = a.ids["Alpha-P-1"], b.ids[f"{SECRET}-P-1"]
    async with new_web(app) as wa, new_web(app) as wb:
        await wa.login(await accounts.user("viewer", a.tenant))
        await wb.login(await accounts.user("viewer", b.tenant))
        ids_b = ",".join(str(i) for i in b.ids.values())
        # A even asks for B's ids: it still gets only what its own tenant has
        async with SseStream(app, f"/digital-twin/stream?ids={ids_b},{a_asset}", dict(wa.client.cookies)) as sa, \
                SseStream(app, "/digital-twin/stream", dict(wb.client.cookies)) as sb:
            assert sa.status == sb.status == 200
            hub = live.hub_of(app)
            assert await sa.wait(lambda: hub.listening.is_set() and hub.subscriber_count() == 2)

            await write_values(db_dsn, b.mapped[b_asset], {"vibration": 12.5})   # a real commit + NOTIFY for B
            assert await sb.wait(lambda: b_asset in sb.card_ids()), sb.events
            await ScoringJob(db).run_once()                                     # B's card turns critical
            assert await sb.wait(lambda: any(c["status"] == "critical" for c in sb.cards(b_asset)))
            counts = [c for e, _, d in sb.events if e == "cards" and (c := json.loads(d).get("counts"))]
            assert counts[-1][str(b.site_id)].get("critical") == 1                 # the status strip follows
            critical = [c for c in sb.cards(b_asset) if c["status"] == "critical"][-1]
            assert critical["risk"] == "high" and any(v["text"] == "12.50" and v["state"] == "critical"
                                                      for v in critical["values"])

            await write_values(db_dsn, a.mapped[a_asset], {"vibration": 2.4})
            assert await sa.wait(lambda: a_asset in sa.card_ids())
            await asyncio.sleep(0.3)
            assert sa.card_ids() == {a_asset}
            assert not sb.card_ids() & set(a.ids.values())
            assert SECRET not in "".join(d for _, _, d in sa.events)
            assert all(e[1].isdigit() for e in sa.events)                       # ids let EventSource resume
    assert live.hub_of(app).subscriber_count() == 0                            # disconnects unsubscribe


async def test_stream_catches_up_from_the_last_event_id(app, client, accounts, db, db_dsn, owner_conn) -> None:
    p = await arrange(db, db_dsn, owner_conn, accounts, "C", critical=False)
    asset = p.ids["C-P-2"]
    async with new_web(app) as w:
        await w.login(await accounts.user("viewer", p.tenant))
        async with SseStream(app, f"/digital-twin/stream?ids={asset}", dict(w.client.cookies)) as s:
            await write_values(db_dsn, p.mapped[asset], {"vibration": 3.3})
            assert await s.wait(lambda: asset in s.card_ids())
            last_id = s.events[-1][1]
        await write_values(db_dsn, p.mapped[asset], {"vibration": 4.4})      # while disconnected
        async with SseStream(app, f"/digital-twin/stream?ids={asset}", dict(w.client.cookies),
                             {"last-event-id": last_id}) as again:
            assert await again.wait(lambda: again.events)
            first = json.loads(again.events[0][2])["cards"]
            assert [v["text"] for v in first[0]["values"] if v["id"] == p.signals[asset]["vibration"]] == ["4.40"]
        async with SseStream(app, f"/digital-twin/stream?since=1000", dict(w.client.cookies)) as old:
            assert await old.wait(lambda: old.events) and old.events[0][0] == "reload"


async def test_a_slow_subscriber_is_dropped_not_the_others(app, client, accounts, db, db_dsn, owner_conn) -> None:
    p = await arrange(db, db_dsn, owner_conn, accounts, "S", critical=False)
    asset = p.ids["S-P-2"]
    hub = live.hub_of(app)
    slow = hub.subscribe(p.tenant[0])               # never read
    fast = hub.subscribe(p.tenant[0])
    try:
        assert await asyncio.wait_for(hub.listening.wait(), 5) or True
        received = 0
        for i in range(live.QUEUE_SIZE + 3):
            await write_values(db_dsn, p.mapped[asset], {"vibration": 2.0 + i / 100})
            item = await asyncio.wait_for(fast.queue.get(), 5)
            assert item is not live.CLOSE
            received += 1
        assert slow.dropped and not fast.dropped and received == live.QUEUE_SIZE + 3
        assert slow.queue.get_nowait() is live.CLOSE
        assert hub.subscriber_count(p.tenant[0]) == 1
    finally:
        hub.unsubscribe(slow)
        hub.unsubscribe(fast)


async def test_grid_pages_and_streams_only_the_cards_shown(web, accounts, db) -> None:
    from optria.twin.routes import PAGE_SIZE

    tenant = await accounts.tenant()
    plant = await make_plant(db, tenant[0], tag="P", assets=PAGE_SIZE + 4)
    await web.login(await accounts.user("viewer", tenant))
    first = (await web.get("/digital-twin")).text
    second = (await web.get("/digital-twin?page=2")).text
    one, two = set(cards_of(first)), set(cards_of(second))
    assert len(one) == PAGE_SIZE and len(two) == 4 and not one & two and one | two == set(plant.assets.values())
    assert 'href="/digital-twin?page=2"' in first and 'rel="next"' in first
    stream = re.search(r'data-twin-stream="/digital-twin/stream\?ids=([\d,]+)&amp;since=\d+"', first)
    assert stream and {int(i) for i in stream.group(1).split(",")} == one
