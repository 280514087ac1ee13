"""What the areas lend every template: labels of their stored values and their presenting helpers
(an event's sentence, an integration's last test), and the sidebar.

The kit's templating knows no area; the shell, which imports them all, hands these over once,
before the first page renders (:func:`install`, called by the app factory).
"""

from __future__ import annotations

from optria.blackbox import presenting as blackbox_presenting
from optria.identity.rbac import ROLE_LABELS
from optria.integrations import views as integration_views
from optria.integrations.models import INGEST_FLAG_LABELS, INGEST_STATE_LABELS, KIND_LABELS, REJECT_REASON_LABELS
from optria.optimization import presenting as optimization_presenting
from optria.shell.nav import nav_for
from optria.web import templating


def install() -> None:
    templating.register_globals(
        event_text=blackbox_presenting.event_text,
        incident_title=blackbox_presenting.incident_title,
        role_label=lambda role: ROLE_LABELS.get(role, role),
        state_label=lambda state: INGEST_STATE_LABELS.get(state, state),
        flag_label=lambda flag: INGEST_FLAG_LABELS.get(flag, flag),
        reject_label=lambda reason: REJECT_REASON_LABELS.get(reason, reason),
        kind_label=lambda kind: KIND_LABELS.get(kind, kind),
        test_text=integration_views.test_text,
        action_text=integration_views.action_text,
        scope_text=optimization_presenting.scope_text,
    )
    templating.register_nav(nav_for)
