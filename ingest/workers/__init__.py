"""One worker kind per source protocol; ``build_worker`` picks it for an integration.

Each kind is imported when the first integration of that kind starts (``# lazy:``), so a process
with no OPC-UA source never loads asyncua (1–2 s and its memory).
"""

from __future__ import annotations

from typing import Any

from ingest.health import IntegrationHealth
from ingest.store import IngestStore, IntegrationSpec
from ingest.writer import Writer
from optria.config import Settings


def build_worker(spec: IntegrationSpec, secrets: dict[str, str], *, settings: Settings, writer: Writer,
                 health: IntegrationHealth, store: IngestStore) -> Any:
    config = {**spec.config, **secrets}
    if spec.kind == "pi":
        from ingest.workers.pi import PiWorker  # lazy: see the module docstring

        return PiWorker(spec, config, settings=settings, writer=writer, health=health, store=store)
    if spec.kind == "opcua":
        from ingest.workers.opcua import OpcUaWorker  # lazy: asyncua

        return OpcUaWorker(spec, config, settings=settings, writer=writer, health=health, store=store)
    if spec.kind == "sql":
        from ingest.workers.sql import SqlWorker  # lazy: see the module docstring

        return SqlWorker(spec, config, settings=settings, writer=writer, health=health, store=store)
    raise ValueError(f"unknown integration kind {spec.kind!r}")
