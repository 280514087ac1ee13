"""Alerts and work orders: raise/acknowledge/clear and open/start/close from the asset page and the API,
refused transitions (409) and bad input (422), one history row per change in the same transaction,
the filtered lists, and two people acting on the same alert at once."""

from __future__ import annotations

import asyncio
import re

import pytest

from optria.assets import lifecycle
from optria.assets.lifecycle import Actor
from optria.assets.validation import Conflict
from tests.web.assets_setup import make_plant, rows


async def _signed_in(web, accounts, role: str = "reliability_engineer"):
    tenant = await accounts.tenant()
    account = await accounts.user(role, tenant)
    await web.login(account)
    web.client.cookies.set("lang", "en")
    return account


def _alert_history(owner_conn, alert_id: int) -> list[tuple]:
    return rows(owner_conn, "SELECT action, from_status, to_status, actor_name, note FROM alert_history "
                            "WHERE alert_id = %s ORDER BY id", alert_id)


def _wo_history(owner_conn, work_order_id: int) -> list[tuple]:
    return rows(owner_conn, "SELECT action, from_status, to_status, actor_name, note FROM work_order_history "
                            "WHERE work_order_id = %s ORDER BY id", work_order_id)


async def test_alert_lifecycle_from_the_asset_page(web, accounts, db, owner_conn) -> None:
    account = await _signed_in(web, accounts)
    ids = await make_plant(db, account.tenant_id, assets=1)
    asset_id = ids.assets["A-P-1"]

    r = await web.post_form(f"/assets/{asset_id}/alerts", {"severity": "critical", "title": "Seal leak",
                                                          "description": "Visible drip at the mechanical seal"})
    assert r.status_code in (302, 303)
    assert r.headers["location"] == f"/assets/{asset_id}#alerts"
    alert_id = rows(owner_conn, "SELECT id FROM alerts WHERE asset_id = %s", asset_id)[0][0]
    page = await web.get(r.headers["location"])
    assert "Alert raised." in page.text and "Seal leak" in page.text
    assert rows(owner_conn, "SELECT status, source, raised_by FROM alerts WHERE id = %s", alert_id)[0] == \
        ("open", "manual", account.user_id)
    assert _alert_history(owner_conn, alert_id) == [("raised", None, "open", account.username, "")]

    r = await web.post_form(f"/alerts/{alert_id}/acknowledge", {"next": f"/assets/{asset_id}"})
    assert r.status_code in (302, 303) and r.headers["location"] == f"/assets/{asset_id}#alerts"
    assert "Alert acknowledged." in (await web.get(r.headers["location"])).text
    r = await web.post_form(f"/alerts/{alert_id}/acknowledge", {})
    assert r.status_code == 409
    assert "This alert is already acknowledged." in r.text and 'data-testid="action-error"' in r.text

    r = await web.post_form(f"/alerts/{alert_id}/clear", {"note": "Seal replaced"})
    assert r.status_code in (302, 303) and r.headers["location"] == f"/assets/{asset_id}#alerts"
    page = await web.get(r.headers["location"])
    assert "Alert cleared." in page.text
    assert "Alert cleared." not in (await web.get(r.headers["location"])).text   # shown once
    r = await web.post_form(f"/alerts/{alert_id}/clear", {})
    assert r.status_code == 409 and "This alert is already cleared." in r.text
    r = await web.post_form(f"/alerts/{alert_id}/acknowledge", {})
    assert r.status_code == 409

    assert _alert_history(owner_conn, alert_id) == [
        ("raised", None, "open", account.username, ""),
        ("acknowledged", "open", "acknowledged", account.username, ""),
        ("cleared", "acknowledged", "cleared", account.username, "Seal replaced"),
    ]
    row = rows(owner_conn, "SELECT status, acknowledged_by, cleared_by, acknowledged_at IS NOT NULL, "
                           "cleared_at IS NOT NULL FROM alerts WHERE id = %s", alert_id)[0]
    assert row == ("cleared", account.user_id, account.user_id, True, True)
    # a cleared alert shows no actions any more
    page = await web.get(f"/assets/{asset_id}")
    assert f'action="/alerts/{alert_id}/clear"' not in page.text


