"""``optria simulate``: the OPC-UA and PI Web API demo servers over one shared plant.

Both servers read the same Plant, so a fault injected through either (the PI simulator's
``POST /sim/fault``) shows in both, and in every integration streaming from them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from optria.config import Settings
from optria.demo.opcua_server import OpcUaSimulator
from optria.demo.pi_server import PiWebApiSimulator
from optria.demo.plant import Plant

log = logging.getLogger("optria.demo.simulate")


async def run_simulators(settings: Settings, *, host: str = "127.0.0.1", opcua_port: int = 4840, pi_port: int = 8081,
                         update_hz: float = 1.0, ready: asyncio.Event | None = None) -> None:
    plant = Plant()
    users = None
    if settings.opcua_username and settings.opcua_password:
        users = {settings.opcua_username: settings.opcua_password.get_secret_value()}
    opc = OpcUaSimulator(plant, host=host, port=opcua_port, cert_dir=Path(settings.data_dir) / "simulator-pki",
                         users=users, allow_anonymous=True, update_hz=update_hz)
    pi = PiWebApiSimulator(plant, host=host, port=pi_port)
    await opc.start()
    await pi.start()
    print(f"OPC-UA simulator: {opc.endpoint_url}", flush=True)
    print(f"PI Web API simulator: {pi.base_url} (faults: POST {pi.root_url}/sim/fault)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await pi.stop()
        await opc.stop()
