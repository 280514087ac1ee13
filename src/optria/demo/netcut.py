"""A loopback TCP proxy whose connections can be cut: a network fault for tests and benchmarks.

``CuttableProxy(target_port)`` listens on an ephemeral loopback port and forwards every
connection to ``127.0.0.1:target_port``. ``cut()`` aborts every open connection and refuses
new ones until ``restore()``, so a client loses its session while the server goes on
producing values (a network fault, unlike a server restart).
"""

from __future__ import annotations

import asyncio


class CuttableProxy:
    """A TCP proxy on loopback whose connections can be cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.blocked = False
        self.pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.close()
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        if self.blocked:                                # cut while we were connecting upstream
            up_w.close()
            writer.close()
            return
        self.pipes |= {writer, up_w}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()
                self.pipes.discard(dst)

        await asyncio.gather(pump(reader, up_w), pump(up_r, writer))

    def cut(self) -> None:
        self.blocked = True
        for w in list(self.pipes):
            w.transport.abort()
        self.pipes.clear()

    def restore(self) -> None:
        self.blocked = False

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
