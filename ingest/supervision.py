"""Supervised tasks: every long-lived task of ``optria ingest`` runs under :func:`supervise`.

A task that raises is logged with its error, counted in ``optria_ingest_task_restarts_total``,
reported through ``on_crash`` (which puts it in ingest health) and started again after a
jittered backoff that grows while it keeps failing and resets once it has run for a while.
Cancellation is never swallowed, so stopping the process stops every supervised task.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from ingest import metrics

log = logging.getLogger("optria.ingest.supervision")

HEALTHY_AFTER_S = 60.0   # a run this long resets the backoff


def describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def supervise(name: str, run: Callable[[], Awaitable[None]], *,
                    on_crash: Callable[[str], None] | None = None, restart_on_return: bool = False,
                    first_delay: float = 0.5, max_delay: float = 30.0) -> None:
    """Run ``run()`` until it returns (or forever with ``restart_on_return``), restarting it when it raises."""
    delay = first_delay
    while True:
        started = time.monotonic()
        try:
            await run()
            if not restart_on_return:
                return
            reason = "returned"
        except asyncio.CancelledError as exc:
            if asyncio.current_task().cancelling():
                raise
            # a cancellation that was not meant for this task (a library's own request cancelled under
            # it) must not end it silently: it is a crash like any other
            reason = "CancelledError escaped the task"
            log.error("ingest.task_crashed", exc_info=exc, extra={"task": name, "error": reason})
        except Exception as exc:
            reason = describe(exc)
            log.error("ingest.task_crashed", exc_info=exc, extra={"task": name, "error": reason})
        metrics.TASK_RESTARTS.labels(name.split(":", 1)[0]).inc()
        if on_crash is not None:
            try:
                on_crash(reason)
            except Exception:
                log.exception("ingest.on_crash_failed", extra={"task": name})
        if time.monotonic() - started > HEALTHY_AFTER_S:
            delay = first_delay
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, max_delay)
