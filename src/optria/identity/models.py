"""Structs of the identity area shared by the JSON APIs that show users."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec


class UserOut(msgspec.Struct):
    """A user as the JSON APIs show one: the tenant admin's user API (identity.api adds whether the
    user must change the password) and the platform owner's user list (tenants adds the tenant)."""

    id: UUID
    username: str
    email: str
    display_name: str | None
    role: str
    is_active: bool
    auth_source: str
    identity_provider: str | None
    last_login_at: datetime | None
    created_at: datetime
