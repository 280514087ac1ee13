"""One rule for "is this value still current?", used by every page and job that judges data.

The twin (cards, the scoring job), the analytics engine, the platform's ingestion page and the
Data Sources cards all ask the same question about a signal's latest value (or an
integration's newest sample) and get the same answer from here: the pure functions below,
and :func:`current_sql` / :func:`stale_at_sql` / :func:`live_sql`, the same rule as SQL
fragments a store composes into its queries (``tests/unit/test_staleness.py`` checks that
the two agree case by case).

The rule, in order:

1. **No data** — no sample, or a sample without a value — is not current.
2. **Bad quality** (3) is not current; neither is a value the ingest worker **marked stale**
   (quality 4: it lost the source).
3. **Lost source.** When the integration's ingest worker has reported (an ``ingest_health``
   row) but its heartbeat is older than ``SOURCE_HEARTBEAT_S``, the worker is gone and what
   it last stored is not current — at once, whatever the age of the sample.
4. **Live source.** While the worker is connected with a fresh heartbeat, the value is current
   however old it is: OPC-UA subscriptions and PI report by exception, so a value that does
   not change (a pump's "running" state) sends nothing until it does, and holds until then.
5. **Otherwise** (no worker has reported, or it is alive but not connected — reconnecting):
   the value counts for ``STALE_AFTER_INTERVALS`` of its expected interval after its sample
   time, so a slow poll is never stale before its interval allows.

Ages are in seconds; an age ``None`` means "never" (no sample, no heartbeat).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

STALE_AFTER_INTERVALS = 3     # a polled value missing this many expected intervals is stale
SOURCE_HEARTBEAT_S = 30       # an ingest worker heartbeats every few seconds; this long without one: gone
QUALITY_BAD, QUALITY_STALE = 3, 4

# Why a value is (not) current: the reasons the pages and tests name.
REASONS = ("no_data", "bad_quality", "marked_stale", "source_lost", "live_source", "recent", "too_old")


@dataclass(frozen=True)
class Verdict:
    current: bool
    reason: str                        # one of REASONS
    remaining_s: float | None = None   # seconds until a current value goes stale (None: while the source vouches)


def judge(*, sample_age_s: float | None, expected_interval_s: float | None, quality: int | None = 0,
          has_value: bool = True, connected: bool | None = None, heartbeat_age_s: float | None = None,
          worker_reported: bool | None = None) -> Verdict:
    """The rule of the module docstring for one value.

    ``connected`` / ``heartbeat_age_s`` describe the integration's ingest worker; with
    ``worker_reported`` left out, a worker has reported when a heartbeat age is given."""
    reported = heartbeat_age_s is not None if worker_reported is None else worker_reported
    if sample_age_s is None or not has_value:
        return Verdict(False, "no_data")
    if quality == QUALITY_STALE:
        return Verdict(False, "marked_stale")
    if quality is not None and quality >= QUALITY_BAD:
        return Verdict(False, "bad_quality")
    if reported and (heartbeat_age_s is None or heartbeat_age_s >= SOURCE_HEARTBEAT_S):
        return Verdict(False, "source_lost")
    if reported and connected:
        return Verdict(True, "live_source")
    window = (expected_interval_s or 60) * STALE_AFTER_INTERVALS
    if sample_age_s < window:
        return Verdict(True, "recent", window - sample_age_s)
    return Verdict(False, "too_old")


def _age(now: datetime, t: datetime | None) -> float | None:
    return None if t is None else (now - t).total_seconds()


@dataclass(frozen=True)
class Reading:
    """A latest value and its source, as the stores read them (times are source / heartbeat times)."""

    time: datetime | None
    has_value: bool
    quality: int | None
    expected_interval_s: int
    connected: bool | None = None        # the integration's ingest worker (None: no worker has reported)
    heartbeat_at: datetime | None = None
    marked_at: datetime | None = None    # when the newest row was written (a stale mark's time)

    def verdict(self, now: datetime) -> Verdict:
        return judge(sample_age_s=_age(now, self.time), expected_interval_s=self.expected_interval_s,
                     quality=self.quality, has_value=self.has_value, connected=self.connected,
                     heartbeat_age_s=_age(now, self.heartbeat_at), worker_reported=self.connected is not None)

    def is_current(self, now: datetime) -> bool:
        return self.verdict(now).current

    def source_live(self, now: datetime) -> bool:
        return self.connected is not None and source_live(self.connected, self.heartbeat_at, now)

    def age_limit(self) -> datetime | None:
        """When the sample ages out under rule 5."""
        if self.time is None:
            return None
        return self.time + timedelta(seconds=self.expected_interval_s * STALE_AFTER_INTERVALS)

    def lapse(self) -> datetime | None:
        """When the worker's heartbeat lapses (rule 3), if a worker has reported."""
        if self.connected is None or self.heartbeat_at is None:
            return None
        return self.heartbeat_at + timedelta(seconds=SOURCE_HEARTBEAT_S)

    def stale_since(self, now: datetime) -> datetime | None:
        """When a value that is not current stopped counting: the mark, the bad sample, the heartbeat
        lapse, or its age limit (None without a sample: the caller knows when data was expected)."""
        v = self.verdict(now)
        if v.current or v.reason == "no_data":
            return None
        if v.reason == "marked_stale":
            return self.marked_at or self.time
        if v.reason == "bad_quality":
            return self.time
        if v.reason == "source_lost":
            return max(t for t in (self.lapse(), self.time) if t is not None)
        return self.age_limit()


