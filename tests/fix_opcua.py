"""OPC-UA fixtures: real asyncua simulator servers on free loopback ports, and sockets that misbehave.

``opcua_sim`` is shared by a module (every security policy, user operator / operator-pass-1,
anonymous allowed, 1 Hz plant, history on) and must not be given faults or stopped; tests
that change a server take their own from ``opcua_sim_factory``. Server certificates live
in one directory per session (generated once); client PKI directories are per test or per
session as each fixture says.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from optria.demo.opcua_server import ALL_SECURITY, OpcUaSimulator
from optria.demo.plant import Plant

OPCUA_USER = "operator"
OPCUA_PASSWORD = "operator-pass-1"

OpcUaSimFactory = Callable[..., Awaitable[OpcUaSimulator]]


@pytest.fixture(scope="session")
def opcua_server_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where simulators keep their server certificate (one certificate for the session)."""
    return tmp_path_factory.mktemp("opcua-server-pki")


@pytest.fixture(scope="session")
def opcua_client_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A client PKI directory shared by the session (the client certificate is made once)."""
    return tmp_path_factory.mktemp("opcua-client-pki")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def opcua_sim(opcua_server_pki: Path) -> AsyncIterator[OpcUaSimulator]:
    """A simulator offering None and every secure policy, anonymous + operator login."""
    sim = OpcUaSimulator(Plant(), port=0, cert_dir=opcua_server_pki, users={OPCUA_USER: OPCUA_PASSWORD},
                         security=ALL_SECURITY)
    async with sim:
        yield sim


@pytest_asyncio.fixture(loop_scope="session")
async def opcua_sim_factory(opcua_server_pki: Path) -> AsyncIterator[OpcUaSimFactory]:
    """Start variants: ``security=NONE_ONLY``, ``allow_anonymous=False``,
    ``trusted_client_certs_dir=...``, ``bench_signals=...``. Each gets its own Plant unless one
    is passed, a free port and the operator login by default; all are stopped after the test."""
    started: list[OpcUaSimulator] = []

    async def make(**kwargs: Any) -> OpcUaSimulator:
        kwargs.setdefault("users", {OPCUA_USER: OPCUA_PASSWORD})
        kwargs.setdefault("port", 0)
        kwargs.setdefault("cert_dir", opcua_server_pki)
        sim = OpcUaSimulator(kwargs.pop("plant", None) or Plant(), **kwargs)
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


def opcua_config_for(sim: OpcUaSimulator, **overrides: Any) -> dict[str, Any]:
    """A merged-shape connector config for ``sim`` (anonymous, no security, 5 s timeout)."""
    config: dict[str, Any] = {"endpoint_url": sim.endpoint_url, "security_policy": "None",
                              "security_mode": "None", "auth_type": "anonymous", "timeout_s": 5}
    config.update(overrides)
    return config


def opcua_secure_config_for(sim: OpcUaSimulator, policy: str = "Basic256Sha256", mode: str = "SignAndEncrypt",
                            **overrides: Any) -> dict[str, Any]:
    """Secure channel + operator login."""
    secure: dict[str, Any] = {"security_policy": policy, "security_mode": mode, "auth_type": "username",
                              "username": OPCUA_USER, "password": OPCUA_PASSWORD}
    return opcua_config_for(sim, **{**secure, **overrides})


@pytest.fixture
def opcua_closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def opcua_silent_endpoint() -> Iterator[str]:
    """An opc.tcp URL whose socket accepts connections (kernel backlog) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"opc.tcp://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
