"""The production image and compose file: what they declare, and their entrypoints run for real.

No Docker engine runs here, so the compose services' exact commands run as processes against the
test database, with the environment compose gives them (APP_ENV=production, the data folder, the
secrets), and each service's own healthcheck command must pass. Where a Docker engine is present,
`docker compose up` of the same file is the end-to-end check (tests/unit/test_compose.py validates
the file with `docker compose config` when the compose plugin is installed).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.fix_browser import _wait, free_port

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = ("pytest", "pytest-asyncio", "playwright", "schemathesis", "hypothesis", "oidc-provider-mock")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _pins(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", path.read_text(), re.M))


def test_image_runs_unprivileged_with_a_writable_data_folder_and_no_test_extras() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "OPTRIA_DATA_DIR=/var/lib/optria" in dockerfile
    assert re.search(r"install -d -o optria -g optria .*/var/lib/optria", dockerfile)
    assert 'VOLUME ["/var/lib/optria"]' in dockerfile
    assert "requirements.prod.lock" in dockerfile and "requirements.lock " not in dockerfile
    assert "[test]" not in dockerfile and "--extra" not in dockerfile
    prod, full = _pins(ROOT / "requirements.prod.lock"), _pins(ROOT / "requirements.lock")
    assert not [p for p in prod if p in TEST_ONLY]
    assert {p: v for p, v in prod.items() if full.get(p) != v} == {}, "the two locks disagree on a version"
    for name in ("litestar", "granian", "psycopg", "cryptography", "argon2-cffi"):
        assert name in prod
    for lock in ("requirements.lock", "requirements.prod.lock"):
        text = (ROOT / lock).read_text()
        assert "--index-url" not in text and "--extra-index-url" not in text and "file://" not in text
        assert not re.search(r"(?m)^\s*(-e\s+)?/", text), "a local absolute path in the lock"


def test_compose_declares_the_production_shape() -> None:
    c = _compose()
    services = c["services"]
    image = services["db"]["image"]
    assert image.startswith("timescale/timescaledb") and not image.endswith(":latest") and ":" in image
    for name in ("web", "ingest"):
        s = services[name]
        env = s["environment"]
        assert env["APP_ENV"] == "production" and env["OPTRIA_DATA_DIR"] == "/var/lib/optria"
        assert "${SESSION_SECRET:?" in env["SESSION_SECRET"] and "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
        assert any(v.endswith(":/var/lib/optria") for v in s["volumes"])
        assert s["command"][0] == "optria" and s["healthcheck"]["test"][0] == "CMD"
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["simulators"].get("profiles") == ["demo"]   # not part of a production start


def _service_env(service: dict, db_dsn: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPCUA_", "PI_", "OPENAI_"))}
    given = {"POSTGRES_PASSWORD": "unused", "SESSION_SECRET": "p" * 48}

    def interpolate(m: re.Match) -> str:  # compose's ${VAR:-default} and ${VAR:?message}, with only `given` set
        name, op, rest = m.group(1), m.group(2), m.group(3)
        if name in given:
            return given[name]
        assert op == ":-", f"{name} is required by compose but not given here"
        return rest

    for key, value in service["environment"].items():
        env[key] = re.sub(r"\$\{(\w+)(:[-?])([^}]*)\}", interpolate, str(value))
    env.update({"DATABASE_URL": db_dsn, "OPTRIA_DATA_DIR": str(data_dir), "OPCUA_ENDPOINT_URL": "opc.tcp://127.0.0.1:9",
                "PI_BASE_URL": "http://127.0.0.1:9/piwebapi"})
    return env


def _localised(argv: list[str], **ports: int) -> list[str]:
    """The service's command with the `optria` script run by this interpreter and ports made free."""
    out = [sys.executable, "-m", "optria.cli", *argv[1:]]
    for flag, port in ports.items():
        out[out.index(flag) + 1] = str(port)
    if "--host" in out:
        out[out.index("--host") + 1] = "127.0.0.1"
    if "--metrics-host" in out:
        out[out.index("--metrics-host") + 1] = "127.0.0.1"
    return out


def _healthcheck(service: dict, port: int, env: dict[str, str]) -> subprocess.CompletedProcess:
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python"
    code = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", test[3])
    return subprocess.run([sys.executable, test[2], code], env=env, capture_output=True, text=True, timeout=30)


def test_compose_entrypoints_start_and_pass_their_healthchecks(db_dsn: str, tmp_path: Path) -> None:
    services = _compose()["services"]
    web_port, metrics_port = free_port(), free_port()
    data = tmp_path / "data"  # absent: the services create what they need under it
    web_env, ingest_env = (_service_env(services[n], db_dsn, data) for n in ("web", "ingest"))
    logs = {n: (tmp_path / f"{n}.log").open("w") for n in ("web", "ingest")}
    web = subprocess.Popen(_localised(services["web"]["command"], **{"--port": web_port}), env=web_env,
                           stdout=logs["web"], stderr=subprocess.STDOUT)
    ingest = None
    try:
        _wait(lambda: httpx.get(f"http://127.0.0.1:{web_port}/readyz", timeout=2).status_code == 200,
              "web (compose command)", web, timeout=90)
        r = httpx.get(f"http://127.0.0.1:{web_port}/login")
        assert r.status_code == 200 and "max-age=" in r.headers["strict-transport-security"]  # production mode
        check = _healthcheck(services["web"], web_port, web_env)
        assert check.returncode == 0, check.stderr
        ingest = subprocess.Popen(_localised(services["ingest"]["command"], **{"--metrics-port": metrics_port}),
                                  env=ingest_env, stdout=logs["ingest"], stderr=subprocess.STDOUT)
        _wait(lambda: httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).status_code == 200,
              "ingest (compose command)", ingest, timeout=90)
        check = _healthcheck(services["ingest"], metrics_port, ingest_env)
        assert check.returncode == 0, check.stderr
        assert (data / "spool").is_dir()  # the writable data folder holds the spool
    finally:
        for proc in (ingest, web):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for f in logs.values():
            f.close()
    assert web.returncode in (0, -signal.SIGTERM), (tmp_path / "web.log").read_text()[-2000:]
    assert ingest is not None and ingest.returncode in (0, -signal.SIGTERM), (tmp_path / "ingest.log").read_text()[-2000:]
    for name in ("web", "ingest"):
        text = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in text and "p" * 48 not in text, text[-2000:]
