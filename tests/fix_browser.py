"""Browser fixtures: the product as a user meets it — a real granian server (``optria serve``) on a
fresh database seeded by ``optria seed --demo-tenant``, the two simulators (``optria simulate``) as
the platform's default OPC-UA and PI servers, and a Debian chromium page driven by Playwright.

Every process is a subprocess of its own, so the synchronous Playwright API may block this thread
freely. Browser tests are marked ``@pytest.mark.browser``; without /usr/bin/chromium they skip.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-background-networking", "--disable-gpu",
                 "--disable-component-update"]
BROWSER_SECRET = "browser-test-secret-" + "b" * 28
OWNER_PASSWORD = "Platform-Browser-2026"
OUTPUT_DIR = Path(__file__).resolve().parents[1] / "test-output"


@dataclass
class LiveServer:
    base_url: str
    opcua_endpoint: str
    pi_base_url: str
    output_dir: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with code {proc.returncode}")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} was not ready within {timeout:g} s")


def _port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def live_server(db_dsn: str, tmp_path: Path) -> Iterator[LiveServer]:
    """Simulators, a seeded database and ``optria serve``, all real processes; stopped afterwards."""
    opc_port, pi_port, web_port = free_port(), free_port(), free_port()
    opcua_endpoint = f"opc.tcp://127.0.0.1:{opc_port}"
    pi_base_url = f"http://127.0.0.1:{pi_port}/piwebapi"
    env = {**os.environ, "DATABASE_URL": db_dsn, "SESSION_SECRET": BROWSER_SECRET, "APP_ENV": "test",
           "OPTRIA_DATA_DIR": str(tmp_path), "OPCUA_ENDPOINT_URL": opcua_endpoint, "PI_BASE_URL": pi_base_url}
    cli = [sys.executable, "-m", "optria.cli"]
    seeded = subprocess.run([*cli, "seed", "--demo-tenant", "--owner-password", OWNER_PASSWORD], env=env,
                            capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, f"optria seed failed: {seeded.stdout[-2000:]} {seeded.stderr[-2000:]}"
    started: list[subprocess.Popen] = []
    try:
        sims = subprocess.Popen([*cli, "simulate", "--host", "127.0.0.1", "--opcua-port", str(opc_port),
                                 "--pi-port", str(pi_port)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        started.append(sims)
        web = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(web_port), "--no-migrate"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(web)
        _wait(lambda: _port_open(opc_port) and _port_open(pi_port), "optria simulate", sims)
        _wait(lambda: httpx.get(f"http://127.0.0.1:{web_port}/readyz", timeout=2).status_code == 200,
              "optria serve", web)
        OUTPUT_DIR.mkdir(exist_ok=True)
        yield LiveServer(f"http://127.0.0.1:{web_port}", opcua_endpoint, pi_base_url, OUTPUT_DIR)
    finally:
        for proc in reversed(started):
            _stop(proc)


@pytest.fixture
def page(request: pytest.FixtureRequest):
    """A chromium page (Arabic UI by default) on ``live_server``; skips before starting anything when
    chromium is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests")
    from playwright.sync_api import sync_playwright

    live_server: LiveServer = request.getfixturevalue("live_server")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.base_url, viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        try:
            yield pg
        finally:
            context.close()
            browser.close()
