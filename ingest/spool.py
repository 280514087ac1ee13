"""A local append-only spool for samples that cannot wait for the database.

Records are length-prefixed msgpack frames, fsynced on write, replayed in order and
removed only after the replayed rows committed. A torn last frame (power cut mid-write)
is ignored on replay; everything before it is kept.

Batches the database refused outright (not for being away) go to a separate
``<spool>.rejected`` file in the same format: kept for an operator to inspect and replay
(``Spool.read_batches``), never replayed automatically.

Each process holds an exclusive lock (``flock``) on ``<spool>.lock`` while it lives. A
process that stopped with rows still spooled (the database was away when it was told to
stop) leaves its files unlocked; the next process using the same folder adopts them and
replays them with its own, so nothing spooled waits for a process that will never return.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import msgspec

from ingest.samples import Sample

log = logging.getLogger("optria.ingest.spool")
_HEADER = struct.Struct(">I")
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[tuple[str, int, float, float | None, int]])


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._owner_fd = _try_lock(self._lock_path(path))
        if self._owner_fd is None:
            log.warning("spool.already_locked", extra={"path": str(path)})

    @staticmethod
    def _lock_path(path: Path) -> Path:
        return path.with_name(path.name + ".lock")

    def adopt_orphans(self) -> int:
        """Take over the spools of processes that are gone (their lock is free): their files
        join this spool's replay queue. Returns how many files were adopted."""
        adopted = 0
        for lock in sorted(self.path.parent.glob("*.spool.lock")):
            other = lock.with_name(lock.name[: -len(".lock")])
            if other == self.path:
                continue
            fd = _try_lock(lock)
            if fd is None:
                continue   # its process is alive
            try:
                pending = sorted(other.parent.glob(f"{other.name}.*.replay"))
                if other.exists() and other.stat().st_size:
                    pending.append(other)
                for source in pending:
                    self._queue_for_replay(source)
                    adopted += 1
                if other.exists():
                    other.unlink()
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
        if adopted:
            log.info("spool.adopted", extra={"files": adopted, "into": self.path.name})
        return adopted

    def _queue_for_replay(self, source: Path) -> Path:
        with self._lock:
            n = 0
            while (target := self.path.with_name(f"{self.path.name}.{n:06d}.replay")).exists():
                n += 1
            source.rename(target)
            return target

    @property
    def size_bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    @property
    def rejected_path(self) -> Path:
        return self.path.with_name(self.path.name + ".rejected")

    def append(self, samples: list[Sample]) -> None:
        self._append(self.path, samples)

    def append_rejected(self, samples: list[Sample]) -> None:
        self._append(self.rejected_path, samples)

    def _append(self, path: Path, samples: list[Sample]) -> None:
        if not samples:
            return
        rows = [(str(s.tenant_id), s.signal_id, s.time.timestamp(), s.value, s.quality) for s in samples]
        frame = _encoder.encode(rows)
        with self._lock, open(path, "ab") as f:
            f.write(_HEADER.pack(len(frame)) + frame)
            f.flush()
            os.fsync(f.fileno())

    def take(self) -> list[Path]:
        """Move the spool aside for replay (new appends start a fresh file) and return every file
        waiting for replay, oldest first, including ones left by a crash during an earlier replay
        and the spools of processes that are gone."""
        self.adopt_orphans()
        if self.path.exists() and self.path.stat().st_size > 0:
            self._queue_for_replay(self.path)
        return sorted(self.path.parent.glob(f"{self.path.name}.*.replay"))

    def pending_bytes(self) -> int:
        return self.size_bytes + sum(p.stat().st_size for p in self.path.parent.glob(f"{self.path.name}.*.replay"))

    @staticmethod
    def read_batches(path: Path) -> Iterator[list[Sample]]:
        """Frames in the order written; stops quietly at a torn tail."""
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return
        with f:
            while True:
                head = f.read(_HEADER.size)
                if len(head) < _HEADER.size:
                    return
                (length,) = _HEADER.unpack(head)
                frame = f.read(length)
                if len(frame) < length:
                    log.warning("spool.torn_frame", extra={"path": str(path)})
                    return
                try:
                    rows = _decoder.decode(frame)
                except msgspec.DecodeError:
                    log.warning("spool.corrupt_frame", extra={"path": str(path)})
                    return
                yield [Sample(UUID(t), sid, datetime.fromtimestamp(ts, timezone.utc), v, q) for t, sid, ts, v, q in rows]

    @staticmethod
    def done(path: Path) -> None:
        """A replayed file's rows are committed: remove it."""
        path.unlink(missing_ok=True)


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on ``path``, or None when another process holds it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
