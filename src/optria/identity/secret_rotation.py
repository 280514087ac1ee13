"""Re-sealing stored secrets after SESSION_SECRET changes (``optria rotate-secret``).

Stored secrets are integration passwords (``integrations.secrets``, one sealed value per
field) and SSO client secrets (``identity_providers.client_secret_sealed``). Each value is
opened with the current secret, else with each old secret given, and written back sealed
with the current secret in the current format (``v2``, HKDF key). Values already current
are left alone, so the command can run any number of times. A value that no given secret
opens is named in the report (kind, tenant, id, name, field) and left as it is: its owner
enters it again, or the command runs again with the right old secret.

Everything happens in one transaction: a failure part way leaves the database as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb

from optria.db import Database
from optria.identity.sso_providers import secret_context as provider_context
from optria.secretbox import SecretBox, SecretBoxError

log = logging.getLogger("optria.identity.secret_rotation")

INTEGRATION_SECRETS = """
SELECT i.tenant_id, i.id, i.name, t.slug AS tenant_slug, i.secrets
FROM integrations i JOIN tenants t ON t.id = i.tenant_id
WHERE i.secrets <> '{}'::jsonb
ORDER BY i.tenant_id, i.id
FOR UPDATE OF i
"""
UPDATE_INTEGRATION_SECRETS = "UPDATE integrations SET secrets = %(secrets)s WHERE tenant_id = %(tenant_id)s AND id = %(id)s"
PROVIDER_SECRETS = """
SELECT p.tenant_id, p.id, p.name, t.slug AS tenant_slug, p.client_secret_sealed
FROM identity_providers p JOIN tenants t ON t.id = p.tenant_id
WHERE p.client_secret_sealed IS NOT NULL
ORDER BY p.tenant_id, p.id
FOR UPDATE OF p
"""
UPDATE_PROVIDER_SECRET = """
UPDATE identity_providers SET client_secret_sealed = %(sealed)s WHERE tenant_id = %(tenant_id)s AND id = %(id)s
"""


@dataclass
class RotationReport:
    rewritten: int = 0                 # opened with an old secret or in the old format, sealed anew
    current: int = 0                   # already sealed with the current secret and format
    unreadable: list[str] = field(default_factory=list)   # what no given secret opens, by name

    @property
    def ok(self) -> bool:
        return not self.unreadable


def _reseal(value: Any, context: str, new: SecretBox, old: list[SecretBox]) -> tuple[str | None, str]:
    """(the value sealed with ``new``, outcome): outcome is current, rewritten or unreadable."""
    try:
        plain = new.open(value, context=context)
    except SecretBoxError:
        plain = None
    if plain is not None:
        return (value, "current") if SecretBox.is_current(value) else (new.seal(plain, context=context), "rewritten")
    for box in old:
        try:
            return new.seal(box.open(value, context=context), context=context), "rewritten"
        except SecretBoxError:
            continue
    return None, "unreadable"


async def rotate(db: Database, new: SecretBox, old: list[SecretBox], *, dry_run: bool = False) -> RotationReport:
    report = RotationReport()
    async with db.platform("rotate-secret") as conn:
        for row in await (await conn.execute(INTEGRATION_SECRETS)).fetchall():
            sealed, changed = dict(row["secrets"]), False
            for key, value in row["secrets"].items():
                # integrations.service.secret_context(tenant) + ":" + field, as seal_dict builds it
                context = f"{row['tenant_id']}:integration:{key}"
                resealed, outcome = _reseal(value, context, new, old)
                if outcome == "unreadable":
                    report.unreadable.append(f"integration {row['id']} {row['name']!r} of tenant "
                                             f"{row['tenant_slug']}: field {key}")
                    continue
                setattr(report, outcome, getattr(report, outcome) + 1)
                if outcome == "rewritten":
                    sealed[key], changed = resealed, True
            if changed and not dry_run:
                await conn.execute(UPDATE_INTEGRATION_SECRETS, {"secrets": Jsonb(sealed), "tenant_id": row["tenant_id"],
                                                                "id": row["id"]})
        for row in await (await conn.execute(PROVIDER_SECRETS)).fetchall():
            context = provider_context(row["tenant_id"])
            resealed, outcome = _reseal(row["client_secret_sealed"], context, new, old)
            if outcome == "unreadable":
                report.unreadable.append(f"identity provider {row['id']} {row['name']!r} of tenant "
                                         f"{row['tenant_slug']}: client secret")
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome == "rewritten" and not dry_run:
                await conn.execute(UPDATE_PROVIDER_SECRET, {"sealed": resealed, "tenant_id": row["tenant_id"],
                                                            "id": row["id"]})
    for what in report.unreadable:
        log.error("secrets.unreadable", extra={"affected": what,
                                               "action": "enter it again, or rerun with the secret it was sealed with"})
    log.info("secrets.rotated", extra={"rewritten": report.rewritten, "current": report.current,
                                       "unreadable": len(report.unreadable), "dry_run": dry_run})
    return report