async def test_raise_alert_validation(web, accounts, db, owner_conn) -> None:
    account = await _signed_in(web, accounts)
    ids = await make_plant(db, account.tenant_id, assets=1)
    asset_id = ids.assets["A-P-1"]
    r = await web.post_form(f"/assets/{asset_id}/alerts", {"severity": "apocalyptic", "title": ""})
    assert r.status_code == 422
    assert "Choose a severity: info, low, medium, high or critical." in r.text and "Enter a title." in r.text
    assert "<details class=\"inline-form\" open>" in r.text      # the form stays open with the messages
    assert rows(owner_conn, "SELECT count(*) FROM alerts")[0][0] == 0
    assert rows(owner_conn, "SELECT count(*) FROM alert_history")[0][0] == 0
    assert (await web.post_form("/assets/987654321/alerts", {"severity": "low", "title": "x"})).status_code == 404
    assert (await web.post_form("/alerts/987654321/clear", {})).status_code == 404
    await web.post_form(f"/assets/{asset_id}/alerts", {"severity": "low", "title": "Noise"})
    alert_id = rows(owner_conn, "SELECT id FROM alerts")[0][0]
    r = await web.post_form(f"/alerts/{alert_id}/clear", {"note": "n" * 1001})
    assert r.status_code == 422 and "Notes are limited to 1000 characters." in r.text
    assert rows(owner_conn, "SELECT status FROM alerts WHERE id = %s", alert_id)[0][0] == "open"


async def test_work_order_lifecycle(web, accounts, db, owner_conn) -> None:
    account = await _signed_in(web, accounts, role="engineer")
    ids = await make_plant(db, account.tenant_id, assets=2, with_activity=True)
    asset_id, other_asset = list(ids.assets.values())

    r = await web.post_form(f"/assets/{asset_id}/work-orders", {"title": "Replace bearing", "priority": "urgent",
                                                               "alert_id": str(ids.alert_id)})
    assert r.status_code in (302, 303) and r.headers["location"] == f"/assets/{asset_id}#work-orders"
    assert "Work order opened." in (await web.get(r.headers["location"])).text
    wo = rows(owner_conn, "SELECT id, status, priority, alert_id, created_by FROM work_orders "
                          "WHERE title = 'Replace bearing'")[0]
    wo_id = wo[0]
    assert wo[1:] == ("open", "urgent", ids.alert_id, account.user_id)

    r = await web.post_form(f"/work-orders/{wo_id}/status", {"status": "in_progress", "next": "/work-orders?status=active"})
    assert r.status_code in (302, 303)
    assert r.headers["location"] == "/work-orders?status=active"
    assert "Work order moved to in progress." in (await web.get(r.headers["location"])).text
    r = await web.post_form(f"/work-orders/{wo_id}/status", {"status": "in_progress"})
    assert r.status_code == 409 and "This work order is already in progress." in r.text
    r = await web.post_form(f"/work-orders/{wo_id}/status", {"status": "open"})
    assert r.status_code == 409
    r = await web.post_form(f"/work-orders/{wo_id}/status", {"status": "done"})
    assert r.status_code == 422 and "The status must be open, in_progress or closed." in r.text
    r = await web.post_form(f"/work-orders/{wo_id}/status", {"status": "closed", "note": "Bearing replaced"})
    assert r.status_code in (302, 303)
    r = await web.post_form(f"/work-orders/{wo_id}/status", {"status": "closed"})
    assert r.status_code == 409 and "This work order is already closed." in r.text

    assert _wo_history(owner_conn, wo_id) == [
        ("opened", None, "open", account.username, ""),
        ("status_changed", "open", "in_progress", account.username, ""),
        ("closed", "in_progress", "closed", account.username, "Bearing replaced"),
    ]
    assert rows(owner_conn, "SELECT closed_by, closed_at IS NOT NULL FROM work_orders WHERE id = %s", wo_id)[0] == \
        (account.user_id, True)

    # an alert of another asset cannot be linked; bad priority and missing title are refused
    r = await web.post_form(f"/assets/{other_asset}/work-orders", {"title": "x", "alert_id": str(ids.alert_id)})
    assert r.status_code == 422 and "Choose an alert of this asset, or none." in r.text
    r = await web.post_form(f"/assets/{other_asset}/work-orders", {"title": "", "priority": "whenever"})
    assert r.status_code == 422
    assert "Enter a title." in r.text and "Choose a priority: low, medium, high or urgent." in r.text
    assert rows(owner_conn, "SELECT count(*) FROM work_orders WHERE asset_id = %s", other_asset)[0][0] == 0


