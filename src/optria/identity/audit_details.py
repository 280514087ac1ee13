"""Audit-log details in words: every key labelled and every value spelled out in the reader's
language — flags, roles, kinds and changed fields translated, lists joined, a role mapping shown as
"claim value → role" — never a raw Python literal such as ``map={'Admin': 'engineer'}``.

Entries come from every area (users, single sign-on, integrations, assets, incidents, demo
tenants); the labels of their keys are gathered here, beside the audit log page that shows them
(management_routes). Integrations lend their kind and field labels.
"""

from __future__ import annotations

from typing import Any

from optria.identity import users
from optria.identity.rbac import ROLE_LABELS, Role
from optria.integrations.messages import FIELD_LABELS
from optria.integrations.models import KIND_LABELS
from optria.web import i18n

DETAIL_LABELS = {
    "role": "Role", "from": "From", "to": "To", "auth_source": "Sign-in method", "password": "Password",
    "provider": "Identity provider", "name": "Name", "enabled": "Enabled", "default_role": "Default role",
    "client_id": "Client id", "discovery_url": "Issuer or discovery URL",
    "allowed_email_domains": "Allowed email domains", "allowed_tenant_ids": "Allowed Microsoft Entra directories (tenant ids)",
    "role_mapping": "Role mapping (optional)", "client_secret_changed": "New client secret",
    # entries other areas write (integrations, assets, incidents, demo tenants, the proof of concept)
    "claim": "Claim to read", "map": "Claim value = role", "changed": "Changed fields", "kind": "Kind",
    "endpoint_source": "Address from", "external_id": "Tag", "asset_code": "Asset", "created": "Created",
    "updated": "Updated", "skipped": "Skipped", "rows": "Rows", "site_id": "Site", "unit_id": "Unit",
    "with_note": "With a note", "previous_status": "Previous status", "users": "Users", "by": "By",
    "report_id": "Report", "actor": "Actor",
}
DETAIL_VALUES = {"generated": "Generated", "set by admin": "Set by the administrator", "local": "Local password",
                 "sso": "Single sign-on", True: "Yes", False: "No", "global": "Platform default", "own": "Its own settings",
                 "proof of concept": "Proof of concept", "inferred": "Inferred from the tag"}


def _value_text(key: str | None, value: Any) -> str:
    """One audit value in words: flags, roles and known values translated, lists joined, nested mappings
    spelled out ("groups → Engineer"), never a raw Python literal."""
    if isinstance(value, bool) or (isinstance(value, str) and value in DETAIL_VALUES):
        return i18n.gettext(DETAIL_VALUES[value])
    if isinstance(value, str) and value in users.ROLE_VALUES + ("platform_owner",):
        return i18n.gettext(ROLE_LABELS[Role(value)])
    if key == "kind" and isinstance(value, str) and value in KIND_LABELS:
        return i18n.gettext(KIND_LABELS[value])
    if key == "changed" and isinstance(value, list):
        return i18n.gettext(", ").join(i18n.gettext(FIELD_LABELS.get(str(v), str(v))) for v in value) or "—"
    if isinstance(value, list):
        return i18n.gettext(", ").join(_value_text(None, v) for v in value) or "—"
    if isinstance(value, dict):
        if key == "map":
            return i18n.gettext(", ").join(f"{k} → {_value_text(None, v)}" for k, v in value.items()) or "—"
        return "; ".join(f"{i18n.gettext(DETAIL_LABELS[k]) if k in DETAIL_LABELS else k}: {_value_text(k, v)}"
                         for k, v in value.items()) or "—"
    if value is None or value == "":
        return "—"
    return str(value)


def describe_details(details: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Audit details as translated (label, value) pairs; unknown keys (other areas' entries) pass through."""
    return [(i18n.gettext(DETAIL_LABELS[key]) if key in DETAIL_LABELS else key, _value_text(key, value))
            for key, value in (details or {}).items()]
