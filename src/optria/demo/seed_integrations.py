"""Demo integrations: an OPC-UA and a PI Web API integration on the platform's default servers,
with the demo plant's tags mapped to the seeded assets.

- "Ras Tanura OPC-UA" has no endpoint of its own, so it uses OPCUA_ENDPOINT_URL (the OPC-UA
  simulator or the public demo server); security None, anonymous, 500 ms publishing. Its
  signals are the Ras Tanura tags, by NodeId ``ns=2;s=<tag path>`` (the simulator registers
  its plant namespace first, so it gets index 2).
- "Abqaiq PI Web API" has no base URL, so it uses PI_BASE_URL; anonymous. Its signals are the
  Abqaiq tags by WebId, which the PI simulator derives from its data server name
  (``build_points``), so they are known here without a network call.

Both are demo integrations with the demo stream on. Each tag is mapped to its asset (by
code) with its role, unit and the plant's warning/critical highs. Idempotent: an existing
integration (by name) and existing mappings are kept as they are, so edits made in the UI
survive a re-seed; missing signals and mappings are added.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from optria.db import Database
from optria.demo.pi_server import PiWebApiSimulator, build_points
from optria.demo.plant import TAGS, Tag
from optria.integrations import store
from optria.integrations.service import secret_context
from optria.secretbox import SecretBox

log = logging.getLogger("optria.demo")

OPCUA_NAME = "Ras Tanura OPC-UA"
PI_NAME = "Abqaiq PI Web API"
OPCUA_SITE = "RasTanura"
PI_SITE = "Abqaiq"
OPCUA_NAMESPACE_INDEX = 2
PI_DATA_SERVER = inspect.signature(PiWebApiSimulator).parameters["data_server_name"].default
EXPECTED_INTERVAL_S = 10

OPCUA_CONFIG = {"security_policy": "None", "security_mode": "None", "auth_type": "anonymous",
                "publishing_interval_ms": 500}
PI_CONFIG = {"auth_type": "anonymous"}


@dataclass(frozen=True)
class DemoSignal:
    external_id: str
    name: str
    path: str
    tag: Tag


def opcua_signals() -> list[DemoSignal]:
    return [DemoSignal(f"ns={OPCUA_NAMESPACE_INDEX};s={t.path}", t.path, "Plant/" + t.path.replace(".", "/"), t)
            for t in TAGS if t.site == OPCUA_SITE]


def pi_signals() -> list[DemoSignal]:
    points = {p.name: p for p in build_points(PI_DATA_SERVER, 1, TAGS)}
    return [DemoSignal(points[t.path].web_id, t.path, f"\\\\{PI_DATA_SERVER}\\{t.path}", t)
            for t in TAGS if t.site == PI_SITE]


def mapping_for(tag: Tag, asset_id: int) -> dict[str, Any]:
    return {"asset_id": asset_id, "metric_role": tag.role, "unit": tag.eng_unit or None, "scale": 1.0,
            "offset": 0.0, "warn_low": None, "warn_high": tag.warn_hi, "crit_low": None, "crit_high": tag.crit_hi,
            "expected_interval_s": EXPECTED_INTERVAL_S, "enabled": True}


async def _ensure_integration(conn: store.Conn, tenant_id: UUID, box: SecretBox, kind: str, name: str,
                              config: dict[str, Any]) -> tuple[int, bool]:
    existing = await store.integration_id_by_name(conn, tenant_id, name)
    if existing is not None:
        return existing, False
    sealed = box.seal_dict({}, context=secret_context(tenant_id))  # anonymous: nothing to seal
    integration_id = await store.insert_integration(conn, tenant_id, kind=kind, name=name, config=config,
                                                    secrets=sealed, enabled=True, is_demo=True, demo_stream=True)
    await store.log_action(conn, tenant_id, integration_id, action="create", success=True,
                           message="Demo integration created by the seed",
                           details={"endpoint_source": "global", "msg": {"key": "created_by_seed", "params": {}}})
    return integration_id, True


async def seed_demo_integrations(db: Database, tenant_id: UUID | str, box: SecretBox) -> int:
    """Create the two demo integrations with their signals and mappings; returns how many mappings were new."""
    created, tenant_id = 0, UUID(str(tenant_id))
    async with db.tenant(tenant_id) as conn:
        assets = await store.asset_ids_by_code(conn, tenant_id, sorted({t.asset for t in TAGS}))
        for kind, name, config, signals in (("opcua", OPCUA_NAME, OPCUA_CONFIG, opcua_signals()),
                                            ("pi", PI_NAME, PI_CONFIG, pi_signals())):
            integration_id, new = await _ensure_integration(conn, tenant_id, box, kind, name, config)
            for s in signals:
                asset_id = assets.get(s.tag.asset.lower())
                if asset_id is None:  # the asset was deleted or renamed in the UI: leave the tag unmapped
                    continue
                signal_id = await store.upsert_signal(conn, tenant_id, integration_id, external_id=s.external_id,
                                                      name=s.name, path=s.path, eng_unit=s.tag.eng_unit or None,
                                                      data_type="Double" if kind == "opcua" else None)
                if await store.mapping_of_signal(conn, tenant_id, signal_id) is None:
                    await store.insert_mapping(conn, tenant_id, signal_id, mapping_for(s.tag, asset_id))
                    created += 1
            if new:
                log.info("demo.integration_seeded", extra={"tenant_id": str(tenant_id), "kind": kind,
                                                           "integration_id": integration_id, "signals": len(signals)})
    return created
