"""OpenID Connect relying party: discovery, authorization code flow with PKCE, ID token validation.

Only the protocol lives here; which account a validated identity maps to is decided in
``sso_accounts``. Every call to a provider goes through aiohttp with bounded timeouts and
answers failures with an :class:`OidcError` whose message is safe to show a user (English
msgid, translated on pages) while the technical reason goes to the log.

What is checked on the ID token, in order: the JOSE header names an asymmetric algorithm
the provider announces; the signature verifies against a key of the provider's JWKS
(refetched once when the ``kid`` is unknown, for key rotation); ``iss`` equals the
discovered issuer (for a multi-tenant Microsoft Entra ID application whose issuer is the
template ``.../{tenantid}/v2.0``, the token's ``tid`` is substituted and must be on the
tenant's allow-list); ``aud`` contains our client id (``azp`` must be ours when present);
``exp`` is in the future; ``iat`` is not in the future; ``nonce`` equals the one we sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import re
import logging
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import aiohttp
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

log = logging.getLogger("optria.identity.sso")

WELL_KNOWN = "/.well-known/openid-configuration"
SCOPE = "openid email profile"
TENANT_PLACEHOLDER = "{tenantid}"
# Asymmetric only: a symmetric "alg" would let a key published in the JWKS act as a shared secret.
SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
CLOCK_SKEW_S = 120
PENDING_TTL_S = 600
MAX_DOCUMENT_BYTES = 512 * 1024

# User-facing messages (English msgids; listed in shell/i18n_sources.py for translation).
MSG_UNREACHABLE = "The identity provider could not be reached at this address. Check the issuer or discovery URL, or try again later."
MSG_NOT_DISCOVERY = "This address did not return an OpenID Connect discovery document. Enter the issuer URL or its /.well-known/openid-configuration address."
MSG_HTTPS = "Use an https:// address for the identity provider."
MSG_PRIVATE = "This address points to a private network and cannot be used for an identity provider."
MSG_TOKEN_REFUSED = "The identity provider refused to complete the sign-in. Try again, or ask your administrator to check the client id and secret."
MSG_TOKEN_INVALID = "The identity provider's answer could not be verified, so you were not signed in. Start the sign-in again."
MSG_TOKEN_EXPIRED = "The sign-in token has expired. Start the sign-in again."
MSG_NONCE = "The sign-in answer does not belong to this sign-in attempt. Start the sign-in again."
MSG_DIRECTORY = "Your Microsoft Entra directory is not allowed to sign in to this organization."
MSG_MIXUP = ("The sign-in answer came from another identity provider than the one you chose, so you were not signed "
             "in. Start the sign-in again from your organization's sign-in page.")
MSG_CODE_REFUSED = ("The identity provider did not accept this sign-in answer (it was used already, or it has expired). "
                    "Start the sign-in again.")
MESSAGES = (MSG_UNREACHABLE, MSG_NOT_DISCOVERY, MSG_HTTPS, MSG_PRIVATE, MSG_TOKEN_REFUSED, MSG_TOKEN_INVALID,
            MSG_TOKEN_EXPIRED, MSG_NONCE, MSG_DIRECTORY, MSG_MIXUP, MSG_CODE_REFUSED)
# Token endpoint errors that are the client's configuration (RFC 6749 §5.2); any other refusal is about the answer.
CLIENT_ERRORS = ("invalid_client", "unauthorized_client")


class SignInError(Exception):
    """A refused sign-in or provider call. ``message`` is for users (msgid); ``reason`` is for logs only."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason = reason


