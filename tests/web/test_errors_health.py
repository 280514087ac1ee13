"""Error answers (never a 500 for bad input) and the health endpoints."""

from __future__ import annotations


async def test_unknown_page_is_404_in_layout(web) -> None:
    r = await web.get("/no/such/page")
    assert r.status_code == 404
    assert '<html lang="ar" dir="rtl">' in r.text and "الصفحة غير موجودة" in r.text


async def test_unknown_api_route_is_json_404(web) -> None:
    r = await web.get("/api/no-such-thing")
    assert r.status_code == 404
    assert r.json() == {"error": {"code": "not_found", "message": r.json()["error"]["message"]}}


async def test_wrong_method_is_405_not_500(web) -> None:
    r = await web.client.delete("/login")
    assert r.status_code == 405


async def test_garbage_form_body_is_not_a_500(web, accounts) -> None:
    token = await web.ensure_csrf()
    r = await web.client.post("/login", content=b"\xff\xfe\x00garbage", headers={
        "content-type": "application/x-www-form-urlencoded", "x-csrf-token": token})
    assert r.status_code < 500


async def test_403_page_in_layout(web, accounts) -> None:
    tenant = await accounts.tenant()
    await web.login(await accounts.user("viewer", tenant))
    r = await web.get("/management/users")
    assert r.status_code == 403
    assert "لا تملك صلاحية الوصول" in r.text and 'class="sidebar"' in r.text


async def test_healthz_readyz_metrics(web) -> None:
    assert (await web.get("/healthz")).json() == {"status": "ok"}
    r = await web.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"database": "ok", "migrations": "ok"}
    r = await web.get("/metrics")
    assert r.status_code == 200
    assert "optria_http_requests_total" in r.text and "optria_database_up 1.0" in r.text


async def test_readyz_reports_pending_migrations(web, owner_conn) -> None:
    owner_conn.execute("DELETE FROM schema_migrations WHERE key = '0001_core'")
    r = await web.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["migrations"] == "1 pending"


async def test_static_stylesheet_uses_logical_properties(web) -> None:
    r = await web.get("/static/optria.css")
    assert r.status_code == 200
    css = r.text
    assert "margin-inline" in css or "padding-inline" in css
    for physical in ("margin-left", "margin-right", "padding-left", "padding-right", "text-align: left",
                     "text-align: right", "border-left", "border-right"):
        assert physical not in css, physical
    assert "--shadow" in css and ":focus-visible" in css and ":hover" in css


async def test_the_site_icon_is_served(web) -> None:
    r = await web.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.startswith("<svg") and "max-age" in r.headers["cache-control"]


async def test_web_logs_stay_json_lines(app, web) -> None:
    """Litestar configures logging of its own unless told not to; the web process's log lines
    must stay our JSON lines (structured, secrets redacted) after the app is built and serves."""
    import io
    import json
    import logging

    await web.get("/no/such/page")
    root = logging.getLogger()
    assert root.handlers and all(getattr(h, "_optria", False) or h.__class__.__module__.startswith("_pytest")
                                 for h in root.handlers), [type(h).__name__ for h in root.handlers]
    ours = next(h for h in root.handlers if getattr(h, "_optria", False))
    stream = io.StringIO()
    previous = ours.setStream(stream)
    try:
        logging.getLogger("optria.web").warning("probe", extra={"probe": 1})
    finally:
        ours.setStream(previous)
    assert json.loads(stream.getvalue().splitlines()[-1])["probe"] == 1
