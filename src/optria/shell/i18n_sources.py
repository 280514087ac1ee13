"""English strings that reach templates as data rather than through ``_()`` calls.

The catalog checker (scripts/i18n.py) adds these to the extracted message ids, so a nav label or
role name without an Arabic translation fails the i18n test like any template string. Collecting
them reads every area, which only the shell may do.
"""

from __future__ import annotations

from optria.assets.models import label_msgids as assets_labels
from optria.blackbox.messages import MESSAGES as BLACKBOX_MESSAGES
from optria.blackbox.models import label_msgids as blackbox_labels
from optria.connectors.base import TEST_MESSAGES
from optria.identity import audit_details, management_routes, passwords, sso, sso_accounts, sso_providers, sso_routes, users
from optria.identity.auth import GENERIC_FAILURE, SSO_ONLY, THROTTLED
from optria.identity.rbac import ROLE_LABELS
from optria.integrations.messages import ACTION_MESSAGES, FIELD_LABELS
from optria.integrations.models import label_msgids as integration_labels
from optria.optimization import ai, analytics, models, runs
from optria.optimization import routes as optimization_routes
from optria.platform import console, demo_tenants, poc, poc_routes
from optria.shell.nav import NAV, NAV_SECTIONS
from optria.tenants import routes as tenants_routes
from optria.twin import cards
from optria.twin import routes as twin_routes
from optria.web import messages
from optria.web.errors import INVALID_VALUE, NUL_IN_REQUEST, PAGE_TITLES


def data_msgids() -> set[str]:
    ids = {item.label for item in NAV} | {t for t in NAV_SECTIONS.values() if t}
    ids |= set(ROLE_LABELS.values())
    for title, message in PAGE_TITLES.values():
        ids |= {title, message}
    ids |= {GENERIC_FAILURE, SSO_ONLY, THROTTLED, passwords.RULES_TEXT, INVALID_VALUE, NUL_IN_REQUEST}
    ids |= {"Password must be at least 10 characters long.", "Password must contain letters and digits.",
            "Password must not contain the username.", "Password is too long.",
            "This account signs in with your organization's single sign-on.",
            "The current password is incorrect.", "The new passwords do not match.",
            "Choose a password different from the current one.", "Sign-in failed."}
    ids |= _identity_msgids()
    ids |= _assets_msgids()
    ids |= _twin_msgids()
    ids |= _integrations_msgids()
    ids |= _optimization_msgids()
    ids |= _platform_console_msgids()
    ids |= _blackbox_msgids()
    ids |= _generated_texts_msgids()
    return ids


def _generated_texts_msgids() -> set[str]:
    """Texts the system writes as message keys with parameters (issue 13), rendered per reader."""
    ids = {m for m, _ in BLACKBOX_MESSAGES.values()} | {m for m, _ in TEST_MESSAGES.values()}
    ids |= {m for m, _ in ACTION_MESSAGES.values()} | set(FIELD_LABELS.values()) | messages.msgids()
    return ids


def _identity_msgids() -> set[str]:
    """Users, audit log, single sign-on and platform tenants (issue 4)."""
    ids = set(users.MESSAGES) | set(users.AUDIT_ACTIONS.values()) | set(sso.MESSAGES) | set(sso_accounts.MESSAGES)
    ids |= set(sso_providers.MESSAGES) | set(sso_routes.MESSAGES) | set(management_routes.MESSAGES)
    ids |= set(tenants_routes.MESSAGES)
    ids |= set(audit_details.DETAIL_LABELS.values()) | set(audit_details.DETAIL_VALUES.values())
    ids |= {"Users", "Single sign-on", "Add identity provider", "Add user", "Audit log", "Tenants", "All users",
            "Your role does not allow this action."}
    return ids


def _assets_msgids() -> set[str]:
    """Assets, alerts, work orders and the dashboard (issue 7): labels of stored values and page titles."""
    return assets_labels() | {"Assets", "Add asset", "Edit", "Sites and units", "Alerts", "Work orders"}


def _twin_msgids() -> set[str]:
    """Digital Twin (issue 7): metric roles, data states, reasons, ranges and live-state texts."""
    ids = set(cards.ROLE_LABELS.values()) | set(cards.DATA_STATES.values()) | set(cards.REASON_LABELS.values())
    ids |= set(twin_routes.RANGE_LABELS.values()) | set(twin_routes.TEXTS.values())
    ids |= {twin_routes.RANGE_NOTICE, twin_routes.CUSTOM_NOTICE, twin_routes.PAGE_PAST_END, "Digital Twin",
            "Digital twin view", "Warning", "Critical"}
    return ids


def _optimization_msgids() -> set[str]:
    """Optimization runs and opportunities (issue 9): stored values' labels, analytics texts, fallback reasons."""
    ids = set(analytics.M.values()) | set(ai.REASON_MESSAGES.values()) | set(runs.MESSAGES)
    ids |= set(optimization_routes.MESSAGES) | set(optimization_routes.BASELINE_LABELS.values()) | {"Baseline"}
    for labels in (models.STATUS_LABELS, models.ENGINE_LABELS, models.SCOPE_LABELS, models.KIND_LABELS,
                   models.SOURCE_LABELS, models.ORIGIN_LABELS):
        ids |= set(labels.values())
    return ids


def _blackbox_msgids() -> set[str]:
    """Industrial Black Box (issue 8): labels of stored values (severities, statuses, source types) and crumbs."""
    return blackbox_labels() | {"Industrial Black Box", "Event explorer", "Source system event"}


def _platform_console_msgids() -> set[str]:
    """Platform console, demo tenants and the proof of concept (issue 9)."""
    ids = set(poc.M.values()) | set(poc.STEP_TITLES.values()) | set(poc.STATUS_LABELS.values())
    ids |= set(poc.REPORT_LABELS.values()) | console.check_msgids() | set(demo_tenants.MESSAGES)
    ids |= set(poc_routes.MESSAGES) | {"Demo tenants"}
    return ids


def _integrations_msgids() -> set[str]:
    """Integrations, Data Sources, mappings and ingest states (issues 5 and 6): stored-value labels and page titles."""
    return integration_labels() | {"Add integration", "Edit", "Map tags", "Integrations"}
