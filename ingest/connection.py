"""A database connection of a writer task's own (the writer, the folder), outside any pool.

It is opened on first use and set up for the write path (the session's staging tables) before its
first commit. After a failure its owner closes it — a connection a dead run may have left
mid-transaction is never reused — and the next use opens a new one. Closing waits five seconds
at most: the server may be gone.
"""

from __future__ import annotations

import asyncio

import psycopg

from optria.timeseries import writes


class OwnConnection:
    application_name = "optria-ingest"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: psycopg.AsyncConnection | None = None

    async def _setup(self, conn: psycopg.AsyncConnection) -> None:
        """Prepare a new connection; it is committed afterwards."""
        await writes.prepare_session(conn)

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=False, connect_timeout=5,
                                                         application_name=self.application_name)
            await self._setup(conn)
            await conn.commit()
            self._conn = conn
        return self._conn

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception:
                pass
