"""The Black Box's ingest-service jobs: the collectors, then the grouping job.

``ingest.jobs.default_jobs`` imports this module and runs each job's ``run_once`` every
``interval_s`` seconds in every ingest process, beside the workers (never in the sample
write path). Each job locks its own cursor row with ``SKIP LOCKED``, so with several ingest
processes exactly one runs a given job at a time and the others skip that round.

The grouping window comes from the ``blackbox_grouping_window_min`` setting
(``BLACKBOX_GROUPING_WINDOW_MIN``) when the settings define it, else 30 minutes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from optria.blackbox.collectors import all_collectors
from optria.blackbox.grouping import DEFAULT_WINDOW, Grouper
from optria.db import Database


def grouping_window(settings: Any) -> timedelta:
    minutes = getattr(settings, "blackbox_grouping_window_min", None)
    try:
        value = float(minutes) if minutes is not None else None
    except (TypeError, ValueError):
        value = None
    if value is None or not 1 <= value <= 24 * 60:
        return DEFAULT_WINDOW
    return timedelta(minutes=value)


def jobs(db: Database, settings: Any) -> list[Any]:
    """Collectors first, grouping last: the order the events flow (each job still runs on its own)."""
    return [*all_collectors(db), Grouper(db, grouping_window(settings))]
