"""What a handler reads off its request: the database, the signed-in user's tenant, the client's
address, and a path id checked against the database's range.

The application shell puts the database on ``app.state`` and the user in ``scope["user"]``
(optria.shell.middleware); every area reads them through these helpers rather than its own copy.
"""

from __future__ import annotations

from uuid import UUID

from litestar import Request
from litestar.exceptions import NotFoundException

from optria.db import Database

MAX_ID = 2**63 - 1   # bigint: the largest id a row can have


def db_of(request: Request) -> Database:
    return request.app.state.db


def tenant_of(request: Request) -> UUID:
    """The signed-in user's tenant, for tenant-scoped routes (guards have already let the user in)."""
    user = request.scope["user"]
    if user.tenant_id is None:  # platform owners hold no tenant permission; defensive only
        raise NotFoundException()
    return user.tenant_id


def client_addr(request: Request) -> str:
    """The client's address for throttling and the audit log ("unknown" when the server was not told)."""
    return request.client.host if request.client else "unknown"


def check_id(value: int) -> int:
    """Path ids outside bigint are simply not found (never a database error)."""
    if not 0 < value <= MAX_ID:
        raise NotFoundException()
    return value
