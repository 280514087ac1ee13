"""PI Web API fixtures: real simulator servers on free loopback ports, and sockets that misbehave.

``pi_sim`` is shared by a module (Basic auth, 1 s scans) and must not be put into outage or
fault states; tests that change a server's state take their own from ``pi_sim_factory``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from optria.demo.pi_server import PiWebApiSimulator
from optria.demo.plant import Plant

PI_USER = "piuser"
PI_PASSWORD = "pi-pass-1"

PiSimFactory = Callable[..., Awaitable[PiWebApiSimulator]]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pi_sim() -> AsyncIterator[PiWebApiSimulator]:
    """A Basic-auth simulator (piuser / pi-pass-1) with its own plant, shared by one test module."""
    async with PiWebApiSimulator(Plant(), users={PI_USER: PI_PASSWORD}) as sim:
        yield sim


@pytest_asyncio.fixture(loop_scope="session")
async def pi_sim_factory() -> AsyncIterator[PiSimFactory]:
    """Start variants (``users=None`` for anonymous, ``scan_period_s``, ``ssl_context`` ...).

    Each gets its own Plant unless one is passed; all are stopped after the test.
    """
    started: list[PiWebApiSimulator] = []

    async def make(**kwargs: Any) -> PiWebApiSimulator:
        kwargs.setdefault("users", {PI_USER: PI_PASSWORD})
        sim = PiWebApiSimulator(kwargs.pop("plant", None) or Plant(), **kwargs)
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


def pi_config_for(sim: PiWebApiSimulator, **overrides: Any) -> dict[str, Any]:
    """An integration config that logs in to ``sim`` with the fixture user."""
    config: dict[str, Any] = {"base_url": sim.base_url, "auth_type": "basic", "username": PI_USER,
                              "password": PI_PASSWORD, "timeout_s": 5}
    config.update(overrides)
    return config


@pytest.fixture
def pi_config(pi_sim: PiWebApiSimulator) -> dict[str, Any]:
    return pi_config_for(pi_sim)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A base URL whose socket accepts connections (kernel backlog) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/piwebapi"
    finally:
        sock.close()


def self_signed_context(directory: Path, host: str = "127.0.0.1") -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed EC certificate for ``host``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "optria-pi-sim")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "pi-sim.crt", directory / "pi-sim.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context