async def test_api_alerts_and_work_orders(web, accounts, db, owner_conn) -> None:
    account = await _signed_in(web, accounts, role="tenant_admin")
    ids = await make_plant(db, account.tenant_id, assets=1)
    asset_id = ids.assets["A-P-1"]

    r = await web.api("POST", f"/api/assets/{asset_id}/alerts", json={"severity": "high", "title": "Vibration high",
                                                                     "source": "rule", "source_ref": "vib-limit"})
    assert r.status_code == 201, r.text
    alert = r.json()
    assert alert["status"] == "open" and alert["asset_code"] == "A-P-1" and alert["raised_by"] == account.username
    # the same live rule alert is not raised twice
    r = await web.api("POST", f"/api/assets/{asset_id}/alerts", json={"severity": "high", "title": "again",
                                                                     "source": "rule", "source_ref": "vib-limit"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "duplicate_alert"
    r = await web.api("POST", f"/api/assets/{asset_id}/alerts", json={"severity": "extreme", "title": "x"})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["fields"] == {"severity": "Choose a severity: info, low, medium, high or critical."}
    r = await web.api("POST", f"/api/assets/{asset_id}/alerts", json={"severity": "low", "title": "x", "source": "psychic"})
    assert r.status_code == 422

    r = await web.api("POST", f"/api/alerts/{alert['id']}/acknowledge")
    assert r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["acknowledged_by"] == account.username
    r = await web.api("POST", f"/api/alerts/{alert['id']}/clear", json={"note": "Balanced the rotor"})
    assert r.status_code == 200 and r.json()["status"] == "cleared"
    r = await web.api("POST", f"/api/alerts/{alert['id']}/clear")
    assert r.status_code == 409
    assert r.json()["error"] == {"code": "invalid_transition", "message": "This alert is already cleared."}
    # once cleared, the rule may raise again
    r = await web.api("POST", f"/api/assets/{asset_id}/alerts", json={"severity": "high", "title": "Vibration high",
                                                                     "source": "rule", "source_ref": "vib-limit"})
    assert r.status_code == 201
    listed = (await web.api("GET", f"/api/assets/{asset_id}/alerts?status=active")).json()
    assert [a["title"] for a in listed["items"]] == ["Vibration high"] and listed["total"] == 1
    assert (await web.api("GET", f"/api/assets/{asset_id}/alerts?status=nope")).status_code == 400
    assert _alert_history(owner_conn, alert["id"])[-1] == ("cleared", "acknowledged", "cleared", account.username,
                                                           "Balanced the rotor")

    r = await web.api("POST", f"/api/assets/{asset_id}/work-orders", json={"title": "Balance rotor", "priority": "high"})
    assert r.status_code == 201
    wo = r.json()
    assert wo["status"] == "open" and wo["created_by"] == account.username
    r = await web.api("PATCH", f"/api/work-orders/{wo['id']}", json={"status": "closed", "note": "done"})
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["closed_by"] == account.username
    r = await web.api("PATCH", f"/api/work-orders/{wo['id']}", json={"status": "closed"})
    assert r.status_code == 409 and r.json()["error"]["message"] == "This work order is already closed."
    r = await web.api("PATCH", f"/api/work-orders/{wo['id']}", json={"status": "finished"})
    assert r.status_code == 422
    r = await web.api("POST", f"/api/assets/{asset_id}/work-orders", json={"title": "   "})
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"] == {"title": "Enter a title."}
    assert (await web.api("PATCH", "/api/work-orders/987654321", json={"status": "closed"})).status_code == 404
    assert (await web.api("POST", "/api/alerts/987654321/acknowledge")).status_code == 404
    listed = (await web.api("GET", f"/api/assets/{asset_id}/work-orders")).json()
    assert [w["status"] for w in listed["items"]] == ["closed"]
    assert _wo_history(owner_conn, wo["id"]) == [("opened", None, "open", account.username, ""),
                                                 ("closed", "open", "closed", account.username, "done")]


async def test_lists_filter_and_link(web, accounts, db) -> None:
    account = await _signed_in(web, accounts, role="viewer")
    ids = await make_plant(db, account.tenant_id, assets=2, with_activity=True)
    p1, p2 = ids.assets.values()
    actor = Actor.system("rules")
    async with db.tenant(account.tenant_id) as conn:
        low = await lifecycle.raise_alert(conn, account.tenant_id, p2, {"severity": "low", "title": "Filter dirty",
                                                                        "description": "", "source": "rule",
                                                                        "source_ref": None}, actor)
        await lifecycle.clear_alert(conn, account.tenant_id, low, actor)
        await lifecycle.open_work_order(conn, account.tenant_id, p2, {"title": "Change filter", "description": "",
                                                                      "priority": "low", "alert_id": None}, actor)

    def alert_ids(html: str) -> set[int]:
        return {int(x) for x in re.findall(r'data-alert-id="(\d+)"', html)}

    def wo_titles(html: str) -> list[str]:
        return re.findall(r'<tr data-work-order-id="\d+">.*?<strong>([^<]+)</strong>', html, re.S)

    assert alert_ids((await web.get("/alerts")).text) == {ids.alert_id, low}
    assert alert_ids((await web.get("/alerts?status=active")).text) == {ids.alert_id}
    assert alert_ids((await web.get("/alerts?status=cleared")).text) == {low}
    assert alert_ids((await web.get("/alerts?severity=high")).text) == {ids.alert_id}
    assert alert_ids((await web.get(f"/alerts?asset_id={p2}")).text) == {low}
    assert alert_ids((await web.get(f"/alerts?site_id={ids.other_site_id}")).text) == set()
    r = await web.get("/alerts?status=maybe&severity=huge&asset_id=x")
    assert r.status_code == 200 and r.text.count("<li>") >= 3 and 'data-testid="filter-notices"' in r.text
    assert alert_ids(r.text) == {ids.alert_id, low}

    assert wo_titles((await web.get("/work-orders?status=active&priority=low")).text) == ["Change filter"]
    assert wo_titles((await web.get(f"/work-orders?asset_id={p1}")).text) == ["A inspect bearing"]
    assert wo_titles((await web.get("/work-orders?status=closed")).text) == []
    r = await web.get("/work-orders?priority=soonish")
    assert r.status_code == 200 and "Unknown priority; the priority filter was ignored." in r.text
    # a viewer sees the lists without any action
    assert 'action="/alerts/' not in (await web.get("/alerts")).text
    assert 'action="/work-orders/' not in (await web.get("/work-orders")).text
    assert (await web.post_form(f"/alerts/{ids.alert_id}/acknowledge", {})).status_code == 403
    assert (await web.api("PATCH", f"/api/work-orders/{ids.work_order_id}", json={"status": "closed"})).status_code == 403


async def test_two_people_clearing_the_same_alert(db, accounts, owner_conn) -> None:
    """The row lock makes the second clear wait, see "cleared" and refuse: one success, one history row."""
    tenant_id, _ = await accounts.tenant()
    ids = await make_plant(db, tenant_id, assets=1, with_activity=True)
    first_holds_lock = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with db.tenant(tenant_id) as conn:
            await lifecycle.clear_alert(conn, tenant_id, ids.alert_id, Actor.system("first"))
            first_holds_lock.set()
            await release.wait()

    async def second() -> None:
        await first_holds_lock.wait()
        async with db.tenant(tenant_id) as conn:
            await lifecycle.clear_alert(conn, tenant_id, ids.alert_id, Actor.system("second"))

    one = asyncio.create_task(first())
    two = asyncio.create_task(second())
    await first_holds_lock.wait()
    await asyncio.sleep(0.2)
    assert not two.done()              # blocked on the row lock
    release.set()
    await one
    with pytest.raises(Conflict):
        await two
    assert [h[0] for h in _alert_history(owner_conn, ids.alert_id)] == ["raised", "cleared"]
    assert _alert_history(owner_conn, ids.alert_id)[-1][3] == "first"


async def test_history_is_written_in_the_same_transaction(db, accounts, owner_conn) -> None:
    """A change that rolls back leaves neither the new status nor its history row."""
    tenant_id, _ = await accounts.tenant()
    ids = await make_plant(db, tenant_id, assets=1, with_activity=True)
    with pytest.raises(RuntimeError):
        async with db.tenant(tenant_id) as conn:
            await lifecycle.acknowledge_alert(conn, tenant_id, ids.alert_id, Actor.system("t"))
            await lifecycle.set_work_order_status(conn, tenant_id, ids.work_order_id, "closed", Actor.system("t"))
            raise RuntimeError("abort")
    assert rows(owner_conn, "SELECT status FROM alerts WHERE id = %s", ids.alert_id)[0][0] == "open"
    assert rows(owner_conn, "SELECT status FROM work_orders WHERE id = %s", ids.work_order_id)[0][0] == "open"
    assert [h[0] for h in _alert_history(owner_conn, ids.alert_id)] == ["raised"]
    assert [h[0] for h in _wo_history(owner_conn, ids.work_order_id)] == ["opened"]
    # history rows carry the writing transaction, for collectors that follow them by id
    xids = rows(owner_conn, "SELECT xact_id::text FROM alert_history WHERE alert_id = %s", ids.alert_id)
    assert xids and all(x[0].isdigit() for x in xids)


async def test_collector_cursor_never_skips_a_late_commit(db, accounts, owner_conn) -> None:
    """A transaction that took a lower history id but commits later is still read by the Black Box's
    alert-history query, in (xact_id, id) order."""
    from optria.blackbox import store
    from optria.db import fetch_all

    tenant_id, _ = await accounts.tenant()
    ids = await make_plant(db, tenant_id, assets=2, with_activity=True)
    async with db.tenant(tenant_id) as conn:
        other = await lifecycle.raise_alert(conn, tenant_id, ids.assets["A-P-2"], {
            "severity": "low", "title": "Other", "description": "", "source": "manual", "source_ref": None},
            Actor.system("t"))

    async def history_after(conn, cursor: tuple[str, int]) -> list[dict]:
        return await fetch_all(conn, store.ALERT_HISTORY_AFTER, {"xid": cursor[0], "id": cursor[1], "limit": 500})

    async with db.tenant(tenant_id) as conn:
        start = await history_after(conn, ("0", 0))
    assert [r["action"] for r in start] == ["raised", "raised"]
    cursor = (start[-1]["xid"], start[-1]["id"])
    slow_wrote = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> None:
        async with db.tenant(tenant_id) as conn:
            await lifecycle.acknowledge_alert(conn, tenant_id, ids.alert_id, Actor.system("slow"))  # lower id
            slow_wrote.set()
            await release.wait()

    task = asyncio.create_task(slow())
    await slow_wrote.wait()
    async with db.tenant(tenant_id) as conn:
        await lifecycle.acknowledge_alert(conn, tenant_id, other, Actor.system("fast"))             # higher id, commits first
    async with db.tenant(tenant_id) as conn:
        naive = [r["id"] for r in await (await conn.execute(
            "SELECT id FROM alert_history WHERE tenant_id = %s AND id > %s ORDER BY id", [tenant_id, cursor[1]])).fetchall()]
        safe = await history_after(conn, cursor)
    assert len(naive) == 1          # an id cursor would move past the slow row here and never see it
    assert safe == []               # the safe cursor waits for the older transaction
    release.set()
    await task
    async with db.tenant(tenant_id) as conn:
        rows_after = await history_after(conn, cursor)
    assert [r["actor_name"] for r in rows_after] == ["slow", "fast"]
    assert all(r["action"] == "acknowledged" for r in rows_after)