def source_live(connected: bool | None, heartbeat_at: datetime | None, now: datetime) -> bool:
    """Whether an integration's ingest worker is connected with a fresh heartbeat (rule 4)."""
    return bool(connected) and heartbeat_at is not None and (now - heartbeat_at).total_seconds() < SOURCE_HEARTBEAT_S


# ----------------------------------------------------------------------------- the same rule in SQL


def live_sql(health: str) -> str:
    """SQL boolean: the worker of ``health`` (an ``ingest_health`` row, NULL when none) is live (rule 4)."""
    return (f"coalesce({health}.connected AND {health}.heartbeat_at > now() - "
            f"make_interval(secs => {SOURCE_HEARTBEAT_S}), false)")


def lost_sql(health: str) -> str:
    """SQL boolean: a worker has reported for ``health`` and its heartbeat lapsed (rule 3)."""
    return (f"({health}.integration_id IS NOT NULL AND coalesce({health}.heartbeat_at <= now() - "
            f"make_interval(secs => {SOURCE_HEARTBEAT_S}), true))")


def age_limit_sql(time: str, interval: str) -> str:
    """SQL timestamptz: when a sample taken at ``time`` ages out under rule 5."""
    return f"({time} + make_interval(secs => ({interval}) * {STALE_AFTER_INTERVALS}))"


def current_sql(*, time: str, value: str, quality: str, interval: str, health: str) -> str:
    """SQL boolean: the value is current (rules 1–5). ``time``/``value``/``quality`` are the latest
    value's columns, ``interval`` the expected interval in seconds, ``health`` the alias of the
    integration's ``ingest_health`` row (LEFT JOINed: all NULL when no worker has reported)."""
    return (f"coalesce({time} IS NOT NULL AND {value} IS NOT NULL AND {quality} < {QUALITY_BAD} "
            f"AND NOT {lost_sql(health)} "
            f"AND ({live_sql(health)} OR {age_limit_sql(time, interval)} > now()), false)")


def stale_at_sql(*, time: str, interval: str, health: str) -> str:
    """SQL timestamptz: when a current value stops counting if nothing changes — its age limit, or
    NULL while a live source vouches for it."""
    return f"(CASE WHEN {live_sql(health)} THEN NULL ELSE {age_limit_sql(time, interval)} END)"
