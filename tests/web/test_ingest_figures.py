"""The ingest figures on the pages tell the truth, checked against the test's own measurements.

A real supervisor streams from the OPC-UA simulator; the Data Sources card, the integration
page, the mapping list and the platform ingestion pages then show the rate and live lag the
test measures in the database itself (within 10 %), a source error only while it lasts (then
in the history), and rejected values per mapping with their reason.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

from optria.demo.opcua_server import NONE_ONLY, bench_node_id
from tests.fix_ingest import arrange_integration, count_samples, ingest_settings, running_supervisor, wait_for

N = 10
HZ = 10.0


def _number(html: str, testid: str, label: str | None = None) -> list[float]:
    """Numbers inside the element with ``data-testid=testid`` (digits with , grouping and a dot), each
    isolated in its own ``<bdi>`` (a figure with its unit, e.g. "2,605 ملي ث", counts by its number)."""
    m = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</span>', html, re.S)
    assert m, f"{testid} not on the page"
    return [float(x.replace(",", "")) for x in re.findall(r"<bdi[^>]*>([\d.,]+)", m.group(1))]


def _measured(owner_conn, ids: list[int], since: datetime) -> tuple[float, float, float]:
    """The test's own figures over the stored rows: rows/s since ``since``, and live lag p50 and p99
    (ms) over every row of the run (the minute the health figures cover): the time its writer
    transaction committed (the commit log's clock at its last statement) minus the source time."""
    lags = [r[0] for r in owner_conn.execute(
        "SELECT (extract(epoch FROM b.committed_at - s.time) * 1000)::float8 FROM signal_samples s "
        "JOIN sample_batches b ON b.tenant_id = s.tenant_id AND b.ingest_time = s.ingest_time "
        "WHERE s.signal_id = ANY(%s) ORDER BY 1", [ids]).fetchall()]
    recent = owner_conn.execute("SELECT count(*) FROM signal_samples WHERE signal_id = ANY(%s) AND time >= %s",
                                [ids, since]).fetchone()[0]
    span = (datetime.now(timezone.utc) - since).total_seconds()
    return recent / span, lags[len(lags) // 2], lags[min(len(lags) - 1, int(round(0.99 * (len(lags) - 1))))]


async def test_rate_lag_errors_and_rejects_on_the_pages(opcua_sim_factory, db_dsn, owner_conn, web, accounts,
                                                        tmp_path) -> None:
    sim = await opcua_sim_factory(security=NONE_ONLY, bench_signals=N, bench_hz=HZ, allow_anonymous=True)
    externals = [f"ns=2;s={bench_node_id(i)}" for i in range(N)] + ["ns=2;s=Bench.NoSuchTag"]
    arranged = arrange_integration(owner_conn, "opcua", {"endpoint_url": sim.endpoint_url, "publishing_interval_ms": 100,
                                                         "session_timeout_s": 5}, externals)
    ids = [arranged.signals[e] for e in externals[:N]]
    missing = arranged.signals["ns=2;s=Bench.NoSuchTag"]
    slug = owner_conn.execute("SELECT slug FROM tenants WHERE id = %s", [arranged.tenant_id]).fetchone()[0]
    await web.login(await accounts.user("tenant_admin", (arranged.tenant_id, slug)))
    page = f"/integrations/{arranged.integration_id}"
    async with running_supervisor(ingest_settings(tmp_path), db_dsn) as sup:
        run_health = lambda: sup.running[arranged.integration_id].health  # noqa: E731
        await wait_for(lambda: count_samples(db_dsn, ids) > N * 10, what="data")
        since = datetime.now(timezone.utc)
        await asyncio.sleep(12)
        await asyncio.sleep(sup.health_interval_s * 2)       # the figures reach the database
        rate, p50, p99 = _measured(owner_conn, ids, since)
        html = (await web.get(page)).text

        # rate and live lag as measured (the health window started a few seconds earlier: same rate)
        shown_rate = _number(html, "ingest-rate")[0]
        assert abs(shown_rate - rate) <= 0.1 * rate, (shown_rate, rate)
        assert abs(shown_rate - N * HZ) <= 0.1 * N * HZ
        shown_p50, shown_p99 = _number(html, "ingest-lag")
        # the page's clock stops when COMMIT has returned, the test's at the transaction's last statement:
        # the round trip and the event loop's wake-up between them reach tens of ms in the tail (p99 is
        # the 60th worst of ~6,000) on a busy 2-core runner
        assert abs(shown_p50 - p50) <= max(0.1 * p50, 15), (shown_p50, p50)
        assert abs(shown_p99 - p99) <= max(0.2 * p99, 30), (shown_p99, p99)

        # the tag the server does not know: counted on its mapping with the server's reason
        await wait_for(lambda: owner_conn.execute("SELECT rejected_total FROM ingest_signal_status WHERE signal_id = %s",
                                                  [missing]).fetchone() is not None, what="the reject stored")
        listing = (await web.get(f"{page}/map")).text
        row = re.search(rf'data-mapping-id="\d+"(?:(?!data-testid="mapping-row").)*?Bench\.NoSuchTag.*?</tr>', listing, re.S)
        assert row and 'data-testid="mapping-rejected"' in row.group(0) and "BadNodeIdUnknown" in row.group(0)
        card = (await web.get("/integrations")).text
        assert 'data-testid="ingest-rejected"' in card

        # the source goes away: an error with its time; back: no current error, one resolved episode
        await sim.stop()
        await wait_for(lambda: run_health().last_error is not None, timeout=30, what="the error")
        await asyncio.sleep(sup.health_interval_s * 2)
        html = (await web.get(page)).text
        assert 'data-testid="ingest-error"' in html and 'data-open="true"' in html
        await sim.start()
        await wait_for(lambda: run_health().state == "streaming" and run_health().last_error is None, timeout=40,
                       what="recovery")
        await asyncio.sleep(sup.health_interval_s * 2)
        html = (await web.get(page)).text
        assert 'data-testid="ingest-error"' not in html
        assert 'data-testid="error-row" data-open="false"' in html and 'data-open="true"' not in html
        owner_page = None
    await web.logout()
    await web.login(await accounts.user("platform_owner"))
    owner_page = (await web.get(f"/platform/ingestion/{arranged.integration_id}")).text
    assert "BadNodeIdUnknown" in owner_page and 'data-testid="error-history"' in owner_page
    assert since < datetime.now(timezone.utc) - timedelta(seconds=1)
