"""Keep what a long-running process holds for good out of the cyclic garbage collector's sight.

A full collection walks every tracked object: modules, protocol types, compiled templates, the
ingest workers' maps — hundreds of thousands in our processes. At 10,000 values/s it stopped the
ingest event loop for 50–75 ms every few seconds (the source → commit lag's p99), and a twin page
(thousands of short-lived objects) spent ~4 ms of 45 in collections. After start-up, and once
the first work has built its long-lived state, one collection and ``gc.freeze()`` move all that to
the permanent generation; objects made later are collected as usual, refcounting still frees
the frozen ones.
"""

from __future__ import annotations

import asyncio
import gc
import logging


async def settle(delays: tuple[float, ...], log: logging.Logger, event: str) -> None:
    """Collect and freeze at each of ``delays`` seconds after the call (logs ``event``)."""
    waited = 0.0
    for delay in delays:
        await asyncio.sleep(delay - waited)
        waited = delay
        gc.collect()
        gc.freeze()
        log.info(event, extra={"frozen": gc.get_freeze_count()})


def young_threshold(objects: int) -> None:
    """Collect the youngest generation after ``objects`` new containers instead of the default 700.

    A page builds thousands of containers that die with its request (a twin page ran 4 young
    collections, each walking and ageing the cards still in use: ~0.8 ms of 23); with a
    threshold above a request's own, most of them are freed by refcounting before any walk."""
    gc.set_threshold(objects, *gc.get_threshold()[1:])