class OidcError(SignInError):
    """The provider could not be reached, or its answer did not pass the protocol checks."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    signing_algs: tuple[str, ...]
    token_auth_methods: tuple[str, ...]
    iss_parameter_supported: bool = False   # RFC 9207: the provider names itself in its authorization answer

    @property
    def is_tenant_template(self) -> bool:
        return TENANT_PLACEHOLDER in self.issuer

    def is_issuer(self, iss: str) -> bool:
        """Whether ``iss`` names this provider (for a multi-tenant template, any directory's issuer)."""
        if not self.is_tenant_template:
            return iss == self.issuer
        head, _, tail = self.issuer.partition(TENANT_PLACEHOLDER)
        middle = iss[len(head):len(iss) - len(tail)] if iss.startswith(head) and iss.endswith(tail) else ""
        return bool(re.fullmatch(r"[0-9a-fA-F-]{8,64}", middle))


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the browser is sent to, and what we keep (server-side, in the encrypted session) to check the answer."""

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclass
class _Cached:
    value: Any
    expires: float


def discovery_document_url(entered: str) -> str:
    """The discovery URL for what an admin typed: an issuer URL, or the discovery URL itself."""
    entered = entered.strip()
    if entered.rstrip("/").endswith(WELL_KNOWN):
        return entered.rstrip("/")
    return entered.rstrip("/") + WELL_KNOWN


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _b64json(part: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


@dataclass
class OidcClient:
    """Talks to OpenID providers. Discovery documents and key sets are cached for ``cache_ttl`` seconds."""

    production: bool = False
    timeout_s: float = 10.0
    cache_ttl: float = 600.0
    _discovery: dict[str, _Cached] = field(default_factory=dict)
    _jwks: dict[str, _Cached] = field(default_factory=dict)

    # -- HTTP -------------------------------------------------------------------------------

    async def check_url(self, url: str) -> None:
        """https only in production (plain http is accepted for loopback addresses outside production);
        in production an address that resolves into a private network is refused (no SSRF)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not host:
            raise OidcError(MSG_NOT_DISCOVERY, f"not an http(s) URL: {url[:200]}")
        loopback = host == "localhost" or _is_loopback_literal(host)
        if parts.scheme == "http" and (self.production or not loopback):
            raise OidcError(MSG_HTTPS, f"plain http refused for {host}")
        if self.production:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise OidcError(MSG_UNREACHABLE, f"cannot resolve {host}: {exc}") from None
            for info in infos:
                addr = ipaddress.ip_address(info[4][0])
                if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved or addr.is_multicast:
                    raise OidcError(MSG_PRIVATE, f"{host} resolves to non-public {addr}")

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.timeout_s, connect=min(5.0, self.timeout_s))

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        await self.check_url(url)
        try:
            async with aiohttp.ClientSession(timeout=self._timeout()) as http:
                async with http.get(url, headers={"accept": "application/json"}, allow_redirects=False) as resp:
                    body = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
                    status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise OidcError(MSG_UNREACHABLE, f"{what} {url[:200]} unreachable: {type(exc).__name__} {exc}") from None
        if status != 200 or len(body) > MAX_DOCUMENT_BYTES:
            raise OidcError(MSG_NOT_DISCOVERY, f"{what} {url[:200]} answered HTTP {status}")
        try:
            doc = json.loads(body)
        except ValueError:
            raise OidcError(MSG_NOT_DISCOVERY, f"{what} {url[:200]} is not JSON") from None
        if not isinstance(doc, dict):
            raise OidcError(MSG_NOT_DISCOVERY, f"{what} {url[:200]} is not a JSON object")
        return doc

    # -- discovery and keys -----------------------------------------------------------------

    async def discover(self, entered_url: str, *, refresh: bool = False) -> ProviderMetadata:
        url = discovery_document_url(entered_url)
        cached = self._discovery.get(url)
        if cached and not refresh and cached.expires > time.monotonic():
            return cached.value
        doc = await self._get_json(url, "discovery")
        required = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
        missing = [k for k in required if not isinstance(doc.get(k), str) or not doc.get(k)]
        if missing:
            raise OidcError(MSG_NOT_DISCOVERY, f"discovery {url[:200]} lacks {', '.join(missing)}")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            await self.check_url(doc[key])
        algs = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        meta = ProviderMetadata(
            issuer=doc["issuer"], authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"], jwks_uri=doc["jwks_uri"],
            signing_algs=tuple(a for a in algs if isinstance(a, str) and a in SIGNING_ALGS),
            token_auth_methods=tuple(m for m in methods if isinstance(m, str)),
            iss_parameter_supported=doc.get("authorization_response_iss_parameter_supported") is True,
        )
        self._discovery[url] = _Cached(meta, time.monotonic() + self.cache_ttl)
        return meta

    async def signing_keys(self, meta: ProviderMetadata, *, refresh: bool = False) -> list[Key]:
        cached = self._jwks.get(meta.jwks_uri)
        if cached and not refresh and cached.expires > time.monotonic():
            return cached.value
        doc = await self._get_json(meta.jwks_uri, "jwks")
        keys: list[Key] = []
        for data in doc.get("keys") or []:
            if not isinstance(data, dict) or data.get("kty") not in ("RSA", "EC", "OKP"):
                continue  # symmetric or unknown key types are never used to verify ID tokens
            if data.get("use") not in (None, "sig"):
                continue
            try:
                keys.append(JWKRegistry.import_key(data))
            except (JoseError, ValueError, TypeError):
                log.warning("sso.jwks_key_skipped", extra={"jwks_uri": meta.jwks_uri, "kid": data.get("kid")})
        self._jwks[meta.jwks_uri] = _Cached(keys, time.monotonic() + self.cache_ttl)
        return keys

    # -- the flow -----------------------------------------------------------------------------

    def authorization_request(self, meta: ProviderMetadata, *, client_id: str, redirect_uri: str,
                              login_hint: str | None = None) -> AuthorizationRequest:
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters, inside RFC 7636's 43..128
        params = {
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": SCOPE,
            "state": state, "nonce": nonce, "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256", "response_mode": "query",
        }
        if login_hint:
            params["login_hint"] = login_hint
        sep = "&" if "?" in meta.authorization_endpoint else "?"
        return AuthorizationRequest(meta.authorization_endpoint + sep + urlencode(params), state, nonce, verifier)

    @staticmethod
    def check_response_issuer(meta: ProviderMetadata, iss: str | None) -> None:
        """RFC 9207: an authorization answer naming another issuer is a mix-up (refused before the code
        is sent anywhere); a provider that promises the parameter must send it."""
        if iss:
            if not meta.is_issuer(iss):
                raise OidcError(MSG_MIXUP, f"authorization answer iss {iss[:200]!r} is not {meta.issuer!r}")
        elif meta.iss_parameter_supported:
            raise OidcError(MSG_MIXUP, "authorization answer lacks the iss parameter its provider promises")

    async def exchange_code(self, meta: ProviderMetadata, *, code: str, redirect_uri: str, code_verifier: str,
                            client_id: str, client_secret: str | None) -> dict[str, Any]:
        """The token endpoint's answer for an authorization code (must hold an ``id_token``)."""
        await self.check_url(meta.token_endpoint)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": code_verifier, "client_id": client_id}
        headers = {"accept": "application/json"}
        if client_secret:
            if "client_secret_post" in meta.token_auth_methods and "client_secret_basic" not in meta.token_auth_methods:
                form["client_secret"] = client_secret
            else:
                headers["authorization"] = _basic_auth(client_id, client_secret)
        try:
            async with aiohttp.ClientSession(timeout=self._timeout()) as http:
                async with http.post(meta.token_endpoint, data=form, allow_redirects=False, headers=headers) as resp:
                    body = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
                    status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise OidcError(MSG_UNREACHABLE, f"token endpoint unreachable: {type(exc).__name__} {exc}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if status != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            # only a refusal of the client itself points at its id and secret; a refused code (used, expired,
            # or issued by another provider) is the answer's fault
            message = MSG_TOKEN_REFUSED if error in CLIENT_ERRORS or error is None else MSG_CODE_REFUSED
            raise OidcError(message, f"token endpoint answered HTTP {status} error={error!r}")
        if not isinstance(answer.get("id_token"), str):
            raise OidcError(MSG_TOKEN_INVALID, "token endpoint answer has no id_token")
        return answer

    async def validate_id_token(self, meta: ProviderMetadata, id_token: str, *, client_id: str, nonce: str,
                                allowed_tenant_ids: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
        """The verified claims of ``id_token``; raises OidcError on any failed check."""
        try:
            header_b64, payload_b64, _sig = id_token.split(".")
            header = _b64json(header_b64)
            claims = _b64json(payload_b64)
        except (ValueError, TypeError):
            raise OidcError(MSG_TOKEN_INVALID, "id_token is not a compact JWS") from None
        alg = header.get("alg")
        allowed_algs = meta.signing_algs or ("RS256",)
        if alg not in allowed_algs:
            raise OidcError(MSG_TOKEN_INVALID, f"id_token alg {alg!r} not in {allowed_algs}")
        await self._verify_signature(meta, id_token, header, alg)
        self._check_claims(meta, claims, client_id=client_id, nonce=nonce, allowed_tenant_ids=allowed_tenant_ids)
        return claims

    async def _verify_signature(self, meta: ProviderMetadata, token: str, header: dict[str, Any], alg: str) -> None:
        kid = header.get("kid")
        for attempt in (0, 1):
            keys = await self.signing_keys(meta, refresh=attempt == 1)
            candidates = [k for k in keys if kid is None or k.kid == kid]
            if not candidates and kid is not None and attempt == 0:
                continue  # unknown kid: the provider may have rotated its keys; fetch them again once
            for key in candidates:
                try:
                    jws.deserialize_compact(token, key, algorithms=[alg])
                    return
                except JoseError:
                    continue
                except (ValueError, TypeError):
                    continue
            break
        raise OidcError(MSG_TOKEN_INVALID, f"id_token signature did not verify (kid={kid!r}, alg={alg})")

    @staticmethod
    def _check_claims(meta: ProviderMetadata, claims: dict[str, Any], *, client_id: str, nonce: str,
                      allowed_tenant_ids: list[str] | tuple[str, ...]) -> None:
        tid = claims.get("tid")
        expected_iss = meta.issuer
        if meta.is_tenant_template:
            if not isinstance(tid, str) or not tid:
                raise OidcError(MSG_TOKEN_INVALID, "multi-tenant issuer but the token has no tid")
            if tid not in allowed_tenant_ids:
                raise OidcError(MSG_DIRECTORY, f"tid {tid} is not on the allow-list")
            expected_iss = meta.issuer.replace(TENANT_PLACEHOLDER, tid)
        elif allowed_tenant_ids and isinstance(tid, str) and tid not in allowed_tenant_ids:
            raise OidcError(MSG_DIRECTORY, f"tid {tid} is not on the allow-list")
        if claims.get("iss") != expected_iss:
            raise OidcError(MSG_TOKEN_INVALID, f"iss {str(claims.get('iss'))[:200]!r} != {expected_iss!r}")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if client_id not in audiences:
            raise OidcError(MSG_TOKEN_INVALID, "aud does not contain our client id")
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp != client_id:
            raise OidcError(MSG_TOKEN_INVALID, "azp is not our client id")
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise OidcError(MSG_TOKEN_INVALID, "exp missing")
        if exp <= now - CLOCK_SKEW_S:
            raise OidcError(MSG_TOKEN_EXPIRED, f"expired {int(now - exp)} s ago")
        iat = claims.get("iat")
        if not isinstance(iat, (int, float)) or isinstance(iat, bool) or iat > now + CLOCK_SKEW_S:
            raise OidcError(MSG_TOKEN_INVALID, "iat missing or in the future")
        got_nonce = claims.get("nonce")
        if not isinstance(got_nonce, str) or not hmac.compare_digest(got_nonce.encode(), nonce.encode()):
            raise OidcError(MSG_NONCE, "nonce mismatch")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise OidcError(MSG_TOKEN_INVALID, "sub missing")


def identity_key(claims: dict[str, Any]) -> tuple[str, str]:
    """(issuer, subject) that keys an SSO account: never the email or a username claim.

    Microsoft Entra ID tokens carry ``tid`` (directory) and ``oid`` (object id): the issuer of
    a v2 token is per directory and contains ``tid``, and ``oid`` is the user's stable id across
    applications (``sub`` is pairwise per application), so for Entra the key is tid + oid.
    """
    iss = claims["iss"]
    tid, oid = claims.get("tid"), claims.get("oid")
    if isinstance(tid, str) and tid and isinstance(oid, str) and oid and tid in iss:
        return iss, oid
    return iss, claims["sub"]


def _basic_auth(client_id: str, client_secret: str) -> str:
    """RFC 6749 §2.3.1: client credentials in HTTP Basic are form-urlencoded first."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
