"""OpenID providers for the SSO tests: real HTTP servers on loopback ports, real signatures.

- ``oidc_mock``: the ``oidc-provider-mock`` package (a Flask/authlib OpenID provider) in a thread.
  Its consent form is driven over HTTP the way a browser would (POST the subject).
- ``local_idp``: a small provider built here with aiohttp + joserfc for what the mock cannot do:
  Microsoft Entra-style tokens (``tid``/``oid``, a ``{tenantid}`` issuer template), PKCE
  verification at the token endpoint, and deliberately bad tokens (tampered, expired, wrong
  nonce/audience/issuer, signed by a key outside the JWKS).

``sso_login`` walks one sign-in through the app exactly as a browser does: start → provider →
callback, following real redirects between the test client and the provider.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from aiohttp import web as aioweb
from joserfc import jwt
from joserfc.jwk import RSAKey

ENTRA_TID = "9188040d-6c67-4c5b-b112-36a304b66dad"
OTHER_TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"


# -- oidc-provider-mock ------------------------------------------------------------------------------

@dataclass
class MockProvider:
    base: str

    @property
    def issuer(self) -> str:
        return self.base

    def set_user(self, sub: str, **claims: Any) -> None:
        r = httpx.put(f"{self.base}/users/{sub}", json=claims, timeout=5)
        assert r.status_code == 204, r.text

    async def authorize(self, authorize_url: str, sub: str) -> str:
        """Approve the consent form as a browser would; returns the callback URL the provider redirects to."""
        async with httpx.AsyncClient(follow_redirects=False, timeout=10) as http:
            r = await http.post(authorize_url, data={"sub": sub})
        assert r.status_code == 302, r.text[:500]
        return r.headers["location"]


@pytest.fixture
def oidc_mock() -> Iterator[MockProvider]:
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread() as server:
        yield MockProvider(f"http://localhost:{server.server_port}")


# -- the local provider --------------------------------------------------------------------------------

@dataclass
class LocalProvider:
    """An OpenID provider with one client; ``claims`` is who signs in next, ``mode`` what goes wrong."""

    client_id: str = "optria-client"
    client_secret: str = "s3cret-Value~with.chars"
    entra_multitenant: bool = False
    claims: dict[str, Any] = field(default_factory=dict)
    mode: str = "ok"
    base: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}))
    stranger_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def discovery_issuer(self) -> str:
        return f"{self.base}/{{tenantid}}/v2.0" if self.entra_multitenant else self.base

    @property
    def entered_url(self) -> str:
        """What an admin types: the issuer (multi-tenant Entra apps use the "organizations" address)."""
        return f"{self.base}/organizations/v2.0" if self.entra_multitenant else self.base

    def token_issuer(self, claims: dict[str, Any]) -> str:
        return f"{self.base}/{claims.get('tid', 'none')}/v2.0" if self.entra_multitenant else self.base

    # handlers
    async def discovery(self, request: aioweb.Request) -> aioweb.Response:
        return aioweb.json_response({
            "issuer": self.discovery_issuer, "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token", "jwks_uri": f"{self.base}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        })

    async def jwks(self, request: aioweb.Request) -> aioweb.Response:
        return aioweb.json_response({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: aioweb.Request) -> aioweb.Response:
        q = dict(request.query)
        self.authorize_requests.append(q)
        required = ("response_type", "client_id", "redirect_uri", "state", "nonce", "code_challenge",
                    "code_challenge_method", "scope")
        if any(not q.get(k) for k in required) or q["response_type"] != "code" or q["client_id"] != self.client_id \
                or q["code_challenge_method"] != "S256" or "openid" not in q["scope"].split():
            return aioweb.Response(status=400, text="bad authorization request")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"redirect_uri": q["redirect_uri"], "challenge": q["code_challenge"], "nonce": q["nonce"],
                            "claims": dict(self.claims)}
        raise aioweb.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")

    async def token(self, request: aioweb.Request) -> aioweb.Response:
        form = dict(await request.post())
        self.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            from urllib.parse import unquote_plus

            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, secret = unquote_plus(user), unquote_plus(pw)
        if client_id != self.client_id or secret != self.client_secret:
            return aioweb.json_response({"error": "invalid_client"}, status=401)
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("grant_type") != "authorization_code" or form.get("redirect_uri") != grant["redirect_uri"]:
            return aioweb.json_response({"error": "invalid_grant"}, status=400)
        verifier = form.get("code_verifier", "")
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if expected != grant["challenge"]:
            return aioweb.json_response({"error": "invalid_grant", "error_description": "PKCE failed"}, status=400)
        return aioweb.json_response({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                     "expires_in": 3600, "id_token": self.id_token(grant)})

    def id_token(self, grant: dict[str, Any]) -> str:
        now = int(time.time())
        claims = dict(grant["claims"])
        payload = {"iss": self.token_issuer(claims), "aud": self.client_id, "iat": now, "nbf": now, "exp": now + 600,
                   "nonce": grant["nonce"], **claims}
        mode = self.mode
        if mode == "expired":
            payload["iat"], payload["exp"] = now - 3600, now - 1800
        elif mode == "wrong_nonce":
            payload["nonce"] = "not-the-nonce"
        elif mode == "wrong_audience":
            payload["aud"] = "someone-else"
        elif mode == "wrong_issuer":
            payload["iss"] = "https://evil.example"
        key = self.stranger_key if mode == "stranger_key" else self.key
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, payload, key)
        if mode == "tampered":  # change a claim after signing: the signature no longer matches
            head, body, sig = token.split(".")
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            data["sub"] = data.get("sub", "") + "-admin"
            data["oid"] = "tampered"
            body = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
            token = f"{head}.{body}.{sig}"
        return token

    async def authorize_browser(self, authorize_url: str) -> str:
        async with httpx.AsyncClient(follow_redirects=False, timeout=10) as http:
            r = await http.get(authorize_url)
        assert r.status_code == 302, r.text[:500]
        return r.headers["location"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _ThreadedAiohttp:
    """Runs an aiohttp app on its own event loop in a thread, so it serves whatever loop the test uses."""

    def __init__(self, app: aioweb.Application, port: int) -> None:
        self.app, self.port = app, port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = aioweb.AppRunner(self.app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(aioweb.TCPSite(runner, "127.0.0.1", self.port).start())
        self.runner = runner
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def __enter__(self) -> _ThreadedAiohttp:
        self.thread.start()
        assert self.ready.wait(10), "local OpenID provider did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_local_provider(**kw: Any):
    provider = LocalProvider(**kw)
    app = aioweb.Application()
    for prefix in ("", "/organizations/v2.0"):
        app.router.add_get(prefix + "/.well-known/openid-configuration", provider.discovery)
    app.router.add_get("/jwks", provider.jwks)
    app.router.add_get("/authorize", provider.authorize)
    app.router.add_post("/token", provider.token)
    port = _free_port()
    provider.base = f"http://127.0.0.1:{port}"
    return provider, _ThreadedAiohttp(app, port)


@pytest.fixture
def local_idp() -> Iterator[LocalProvider]:
    provider, server = start_local_provider()
    with server:
        yield provider


@pytest.fixture
def entra_idp() -> Iterator[LocalProvider]:
    """A multi-tenant Microsoft Entra ID look-alike: issuer template with {tenantid}, tid/oid claims."""
    provider, server = start_local_provider(entra_multitenant=True)
    with server:
        yield provider


# -- walking a sign-in through the app -----------------------------------------------------------------

def app_path(url: str) -> str:
    """The path and query of a URL on the test app (the provider redirects to http://testserver.local/...)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def sso_start(web, org: str, provider_id: int, next_path: str | None = None) -> str:
    """Start a sign-in; returns the provider's authorization URL the app redirected to."""
    path = f"/sso/{org}/{provider_id}" + (f"?next={next_path}" if next_path else "")
    r = await web.get(path)
    assert r.status_code in (302, 303), f"{path}: {r.status_code} {r.text[:300]}"
    return r.headers["location"]


async def sso_login(web, org: str, provider_id: int, approve) -> httpx.Response:
    """start → provider (``approve(authorize_url)`` returns the callback URL) → callback; the callback's response."""
    authorize_url = await sso_start(web, org, provider_id)
    callback = await approve(authorize_url)
    return await web.get(app_path(callback))
