"""Web fixtures: the real app on a fresh database, and a client that signs in and speaks CSRF."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient

from optria.config import Settings
from optria.db import Database
from optria.identity.passwords import hash_password
from optria.identity.store import IdentityStore
from optria.shell.app import create_app

DEFAULT_PASSWORD = "Correct-Horse-42"


@dataclass
class Account:
    organization: str
    username: str
    password: str
    role: str
    user_id: Any
    tenant_id: Any


class Web:
    """A browser-like client: keeps cookies, sends the CSRF token the way our forms do."""

    def __init__(self, client: AsyncTestClient) -> None:
        self.client = client

    def csrf(self) -> str:
        token = self.client.cookies.get("optria_csrf")
        return token or ""

    async def ensure_csrf(self) -> str:
        if not self.csrf():
            await self.client.get("/login")
        return self.csrf()

    async def get(self, path: str, **kw) -> httpx.Response:
        return await self.client.get(path, **kw)

    async def post_form(self, path: str, data: dict[str, Any] | None = None, **kw) -> httpx.Response:
        token = await self.ensure_csrf()
        payload = {"_csrf_token": token, **(data or {})}
        return await self.client.post(path, data=payload, **kw)

    async def api(self, method: str, path: str, json: Any = None, **kw) -> httpx.Response:
        token = await self.ensure_csrf()
        headers = {"x-csrf-token": token, "accept": "application/json", **kw.pop("headers", {})}
        return await self.client.request(method, path, json=json, headers=headers, **kw)

    async def login(self, account: Account) -> httpx.Response:
        r = await self.post_form("/login", {"organization": account.organization, "username": account.username,
                                            "password": account.password})
        assert r.status_code in (302, 303), f"login failed for {account.username}: {r.status_code} {r.text[:300]}"
        return r

    async def logout(self) -> httpx.Response:
        return await self.post_form("/logout")


class Accounts:
    """Creates tenants and users directly through the identity store (arranging, not testing)."""

    def __init__(self, db: Database) -> None:
        self.store = IdentityStore(db)
        self._hash = hash_password(DEFAULT_PASSWORD)

    async def tenant(self, slug: str | None = None, name: str | None = None) -> tuple[Any, str]:
        slug = slug or f"t-{uuid.uuid4().hex[:8]}"
        tid = await self.store.ensure_tenant(slug, name or slug.upper())
        return tid, slug

    async def user(self, role: str, tenant: tuple[Any, str] | None = None, username: str | None = None,
                   must_change_password: bool = False) -> Account:
        username = username or f"{role[:6]}{uuid.uuid4().hex[:6]}"
        tenant_id, slug = tenant if tenant else (None, "")
        uid = await self.store.ensure_local_user(
            tenant_id=tenant_id, username=username, email=f"{username}@example.test", role=role,
            password_hash=self._hash, must_change_password=must_change_password)
        assert uid is not None
        return Account(slug, username, DEFAULT_PASSWORD, role, uid, tenant_id)


def make_settings(**overrides: Any) -> Settings:
    base = {"SESSION_SECRET": "test-session-secret-" + "x" * 24, "APP_ENV": "test"}
    base.update(overrides)
    return Settings(**base)


@pytest_asyncio.fixture
async def app(db: Database):
    return create_app(make_settings(), db)


@pytest_asyncio.fixture
async def client(app) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=app) as c:
        c.follow_redirects = False
        yield c


@pytest_asyncio.fixture
async def web(client) -> Web:
    return Web(client)


@pytest_asyncio.fixture
async def accounts(db: Database) -> Accounts:
    return Accounts(db)


@asynccontextmanager
async def new_web(app) -> AsyncIterator[Web]:
    """A second, independent browser on the same app."""
    async with AsyncTestClient(app=app) as c:
        c.follow_redirects = False
        yield Web(c)


CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
