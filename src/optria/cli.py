"""The ``optria`` command: serve, migrate, seed, demo, simulate, ingest, poc (and, as they land, bench).

Failures an operator can fix (configuration, an unreachable database) end with a one-line
message and exit code 2, never a traceback.

A command imports the heavy parts it runs inside its function (``# lazy:``): the connectors load
asyncua (1–2 s), so ``optria migrate`` or ``optria ingest`` with no OPC-UA source never pay for
what another command needs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time

from optria.config import ConfigError, load_settings, validate_required_secrets
from optria.db import Database, DatabaseUnavailable, describe_dsn, resolve_dsn
from optria.embedded_pg import EmbeddedPgError
from optria.identity.passwords import password_problems
from optria.logs import register_secrets, settings_secrets, setup_logging
from optria.migrations import MigrationError, migrate
from optria.secretbox import SecretBox

log = logging.getLogger("optria.cli")


def _fail(message: str) -> int:
    print(f"optria: {message}", file=sys.stderr)
    return 2


def _dsn(settings) -> str:
    dsn = resolve_dsn(settings, start_embedded=True)
    register_secrets([dsn])
    return dsn


def _migrate(dsn: str) -> dict:
    import psycopg

    try:
        return migrate(dsn)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {describe_dsn(dsn)} ({str(exc).strip().splitlines()[0][:160]}). "
            "Check that it is running and that DATABASE_URL is right."
        ) from None


def cmd_migrate(args, settings) -> int:
    result = _migrate(_dsn(settings))
    print(f"storage tier: {result['tier']}; applied {len(result['applied'])} migration(s)"
          + (f": {', '.join(result['applied'])}" if result["applied"] else ""))
    return 0


async def _with_db(dsn: str, fn):
    db = Database(dsn, min_size=1, max_size=2, name="optria-cli")
    await db.open()
    try:
        return await fn(db)
    finally:
        await db.close()


def cmd_seed(args, settings) -> int:
    from optria.demo import seed  # lazy: the demo seed loads the connectors (see the module docstring)

    dsn = _dsn(settings)
    _migrate(dsn)
    password = args.owner_password or os.environ.get("OPTRIA_OWNER_PASSWORD")
    if not password:
        return _fail("give the platform owner's password with --owner-password or OPTRIA_OWNER_PASSWORD")
    problems = password_problems(password, username=args.owner_username)
    if problems:
        return _fail("owner password rejected: " + " ".join(problems))
    asyncio.run(_with_db(dsn, lambda db: seed.seed_platform_owner(db, args.owner_username, password)))
    if args.demo_tenant:
        asyncio.run(_with_db(dsn, seed.seed_demo_tenant))
    print(f"platform owner '{args.owner_username}' is present")
    return 0


def _serve(settings, host: str, port: int, workers: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian("optria.shell.app:create_app", factory=True, address=host, port=port, interface=Interfaces.ASGI,
            workers=workers, log_enabled=True, log_access=False, workers_kill_timeout=10).serve()


def cmd_serve(args, settings) -> int:
    dsn = _dsn(settings)
    if not args.no_migrate:
        _migrate(dsn)
    _serve(settings, args.host, args.port, args.workers)
    return 0


def cmd_demo(args, settings) -> int:
    """Everything for a local demo: database, schema, seed data, simulators, ingest and the web server."""
    from optria.demo import seed  # lazy: the demo seed loads the connectors

    notes = _point_demo_at_simulators()
    settings = load_settings()
    dsn = _dsn(settings)
    result = _migrate(dsn)
    logins = asyncio.run(_with_db(dsn, seed.seed_demo))
    children: list[subprocess.Popen] = []
    for extra in _demo_children(args):
        children.append(subprocess.Popen([sys.executable, "-m", "optria.cli", *extra]))
    url = f"http://{'localhost' if args.host in ('0.0.0.0', '127.0.0.1') else args.host}:{args.port}/"
    print("\nOPTRIA IQ demo is starting")
    print(f"  URL:           {url}")
    print(f"  storage tier:  {result['tier']}")
    for note in notes:
        print(f"  {note}")
    print("  ingest metrics: http://127.0.0.1:9108/metrics")
    print("  logins (organization / username / password):")
    for login in logins:
        print(f"    {login.organization or '(none: platform owner)':<24} {login.username:<12} {login.password:<22} {login.role}")
    print("  Stop with Ctrl-C.\n", flush=True)

    def _stop_children(*_):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()

    try:
        _serve(settings, args.host, args.port, args.workers)
    finally:
        _stop_children()
    return 0


def _demo_children(args) -> list[list[str]]:
    """Sub-processes the demo runs beside the web server."""
    return [["simulate", "--host", "127.0.0.1"], ["ingest"]]


LOCAL_OPCUA = "opc.tcp://127.0.0.1:4840"
LOCAL_PI = "http://127.0.0.1:8081/piwebapi"


def _reachable(url: str, timeout: float = 2.0) -> bool:
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80 if parts.scheme == "http" else 4840)
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except (OSError, ValueError, TypeError):
        return False


def _point_demo_at_simulators() -> list[str]:
    """Use the public demo endpoints when configured and reachable, else the local simulators.
    The variables are set for this process and inherited by the web workers and children."""
    notes = []
    for var, local in (("OPCUA_ENDPOINT_URL", LOCAL_OPCUA), ("PI_BASE_URL", LOCAL_PI)):
        current = os.environ.get(var, "").strip()
        if current and current != local and _reachable(current):
            notes.append(f"{var}: {current}")
            continue
        if current and current != local:
            notes.append(f"{var}: {current} is unreachable; using the local simulator {local}")
        else:
            notes.append(f"{var}: local simulator {local}")
        os.environ[var] = local
    return notes


def cmd_ingest(args, settings) -> int:
    from ingest.service import run_ingest  # lazy: the ingest service, only for this command

    if args.max_leases < 0:
        print("--max-leases must be 0 or more (0: a process that runs only the background jobs)", file=sys.stderr)
        return 2
    if args.max_leases == 0 and args.no_jobs:
        print("--max-leases 0 with --no-jobs leaves this process nothing to do", file=sys.stderr)
        return 2

    dsn = _dsn(settings)
    _migrate(dsn)
    asyncio.run(run_ingest(settings, dsn, metrics_host=args.metrics_host, metrics_port=args.metrics_port,
                           lease_ttl_s=args.lease_ttl, max_leases=args.max_leases, with_jobs=not args.no_jobs))
    return 0


def cmd_simulate(args, settings) -> int:
    from optria.demo.simulate import run_simulators  # lazy: the simulators load asyncua and aiohttp

    asyncio.run(run_simulators(settings, host=args.host, opcua_port=args.opcua_port, pi_port=args.pi_port,
                               update_hz=args.update_hz))
    return 0


def cmd_poc(args, settings) -> int:
    """The proof of concept from the command line: each step printed as it finishes; exit 0 when all pass."""
    notes = [] if args.no_local_fallback else _point_demo_at_simulators()
    settings = load_settings()
    dsn = _dsn(settings)
    _migrate(dsn)
    from optria.platform import poc  # lazy: the proof of concept loads the connectors and the AI client

    options = poc.PocOptions(tenant_slug=args.tenant, fault_asset=args.fault_asset, fault_ramp_s=args.ramp,
                             connection_timeout_s=args.connection_timeout, stream_timeout_s=args.stream_timeout,
                             data_timeout_s=args.data_timeout, incident_timeout_s=args.incident_timeout,
                             run_timeout_s=args.run_timeout, ai_timeout_s=args.ai_timeout, poll_s=args.poll)
    for note in notes:
        print(f"  {note}", flush=True)
    result = asyncio.run(_with_db(dsn, lambda db: _run_poc(db, settings, options, as_json=args.json)))
    if args.json:
        import json

        print(json.dumps(result, default=str, ensure_ascii=False, indent=2))
    return 0 if result["status"] == "passed" else 1


async def _run_poc(db, settings, options, *, as_json: bool) -> dict:
    from optria.platform import poc  # lazy: as in cmd_poc

    report_id = await poc.start_report(db, options, origin="cli", requested_by=None,
                                       requested_by_name=os.environ.get("USER") or "cli")
    printed: set[str] = set()
    if not as_json:
        print(f"OPTRIA IQ proof of concept #{report_id} against {options.tenant_slug}", flush=True)

    def show(steps: list[dict]) -> None:
        for n, step in enumerate(steps, start=1):
            if as_json or step["key"] in printed or step["status"] in ("pending", "running"):
                continue
            printed.add(step["key"])
            seconds = (step["duration_ms"] or 0) / 1000
            evidence = step["evidence_url"] or step["tenant_url"] or ""
            label = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}.get(step["status"], step["status"])
            print(f"  [{label}] {n}. {step['title']} ({seconds:.1f} s) — {step['message']}"
                  + (f" → {evidence}" if evidence else ""), flush=True)

    result = await poc.run_report(db, settings, SecretBox(settings.session_key()), options, report_id,
                                  actor_name="cli", on_step=show)
    if not as_json:
        print(f"Result: {result['status'].upper()} — {result.get('summary', '')} Report: /platform/poc/{report_id}",
              flush=True)
    return result


OLD_SECRET_ENV = "OPTRIA_OLD_SESSION_SECRET"


def _old_secrets(args) -> list[bytes]:
    """The previous SESSION_SECRET(s): from --old-secret-file (one per line) and/or OPTRIA_OLD_SESSION_SECRET."""
    values = []
    if args.old_secret_file:
        with open(args.old_secret_file, encoding="utf-8") as f:
            values += [line.strip() for line in f if line.strip()]
    if os.environ.get(OLD_SECRET_ENV, "").strip():
        values.append(os.environ[OLD_SECRET_ENV].strip())
    register_secrets(values)
    return [v.encode() for v in values]


def cmd_rotate_secret(args, settings) -> int:
    """Re-seal every stored credential with the current SESSION_SECRET (opening it with the old one)."""
    from optria.identity.secret_rotation import rotate  # lazy: loads the single sign-on stack (0.6 s)

    if not (settings.session_secret and settings.session_secret.get_secret_value().strip()):
        return _fail("SESSION_SECRET is not set: set it to the new secret and run again.")
    try:
        old = _old_secrets(args)
    except OSError as exc:
        return _fail(f"cannot read --old-secret-file: {exc.strerror}")
    new = SecretBox(settings.session_key())
    report = asyncio.run(_with_db(_dsn(settings), lambda db: rotate(db, new, [SecretBox(o) for o in old],
                                                                      dry_run=args.dry_run)))
    verb = "would re-seal" if args.dry_run else "re-sealed"
    print(f"{verb} {report.rewritten} stored secret(s); {report.current} already current; "
          f"{len(report.unreadable)} unreadable")
    for what in report.unreadable:
        print(f"  cannot decrypt: {what} (enter it again, or rerun with the secret it was sealed with)")
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="optria", description="OPTRIA IQ platform")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the web server (granian)")
    s.add_argument("--host", default=os.environ.get("OPTRIA_HOST", "0.0.0.0"))
    s.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    s.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")))
    s.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    s.set_defaults(func=cmd_serve)

    m = sub.add_parser("migrate", help="apply database migrations")
    m.set_defaults(func=cmd_migrate)

    sd = sub.add_parser("seed", help="create the platform owner (and optionally the demo tenant)")
    sd.add_argument("--owner-username", default="owner")
    sd.add_argument("--owner-password")
    sd.add_argument("--demo-tenant", action="store_true")
    sd.set_defaults(func=cmd_seed)

    i = sub.add_parser("ingest", help="run the ingest service (workers, writer, jobs)")
    i.add_argument("--metrics-host", default=os.environ.get("INGEST_METRICS_HOST", "127.0.0.1"))
    i.add_argument("--metrics-port", type=int, default=int(os.environ.get("INGEST_METRICS_PORT", "9108")))
    i.add_argument("--lease-ttl", type=float, default=15.0, help="seconds before another process may take a lease over")
    i.add_argument("--max-leases", type=int, default=200,
                   help="most integrations this process runs (0: only the background jobs)")
    i.add_argument("--no-jobs", action="store_true",
                   help="run no background jobs (Black Box collectors, scoring, retention) in this process: "
                        "for extra ingest processes when another one runs them")
    i.set_defaults(func=cmd_ingest)

    sim = sub.add_parser("simulate", help="run the OPC-UA and PI Web API demo servers")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--opcua-port", type=int, default=4840)
    sim.add_argument("--pi-port", type=int, default=8081)
    sim.add_argument("--update-hz", type=float, default=1.0)
    sim.set_defaults(func=cmd_simulate)

    pc = sub.add_parser("poc", help="run the end-to-end proof of concept against a demo tenant")
    pc.add_argument("--tenant", default="demo-aramco", help="slug of the demo tenant (default demo-aramco)")
    pc.add_argument("--fault-asset", default="P-101", help="asset that gets the scripted bearing fault")
    pc.add_argument("--ramp", type=float, default=20.0, help="seconds the fault takes to reach full strength")
    pc.add_argument("--connection-timeout", type=float, default=30.0)
    pc.add_argument("--stream-timeout", type=float, default=90.0)
    pc.add_argument("--data-timeout", type=float, default=60.0)
    pc.add_argument("--incident-timeout", type=float, default=150.0)
    pc.add_argument("--run-timeout", type=float, default=120.0)
    pc.add_argument("--ai-timeout", type=float, default=None, help="seconds for the AI model (default OPENAI_TIMEOUT_S or 30)")
    pc.add_argument("--poll", type=float, default=1.0, help="seconds between checks while a step waits")
    pc.add_argument("--json", action="store_true", help="print the report as JSON")
    pc.add_argument("--no-local-fallback", action="store_true",
                    help="do not point OPCUA_ENDPOINT_URL / PI_BASE_URL at the local simulators when unset or unreachable")
    pc.set_defaults(func=cmd_poc)

    rs = sub.add_parser("rotate-secret", help="re-seal stored credentials from an old SESSION_SECRET to the current one")
    rs.add_argument("--old-secret-file", help=f"file with the previous SESSION_SECRET (one per line); "
                                              f"or set {OLD_SECRET_ENV}")
    rs.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    rs.set_defaults(func=cmd_rotate_secret)

    d = sub.add_parser("demo", help="database, seed, simulators, ingest and web server in one command")
    d.add_argument("--host", default=os.environ.get("OPTRIA_HOST", "0.0.0.0"))
    d.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    d.add_argument("--workers", type=int, default=1)
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        setup_logging(settings.log_level)
        register_secrets(settings_secrets(settings))
        validate_required_secrets(settings)
        return int(args.func(args, settings) or 0)
    except ConfigError as exc:
        return _fail(str(exc))
    except DatabaseUnavailable as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a last clear line for the operator; the traceback goes to the log
        if isinstance(exc, (EmbeddedPgError, MigrationError)):
            return _fail(str(exc))
        raise


if __name__ == "__main__":
    sys.exit(main())
