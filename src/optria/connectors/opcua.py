"""OPC-UA connector: configuration defaults, client certificate, connection test, browse, reads.

Every public call opens a fresh asyncua ``Client`` and session and closes it again
(``open_client``), so a broken session is never reused; the ingest service uses the
same ``open_client`` for its subscriptions and reconnects by opening a new one.

Failures become ``ConnectorError`` (or a failed ``TestResult``) with a short English
message and a stable reason code, so the UI and the action log can say *why* a
connection failed without ever showing a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from asyncua import Client, ua
from asyncua.crypto import cert_gen, security_policies, uacrypto
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import SecretStr

from optria.connectors.base import BrowseItem, ConnectorError, Sample, TestResult, test_message

log = logging.getLogger("optria.connectors.opcua")

CLIENT_APPLICATION_URI = "urn:optria:iq:client"
CLIENT_PRODUCT_URI = "urn:optria:iq"
CLIENT_NAME = "OPTRIA IQ"
DEFAULT_PORT = 4840
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_PUBLISHING_INTERVAL_MS = 1000
DEFAULT_SAMPLING_INTERVAL_MS = 0  # 0 = the server's fastest rate: report every change
# A session left behind by a cut connection lingers on the server until this much inactivity
# (a live session is kept alive by its publish requests); servers clamp it to their own range.
DEFAULT_SESSION_TIMEOUT_S = 30.0
CERT_VALIDITY_DAYS = 730
_CLOSE_TIMEOUT_S = 2.0
_READ_CHUNK = 1000
_BROWSE_CHUNK = 200

SECURITY_POLICIES = ("None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss")
SECURITY_MODES = ("None", "Sign", "SignAndEncrypt")
AUTH_TYPES = ("anonymous", "username")

# Failure reason codes (details["reason"] of a failed TestResult, ConnectorError.code).
REASONS = (
    "no_endpoint", "invalid_endpoint", "invalid_config", "dns_failure", "connection_refused",
    "connection_failed", "timeout", "certificate_rejected", "bad_credentials",
    "security_policy_not_offered", "server_error",
)

_POLICY_CLASSES: dict[str, type[security_policies.SecurityPolicy]] = {
    "None": security_policies.SecurityPolicyNone,
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": security_policies.SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
_POLICY_BY_URI = {cls.URI: name for name, cls in _POLICY_CLASSES.items()}
_MODES = {
    "None": ua.MessageSecurityMode.None_,
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}
_MODE_NAMES = {v: k for k, v in _MODES.items()}


def _alias_key(name: str) -> str:
    return name.replace("_", "").replace("-", "").replace(" ", "").lower()


_POLICY_ALIASES = {_alias_key(name): name for name in SECURITY_POLICIES}
_MODE_ALIASES = {_alias_key(name): name for name in SECURITY_MODES}
_MODE_ALIASES["none_"] = "None"

# Status codes grouped by the reason we report for them.
_CERT_CODES = {
    getattr(ua.StatusCodes, n) for n in dir(ua.StatusCodes) if n.startswith("BadCertificate")
} | {ua.StatusCodes.BadSecurityChecksFailed, ua.StatusCodes.BadNoValidCertificates}
_CREDENTIAL_CODES = {
    ua.StatusCodes.BadUserAccessDenied, ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadIdentityTokenRejected, ua.StatusCodes.BadUserSignatureInvalid,
}
_POLICY_CODES = {ua.StatusCodes.BadSecurityPolicyRejected, ua.StatusCodes.BadSecurityModeRejected}


class _RedactUserTokens(logging.Filter):
    """asyncua logs every request it sends at DEBUG, ActivateSession included, and on a
    SignAndEncrypt channel the UserNameIdentityToken carries the password in clear inside
    that request; replace such log arguments before any handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else (record.args,) if record.args else ()
        if any(isinstance(a, ua.ActivateSessionRequest) for a in args):
            record.args = tuple("ActivateSessionRequest(<credentials redacted>)"
                                if isinstance(a, ua.ActivateSessionRequest) else a for a in args)
        elif isinstance(record.msg, ua.ActivateSessionRequest):
            record.msg, record.args = "ActivateSessionRequest(<credentials redacted>)", ()
        return True


def _install_log_redaction() -> None:
    target = logging.getLogger("asyncua.client.ua_client.UASocketProtocol")
    if not any(isinstance(f, _RedactUserTokens) for f in target.filters):
        target.addFilter(_RedactUserTokens())


_install_log_redaction()


# --------------------------------------------------------------------------- configuration


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, SecretStr):
        return not value.get_secret_value()
    return isinstance(value, str) and not value.strip()


def _as_secret(value: Any) -> SecretStr | None:
    if _blank(value):
        return None
    return value if isinstance(value, SecretStr) else SecretStr(str(value))


def _normalize_choice(value: Any, aliases: Mapping[str, str]) -> str | None:
    """Known spellings map to the canonical name; unknown values are kept so validation can name them."""
    if _blank(value):
        return None
    text = str(value).strip()
    return aliases.get(_alias_key(text), text)


def _same_endpoint(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    try:
        pa, pb = urlsplit(a.strip()), urlsplit(b.strip())
        return (pa.scheme.lower(), (pa.hostname or "").lower(), pa.port or DEFAULT_PORT) == (
            pb.scheme.lower(), (pb.hostname or "").lower(), pb.port or DEFAULT_PORT)
    except ValueError:
        return False


def merge_config(config: Mapping[str, Any] | None, settings: Any) -> dict[str, Any]:
    """Merge a tenant integration config with the platform defaults from ``settings``.

    Precedence, field by field:

    * ``endpoint_url``: the tenant value when present and not blank, else
      ``settings.opcua_endpoint_url``, else None (a later call fails with ``no_endpoint``).
    * ``security_policy``: tenant value, else ``"None"``. ``security_mode``: tenant value,
      else ``"None"`` for policy None and ``"SignAndEncrypt"`` for any other policy.
    * ``auth_type``: tenant value; when absent, ``"username"`` if the tenant gave a username
      or if the global endpoint is used and a global username exists, else ``"anonymous"``.
    * ``username``/``password`` (only for auth_type ``"username"``): the tenant pair when the
      tenant gave a username; otherwise ``settings.opcua_username``/``opcua_password``, but
      **only when the endpoint is the global one** (taken from settings, or the same
      host:port). The platform's credentials are never sent to a server a tenant chose, or a
      tenant could harvest them by pointing an integration at a server of their own.
    * ``timeout_s`` 10, ``publishing_interval_ms`` 1000, ``sampling_interval_ms`` 0.

    The result carries the password as ``SecretStr`` (so printing the dict shows
    ``**********``) and ``_sources``: which value came from ``"tenant"``, ``"global"``,
    ``"default"`` or is ``"missing"``; it holds no secret and may be shown to admins.
    ``settings`` may be any object with those attributes, or None.
    """
    cfg = dict(config or {})
    sources: dict[str, str] = {}
    g_endpoint = getattr(settings, "opcua_endpoint_url", None) if settings is not None else None
    g_user = getattr(settings, "opcua_username", None) if settings is not None else None
    g_password = getattr(settings, "opcua_password", None) if settings is not None else None

    endpoint = None if _blank(cfg.get("endpoint_url")) else str(cfg["endpoint_url"]).strip()
    if endpoint:
        sources["endpoint_url"] = "tenant"
    elif not _blank(g_endpoint):
        endpoint, sources["endpoint_url"] = str(g_endpoint).strip(), "global"
    else:
        sources["endpoint_url"] = "missing"
    uses_global_endpoint = sources["endpoint_url"] == "global" or _same_endpoint(endpoint, g_endpoint)

    policy = _normalize_choice(cfg.get("security_policy"), _POLICY_ALIASES)
    sources["security_policy"] = "tenant" if policy else "default"
    policy = policy or "None"
    mode = _normalize_choice(cfg.get("security_mode"), _MODE_ALIASES)
    sources["security_mode"] = "tenant" if mode else "default"
    mode = mode or ("None" if policy == "None" else "SignAndEncrypt")

    t_user = None if _blank(cfg.get("username")) else str(cfg["username"]).strip()
    auth = None if _blank(cfg.get("auth_type")) else str(cfg["auth_type"]).strip().lower()
    sources["auth_type"] = "tenant" if auth else "default"
    if auth is None:
        auth = "username" if (t_user or (uses_global_endpoint and not _blank(g_user))) else "anonymous"

    username: str | None = None
    password: SecretStr | None = None
    if auth == "username":
        if t_user:
            username, password = t_user, _as_secret(cfg.get("password"))
            sources["username"] = "tenant"
            sources["password"] = "tenant" if password else "missing"
        elif uses_global_endpoint and not _blank(g_user):
            username, password = str(g_user).strip(), _as_secret(g_password)
            sources["username"] = "global"
            sources["password"] = "global" if password else "missing"
        else:
            sources["username"] = sources["password"] = "missing"

    merged: dict[str, Any] = {
        "endpoint_url": endpoint,
        "security_policy": policy,
        "security_mode": mode,
        "auth_type": auth,
        "username": username,
        "password": password,
    }
    for key, default in (("timeout_s", DEFAULT_TIMEOUT_S),
                         ("publishing_interval_ms", DEFAULT_PUBLISHING_INTERVAL_MS),
                         ("sampling_interval_ms", DEFAULT_SAMPLING_INTERVAL_MS),
                         ("session_timeout_s", DEFAULT_SESSION_TIMEOUT_S)):
        merged[key] = default if _blank(cfg.get(key)) else cfg[key]
        sources[key] = "default" if _blank(cfg.get(key)) else "tenant"
    merged["_sources"] = sources
    return merged


@dataclass(frozen=True)
class OpcUaConfig:
    """A validated connection configuration (the password stays a SecretStr)."""

    endpoint_url: str
    host: str
    port: int
    security_policy: str = "None"
    security_mode: str = "None"
    auth_type: str = "anonymous"
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    publishing_interval_ms: int = DEFAULT_PUBLISHING_INTERVAL_MS
    sampling_interval_ms: int = DEFAULT_SAMPLING_INTERVAL_MS
    session_timeout_s: float = DEFAULT_SESSION_TIMEOUT_S

    @property
    def endpoint_host(self) -> str:
        """host:port, safe to show and log."""
        return f"{self.host}:{self.port}"

    @property
    def secure(self) -> bool:
        return self.security_policy != "None"


def parse_endpoint(url: str | None) -> tuple[str, str, int]:
    """Validate an ``opc.tcp://host[:port][/path]`` URL; returns (url, host, port)."""
    if _blank(url):
        raise ConnectorError("No OPC-UA endpoint is configured for this integration, and there is no "
                             "platform default (OPCUA_ENDPOINT_URL).", code="no_endpoint")
    text = str(url).strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ConnectorError("The endpoint URL is malformed (invalid port).", code="invalid_endpoint") from None
    if parts.scheme.lower() != "opc.tcp":
        raise ConnectorError("The endpoint URL must start with opc.tcp:// (for example "
                             "opc.tcp://plant-server:4840).", code="invalid_endpoint")
    if "@" in parts.netloc:
        raise ConnectorError("The endpoint URL must not contain credentials; use the username and "
                             "password fields.", code="invalid_endpoint")
    if not parts.hostname or any(c.isspace() for c in text):
        raise ConnectorError("The endpoint URL has no valid host name.", code="invalid_endpoint")
    return text, parts.hostname, port or DEFAULT_PORT


def _number(value: Any, name: str, default: float, *, minimum: float) -> float:
    if _blank(value):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConnectorError(f"{name} must be a number.", code="invalid_config") from None
    if number < minimum:
        raise ConnectorError(f"{name} must be at least {minimum:g}.", code="invalid_config")
    return number


def parse_config(config: Mapping[str, Any] | OpcUaConfig) -> OpcUaConfig:
    """Validate a merged config (output of ``merge_config``; a raw tenant dict works too,
    without platform defaults). Raises ConnectorError with code no_endpoint,
    invalid_endpoint or invalid_config."""
    if isinstance(config, OpcUaConfig):
        return config
    url, host, port = parse_endpoint(config.get("endpoint_url"))
    policy = _normalize_choice(config.get("security_policy"), _POLICY_ALIASES) or "None"
    if policy not in _POLICY_CLASSES:
        raise ConnectorError(f"Unknown security policy {policy!r}; expected one of "
                             f"{', '.join(SECURITY_POLICIES)}.", code="invalid_config")
    mode = _normalize_choice(config.get("security_mode"), _MODE_ALIASES) or (
        "None" if policy == "None" else "SignAndEncrypt")
    if mode not in _MODES:
        raise ConnectorError(f"Unknown security mode {mode!r}; expected one of "
                             f"{', '.join(SECURITY_MODES)}.", code="invalid_config")
    if (policy == "None") != (mode == "None"):
        raise ConnectorError("Security policy None goes with mode None, and a secure policy needs "
                             "mode Sign or SignAndEncrypt.", code="invalid_config")
    username = None if _blank(config.get("username")) else str(config["username"]).strip()
    auth = (str(config.get("auth_type") or "").strip().lower()) or ("username" if username else "anonymous")
    if auth not in AUTH_TYPES:
        raise ConnectorError(f"Unknown auth type {auth!r}; expected anonymous or username.",
                             code="invalid_config")
    if auth == "username" and not username:
        raise ConnectorError("Username login is selected but no username is configured.",
                             code="bad_credentials")
    return OpcUaConfig(
        endpoint_url=url, host=host, port=port, security_policy=policy, security_mode=mode,
        auth_type=auth, username=username if auth == "username" else None,
        password=_as_secret(config.get("password")) if auth == "username" else None,
        timeout_s=_number(config.get("timeout_s"), "timeout_s", DEFAULT_TIMEOUT_S, minimum=0.1),
        publishing_interval_ms=int(_number(config.get("publishing_interval_ms"), "publishing_interval_ms",
                                           DEFAULT_PUBLISHING_INTERVAL_MS, minimum=0)),
        sampling_interval_ms=int(_number(config.get("sampling_interval_ms"), "sampling_interval_ms",
                                         DEFAULT_SAMPLING_INTERVAL_MS, minimum=-1)),
        session_timeout_s=_number(config.get("session_timeout_s"), "session_timeout_s", DEFAULT_SESSION_TIMEOUT_S,
                                  minimum=1),
    )


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class AppCertificate:
    """An application instance certificate and its key, as stored on disk."""

    cert_der: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    cert_path: Path          # DER copy, for an admin to put in a server's trust list
    thumbprint: str          # SHA-1 of the DER certificate, lowercase hex
    not_valid_after: datetime


_cert_cache: dict[tuple[Path, str, str], AppCertificate] = {}


def ensure_app_certificate(directory: Path, *, stem: str, application_uri: str, common_name: str,
                           server: bool = False, hostnames: Iterable[str] = ()) -> AppCertificate:
    """Load ``<stem>.pem`` (key + certificate) from ``directory``, generating it once.

    The pair lives in one file created with an exclusive link, so two processes starting
    together cannot end up with a key from one and a certificate from the other; the loser
    simply reads the winner's file. A certificate that expires within a day or lacks the
    application URI in its subjectAltName is replaced.
    """
    directory = Path(directory)
    key = (directory.resolve(), stem, application_uri)
    cached = _cert_cache.get(key)
    if cached and cached.not_valid_after - timedelta(days=1) > datetime.now(timezone.utc) \
            and (directory / f"{stem}.pem").exists():
        return cached
    directory.mkdir(parents=True, exist_ok=True)
    bundle = directory / f"{stem}.pem"
    loaded = _load_bundle(bundle, application_uri)
    if loaded is None:
        pem = _generate_bundle(application_uri, common_name, server=server, hostnames=hostnames)
        _publish_bundle(bundle, pem, replace=bundle.exists())
        loaded = _load_bundle(bundle, application_uri)
        if loaded is None:  # pragma: no cover - only if the file system lies to us
            raise ConnectorError("Could not create the OPC-UA application certificate.", code="server_error")
        log.info("opcua.certificate_created", extra={"stem": stem, "thumbprint": loaded[2]})
    cert_der, key_pem, thumbprint, not_after = loaded
    der_path = directory / f"{stem}_cert.der"
    if not der_path.exists() or der_path.read_bytes() != cert_der:
        _atomic_write(der_path, cert_der, mode=0o644)
    result = AppCertificate(cert_der=cert_der, key_pem=key_pem, cert_path=der_path,
                            thumbprint=thumbprint, not_valid_after=not_after)
    _cert_cache[key] = result
    return result


def _load_bundle(path: Path, application_uri: str) -> tuple[bytes, bytes, str, datetime] | None:
    try:
        data = path.read_bytes()
        private_key = serialization.load_pem_private_key(data, password=None)
        cert = x509.load_pem_x509_certificate(data[data.index(b"-----BEGIN CERTIFICATE-----"):])
    except (OSError, ValueError):
        return None
    if cert.not_valid_after_utc - timedelta(days=1) < datetime.now(timezone.utc):
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    if application_uri not in san.value.get_values_for_type(x509.UniformResourceIdentifier):
        return None
    key_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    der = cert.public_bytes(serialization.Encoding.DER)
    return der, key_pem, hashlib.sha1(der).hexdigest(), cert.not_valid_after_utc  # noqa: S324 - thumbprint, not security


def _generate_bundle(application_uri: str, common_name: str, *, server: bool, hostnames: Iterable[str]) -> bytes:
    private_key = cert_gen.generate_private_key()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in dict.fromkeys([socket.gethostname(), "localhost", *hostnames]):
        if host:
            names.append(x509.DNSName(host))
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usage.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    cert = cert_gen.generate_self_signed_app_certificate(
        private_key, common_name, {"organizationName": "OPTRIA"}, names, extended=usage,
        days=CERT_VALIDITY_DAYS)
    return cert_gen.dump_private_key_as_pem(private_key) + cert.public_bytes(serialization.Encoding.PEM)


def _atomic_write(path: Path, data: bytes, *, mode: int) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def _publish_bundle(path: Path, pem: bytes, *, replace: bool) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
        os.close(fd)
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # fails if another process published first: keep theirs
        except FileExistsError:
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def ensure_client_certificate(pki_dir: Path) -> AppCertificate:
    """The platform's OPC-UA client certificate under ``pki_dir`` (created on first use)."""
    return ensure_app_certificate(Path(pki_dir), stem="client", application_uri=CLIENT_APPLICATION_URI,
                                  common_name=CLIENT_NAME)


def client_certificate_thumbprint(pki_dir: Path) -> str:
    """SHA-1 thumbprint (hex) of the client certificate, for server admins to trust it."""
    return ensure_client_certificate(pki_dir).thumbprint


# --------------------------------------------------------------------------- sessions


def _first_cert(der: bytes) -> bytes:
    """Servers may send a chain; the first DER SEQUENCE is their own certificate."""
    if len(der) > 4 and der[0] == 0x30 and der[1] == 0x82:
        return der[: int.from_bytes(der[2:4], "big") + 4]
    return der


def _offered(endpoints: Sequence[ua.EndpointDescription]) -> list[str]:
    return sorted({f"{_POLICY_BY_URI.get(ep.SecurityPolicyUri, ep.SecurityPolicyUri.rsplit('#', 1)[-1])}/"
                   f"{_MODE_NAMES.get(ep.SecurityMode, str(ep.SecurityMode))}" for ep in endpoints})


# asyncua probes a connected server every watchdog interval and drops the session when the probe
# takes longer than that interval: at its default (1 s) a busy event loop (a large HistoryRead being
# decoded) turns into "connection lost" and a reconnect loop. Sessions are watched by publish
# keep-alives as well (ingest.workers.opcua), so a slower probe loses nothing.
WATCHDOG_INTERVAL_S = 5.0


def _new_client(cfg: OpcUaConfig) -> Client:
    client = Client(cfg.endpoint_url, timeout=cfg.timeout_s, watchdog_intervall=WATCHDOG_INTERVAL_S)
    client.application_uri = CLIENT_APPLICATION_URI
    client.product_uri = CLIENT_PRODUCT_URI
    client.name = client.description = CLIENT_NAME
    client.session_timeout = int(cfg.session_timeout_s * 1000)
    return client


async def _apply_security(client: Client, cfg: OpcUaConfig, pki_dir: Path) -> dict[str, Any]:
    """Pick the configured endpoint from the server's list and load our certificate."""
    if not cfg.secure:
        return {}
    cert = await _client_certificate(pki_dir)
    endpoints = await client.connect_and_get_server_endpoints()
    wanted_uri, wanted_mode = _POLICY_CLASSES[cfg.security_policy].URI, _MODES[cfg.security_mode]
    match = next((ep for ep in endpoints if ep.SecurityPolicyUri == wanted_uri
                  and ep.SecurityMode == wanted_mode), None)
    if match is None:
        offered = _offered(endpoints)
        raise ConnectorError(
            f"The server does not offer {cfg.security_policy}/{cfg.security_mode}; it offers "
            f"{', '.join(offered) or 'nothing'}.", code="security_policy_not_offered")
    server_der = _first_cert(match.ServerCertificate or b"")
    await client.set_security(
        _POLICY_CLASSES[cfg.security_policy], certificate=uacrypto.CertProperties(cert.cert_der, "der"),
        private_key=uacrypto.CertProperties(cert.key_pem, "pem"),
        server_certificate=uacrypto.CertProperties(server_der, "der"), mode=wanted_mode)
    return {"client_certificate_thumbprint": cert.thumbprint,
            "server_certificate_thumbprint": hashlib.sha1(server_der).hexdigest() if server_der else None}  # noqa: S324


async def _client_certificate(pki_dir: Path) -> AppCertificate:
    try:
        return await asyncio.to_thread(ensure_client_certificate, pki_dir)
    except OSError as exc:
        raise ConnectorError(f"Cannot create or read the client certificate under {pki_dir} "
                             f"({exc.strerror or type(exc).__name__}).", code="invalid_config") from None


async def _cancel_client_tasks(client: Client) -> None:
    """Cancel the background tasks asyncua may leave behind: its publish loop survives a
    close_session() after the connection already dropped, retrying once a second."""
    session = getattr(client.uaclient, "session", None)
    tasks = [getattr(client, name, None) for name in ("_stale_watchdog_task", "_supervisor_task",
                                                      "_renew_channel_task")]
    tasks.append(getattr(session, "_publish_task", None))
    for task in tasks:
        if isinstance(task, asyncio.Task) and not task.done() and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def _abort(client: Client) -> None:
    """Tear a client down without talking to the server (it may be the thing that hangs)."""
    with contextlib.suppress(Exception):
        client.uaclient.request_disconnect()
    await _cancel_client_tasks(client)
    with contextlib.suppress(Exception):
        client.disconnect_socket()


async def _close(client: Client) -> None:
    """Close the session politely, but never wait long for a server that stopped answering."""
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT_S):
            await client.disconnect()
    except BaseException:  # noqa: BLE001 - a failed close must not hide the caller's result
        await _abort(client)
    else:
        await _cancel_client_tasks(client)


async def _connect(cfg: OpcUaConfig, pki_dir: Path) -> tuple[Client, dict[str, Any]]:
    client = _new_client(cfg)
    try:
        facts = await _apply_security(client, cfg, pki_dir)
        if cfg.auth_type == "username" and cfg.username:
            client.set_user(cfg.username)
            client.set_password(cfg.password.get_secret_value() if cfg.password else "")
        await client.connect()
    except BaseException:
        await _abort(client)
        raise
    return client, facts


@contextlib.asynccontextmanager
async def open_client(config: Mapping[str, Any] | OpcUaConfig, pki_dir: Path, *,
                      connect_timeout: float | None = None) -> AsyncIterator[Client]:
    """A freshly connected asyncua Client (new socket, channel and session), closed on exit.

    ``config`` is the output of ``merge_config``. Connecting is bounded by
    ``connect_timeout`` (default: the config's ``timeout_s``); each later request by
    ``timeout_s``. Connection failures raise ConnectorError with a reason ``code``.
    """
    cfg = parse_config(config)
    limit = connect_timeout or cfg.timeout_s
    try:
        async with asyncio.timeout(limit):
            client, _facts = await _connect(cfg, pki_dir)
    except Exception as exc:
        reason, message = classify_error(exc, cfg, limit)
        raise ConnectorError(message, code=reason) from None
    try:
        yield client
    finally:
        # Also when cancelled (a worker stopped or restarted): end the session politely so the
        # server does not keep it, and its monitored items, until the session timeout. Bounded
        # by _close's own timeout; a second cancellation falls back to tearing the socket down.
        try:
            await asyncio.shield(_close(client))
        except asyncio.CancelledError:
            await _abort(client)
            raise


# --------------------------------------------------------------------------- errors


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) and isinstance(exc, ua.UaStatusCodeError) else None


def _scrub(text: str, cfg: OpcUaConfig | None) -> str:
    if cfg and cfg.password and cfg.password.get_secret_value():
        text = text.replace(cfg.password.get_secret_value(), "***")
    return text[:200]


def classify_error(exc: BaseException, cfg: OpcUaConfig | None = None,
                   timeout: float | None = None) -> tuple[str, str]:
    """Map an exception from connecting/reading to (reason code, short safe message)."""
    where = cfg.endpoint_host if cfg else "the server"
    if isinstance(exc, ConnectorError):
        return exc.code, exc.message
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        limit = f" within {timeout:g} s" if timeout else ""
        return "timeout", f"The server at {where} did not answer{limit}."
    if isinstance(exc, socket.gaierror):
        host = cfg.host if cfg else "the host"
        return "dns_failure", f"The host name {host} could not be resolved (DNS)."
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused", f"Connection refused by {where}: no OPC-UA server is listening there."
    code = _status_code(exc)
    if code is not None:
        name = ua.StatusCode(code).name
        if code in _CERT_CODES:
            return "certificate_rejected", (f"The server rejected our client certificate ({name}); ask its "
                                            "administrator to trust the OPTRIA IQ certificate.")
        if code == ua.StatusCodes.BadIdentityTokenRejected:
            return "bad_credentials", f"The server does not accept this kind of login ({name})."
        if code in _CREDENTIAL_CODES:
            return "bad_credentials", f"The server rejected the username or password ({name})."
        if code in _POLICY_CODES:
            return "security_policy_not_offered", f"The server rejected the security settings ({name})."
        if code == ua.StatusCodes.BadTimeout:
            return "timeout", f"The server at {where} did not answer in time ({name})."
        return "server_error", f"The server returned an error: {name}."
    if isinstance(exc, ua.UaError) and "No matching endpoints" in str(exc):
        return "security_policy_not_offered", "The server does not offer the requested security policy and mode."
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return "connection_failed", f"The network path to {where} is unreachable."
    if isinstance(exc, (ConnectionError, EOFError, asyncio.IncompleteReadError)):
        return "server_error", f"The server at {where} closed the connection unexpectedly."
    if isinstance(exc, OSError):
        return "connection_failed", f"Could not connect to {where} ({_scrub(exc.strerror or type(exc).__name__, cfg)})."
    return "server_error", f"Unexpected error talking to {where}: {type(exc).__name__}: {_scrub(str(exc), cfg)}"


# --------------------------------------------------------------------------- connection test


_STATUS_NODES = {
    "server_product": ua.ObjectIds.Server_ServerStatus_BuildInfo_ProductName,
    "server_version": ua.ObjectIds.Server_ServerStatus_BuildInfo_SoftwareVersion,
    "server_manufacturer": ua.ObjectIds.Server_ServerStatus_BuildInfo_ManufacturerName,
    "server_state": ua.ObjectIds.Server_ServerStatus_State,
    "namespaces": ua.ObjectIds.Server_NamespaceArray,
}


async def _read_server_facts(client: Client) -> dict[str, Any]:
    values = await _read_values(client, [ua.NodeId(i) for i in _STATUS_NODES.values()], ua.AttributeIds.Value)
    facts: dict[str, Any] = {}
    for key, dv in zip(_STATUS_NODES, values, strict=True):
        value = dv.Value.Value if dv.Value is not None and dv.StatusCode.is_good() else None
        if key == "server_state" and isinstance(value, int):
            try:
                value = ua.ServerState(value).name
            except ValueError:
                value = str(value)
        facts[key] = list(value) if key == "namespaces" and value is not None else value
    return facts


async def test_connection(config: Mapping[str, Any] | OpcUaConfig, pki_dir: Path, *,
                          timeout: float | None = None) -> TestResult:
    """Open a real (secure when configured) session, read ServerStatus and the NamespaceArray,
    close it, and report what happened. Bounded by ``timeout`` (default: timeout_s)."""
    started = time.perf_counter()
    try:
        cfg = parse_config(config)
    except ConnectorError as exc:
        log.info("opcua.test_failed", extra={"reason": exc.code})
        return TestResult(success=False, message=exc.message, details={"reason": exc.code})
    limit = timeout or cfg.timeout_s
    details: dict[str, Any] = {"endpoint_host": cfg.endpoint_host, "security_policy": cfg.security_policy,
                               "security_mode": cfg.security_mode, "auth_type": cfg.auth_type}
    try:
        async with asyncio.timeout(limit):
            if cfg.secure:  # known up front, so a "certificate rejected" result can show it
                details["client_certificate_thumbprint"] = (await _client_certificate(pki_dir)).thumbprint
            client, facts = await _connect(cfg, pki_dir)
            details["connect_ms"] = round((time.perf_counter() - started) * 1000, 1)
            details.update(facts)
            try:
                t0 = time.perf_counter()
                details.update(await _read_server_facts(client))
                details["round_trip_ms"] = round((time.perf_counter() - t0) * 1000, 2)
            except BaseException:
                await _abort(client)
                raise
            await _close(client)
    except Exception as exc:
        reason, message = classify_error(exc, cfg, limit)
        details.update(reason=reason, elapsed_ms=round((time.perf_counter() - started) * 1000, 1))
        log.warning("opcua.test_failed", extra={"endpoint_host": cfg.endpoint_host, "reason": reason,
                                                "elapsed_ms": details["elapsed_ms"]})
        return TestResult(success=False, message=message, details=details)
    details["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 1)
    product = details.get("server_product") or "OPC-UA server"
    version = f" {details['server_version']}" if details.get("server_version") else ""
    log.info("opcua.test_ok", extra={"endpoint_host": cfg.endpoint_host, "round_trip_ms": details["round_trip_ms"],
                                     "security_policy": cfg.security_policy, "security_mode": cfg.security_mode})
    details["msg"] = test_message("connected_opcua", product=f"{product}{version}", host=cfg.endpoint_host,
                                  policy=cfg.security_policy, mode=cfg.security_mode, ms=details["round_trip_ms"])
    return TestResult(success=True, message=(
        f"Connected to {product}{version} at {cfg.endpoint_host} ({cfg.security_policy}/{cfg.security_mode}); "
        f"round trip {details['round_trip_ms']:.0f} ms."), details=details)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


# --------------------------------------------------------------------------- reads and browse


def _parse_node_id(text: str) -> ua.NodeId:
    try:
        return ua.NodeId.from_string(text.strip())
    except (ValueError, AttributeError, TypeError, ua.UaError):
        raise ConnectorError(f"{text!r} is not a valid NodeId (expected e.g. ns=2;s=Name or i=85).",
                             code="invalid_node_id") from None


async def _read_values(client: Client, node_ids: Sequence[ua.NodeId], attribute: ua.AttributeIds,
                       timestamps: ua.TimestampsToReturn = ua.TimestampsToReturn.Neither) -> list[ua.DataValue]:
    """Batched Read service call that returns per-node DataValues (bad statuses included)."""
    results: list[ua.DataValue] = []
    for start in range(0, len(node_ids), _READ_CHUNK):
        params = ua.ReadParameters()
        params.TimestampsToReturn = timestamps
        for nid in node_ids[start:start + _READ_CHUNK]:
            rv = ua.ReadValueId()
            rv.NodeId, rv.AttributeId = nid, attribute
            params.NodesToRead.append(rv)
        results.extend(await client.uaclient.read(params))
    return results


def _quality(status: ua.StatusCode) -> str:
    if status.is_good():
        return "good"
    if status.is_uncertain():
        return "questionable"
    return "bad"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _number_or_state(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool):
        return (1.0 if value else 0.0), None
    if isinstance(value, (int, float)):
        return float(value), None
    if value is None:
        return None, None
    if isinstance(value, ua.LocalizedText):
        return None, value.Text
    return None, str(value)[:200]


def _sample(signal_id: str, dv: ua.DataValue) -> Sample:
    status = dv.StatusCode or ua.StatusCode()
    quality = _quality(status)
    raw = dv.Value.Value if dv.Value is not None else None
    value, state = _number_or_state(raw) if quality != "bad" else (None, None)
    when = _utc(dv.SourceTimestamp) or _utc(dv.ServerTimestamp) or datetime.now(timezone.utc)
    return Sample(signal_id=signal_id, time=when, value=value, quality=quality, state=state,
                  error=None if status.is_good() else status.name)


async def read_current(config: Mapping[str, Any] | OpcUaConfig, pki_dir: Path,
                       node_ids: list[str]) -> list[Sample]:
    """Read the current value of each node (one batched Read), keeping the input order.

    Quality: Good → "good", Uncertain → "questionable", Bad → "bad" (value None, the
    status name in ``error``). Time is the source timestamp, else the server's.
    """
    parsed = [_parse_node_id(n) for n in node_ids]
    if not parsed:
        return []
    async with open_client(config, pki_dir) as client:
        values = await _read_values(client, parsed, ua.AttributeIds.Value, ua.TimestampsToReturn.Both)
    return [_sample(text, dv) for text, dv in zip(node_ids, values, strict=True)]


# A node's own HistoryRead status that means "this node keeps no history here": its read is over.
NO_HISTORY_CODES = frozenset({
    ua.StatusCodes.BadHistoryOperationUnsupported, ua.StatusCodes.BadHistoryOperationInvalid,
    ua.StatusCodes.BadNodeIdUnknown, ua.StatusCodes.BadNodeIdInvalid, ua.StatusCodes.BadNotReadable,
    ua.StatusCodes.BadUserAccessDenied, ua.StatusCodes.BadAttributeIdInvalid, ua.StatusCodes.BadNotSupported,
    ua.StatusCodes.BadDataUnavailable, ua.StatusCodes.BadNoData,
})
# The same for the whole service: the server keeps no history at all.
NO_HISTORY_SERVICE = frozenset({ua.StatusCodes.BadHistoryOperationUnsupported, ua.StatusCodes.BadServiceUnsupported,
                                ua.StatusCodes.BadNotSupported, ua.StatusCodes.BadNotImplemented})


class HistoryPage(NamedTuple):
    """One node's part of a HistoryRead response."""
    node_id: str
    samples: list[Sample]    # oldest first
    done: bool               # nothing more in the window (or the node keeps no history)
    error: str | None        # a bad status that does not mean "no history": read this node again later
    more: bool = False       # a continuation point: this read's next page of the node follows


async def iter_history(client: Client, node_ids: Sequence[str], start: datetime, end: datetime, *,
                       nodes_per_call: int = 50, values_per_node: int = 500):
    """Raw history between ``start`` and ``end`` (inclusive), page by page: yields, per call, a list
    of :class:`HistoryPage` — following continuation points until each node is done or failed.

    Small pages keep each response (and its decoding) short, so a long gap never stalls the
    caller's event loop nor makes the server's answer outlast the session's keep-alive.
    Service-level failures raise as they are (``NO_HISTORY_SERVICE`` codes mean the server keeps no
    history at all); a node whose status is in ``NO_HISTORY_CODES`` is done; any other bad node
    status (a lost continuation point, a busy server) comes back as the page's ``error``. A node
    that is neither done nor failed after its last page is read again from its last timestamp.
    """
    details = ua.ReadRawModifiedDetails()
    details.IsReadModified = False
    details.StartTime, details.EndTime = _utc(start), _utc(end)
    details.NumValuesPerNode = values_per_node
    details.ReturnBounds = False
    for first in range(0, len(node_ids), nodes_per_call):
        pending: dict[int, bytes | None] = {i: None for i in range(first, min(len(node_ids), first + nodes_per_call))}
        parsed = {i: _parse_node_id(node_ids[i]) for i in pending}
        while pending:
            batch = list(pending.items())
            params = ua.HistoryReadParameters()
            params.HistoryReadDetails = details
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            params.ReleaseContinuationPoints = False
            for index, cont in batch:
                rv = ua.HistoryReadValueId()
                rv.NodeId, rv.ContinuationPoint = parsed[index], cont
                params.NodesToRead.append(rv)
            results = await client.uaclient.history_read(params)
            page = []
            for (index, _), result in zip(batch, results, strict=True):
                data = getattr(result.HistoryData, "DataValues", None) or []
                status = result.StatusCode
                error = None
                if status.is_bad() and status.value not in NO_HISTORY_CODES:
                    error = status.name
                more = bool(result.ContinuationPoint) and not status.is_bad()
                if more:
                    pending[index] = result.ContinuationPoint
                else:
                    pending.pop(index)
                # a full page without a continuation point (asyncua's own servers answer so) may not be
                # the end: not done, the caller reads on from its last timestamp
                full = not more and values_per_node and len(data) >= values_per_node
                page.append(HistoryPage(node_ids[index], [_sample(node_ids[index], dv) for dv in data],
                                        not more and not full and error is None, error, more))
            yield page


_HIERARCHICAL = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
_HAS_PROPERTY = ua.NodeId(ua.ObjectIds.HasProperty)


async def _browse_children(client: Client, parents: Sequence[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    """Forward hierarchical references (properties included) of many nodes, all pages."""
    results: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(parents), _BROWSE_CHUNK):
        params = ua.BrowseParameters()
        params.RequestedMaxReferencesPerNode = 1000
        for nid in parents[start:start + _BROWSE_CHUNK]:
            desc = ua.BrowseDescription()
            desc.NodeId, desc.BrowseDirection = nid, ua.BrowseDirection.Forward
            desc.ReferenceTypeId, desc.IncludeSubtypes = _HIERARCHICAL, True
            desc.NodeClassMask = int(ua.NodeClass.Object) | int(ua.NodeClass.Variable)
            desc.ResultMask = int(ua.BrowseResultMask.All)
            params.NodesToBrowse.append(desc)
        chunk = await client.uaclient.browse(params)
        for res in chunk:
            refs = list(res.References)
            cont = res.ContinuationPoint
            while cont:
                nxt = ua.BrowseNextParameters()
                nxt.ContinuationPoints = [cont]
                page = (await client.uaclient.browse_next(nxt))[0]
                refs.extend(page.References)
                cont = page.ContinuationPoint
            results.append(refs)
    return results


async def _data_type_names(client: Client, type_ids: Iterable[ua.NodeId]) -> dict[ua.NodeId, str]:
    names: dict[ua.NodeId, str] = {}
    custom = []
    for tid in set(type_ids):
        if tid.NamespaceIndex == 0 and isinstance(tid.Identifier, int) and tid.Identifier in ua.ObjectIdNames:
            names[tid] = ua.ObjectIdNames[tid.Identifier]
        else:
            custom.append(tid)
    for tid, dv in zip(custom, await _read_values(client, custom, ua.AttributeIds.BrowseName), strict=True):
        names[tid] = dv.Value.Value.Name if dv.StatusCode.is_good() and dv.Value.Value else tid.to_string()
    return names


async def _check_exists(client: Client, nid: ua.NodeId, text: str) -> None:
    dv = (await _read_values(client, [nid], ua.AttributeIds.NodeClass))[0]
    if not dv.StatusCode.is_good():
        raise ConnectorError(f"Node {text} does not exist on the server ({dv.StatusCode.name}).",
                             code="node_not_found")


async def browse(config: Mapping[str, Any] | OpcUaConfig, pki_dir: Path, node_id: str | None = None,
                 depth: int = 1, max_items: int = 500) -> list[BrowseItem]:
    """Walk ``depth`` levels below ``node_id`` (default: the Objects folder), breadth first,
    returning at most ``max_items`` items. Properties (EngineeringUnits, EURange…) are not
    listed as items; a variable's EngineeringUnits fills its ``eng_unit``. Each item's
    ``path`` is the BrowseName path from the start node."""
    start = _parse_node_id(node_id) if node_id else ua.NodeId(ua.ObjectIds.ObjectsFolder)
    depth, max_items = max(1, min(int(depth), 10)), max(1, min(int(max_items), 20_000))
    async with open_client(config, pki_dir) as client:
        await _check_exists(client, start, node_id or "Objects")
        items: list[BrowseItem] = []
        frontier: list[tuple[str, list[ua.ReferenceDescription]]] = [
            ("", (await _browse_children(client, [start]))[0])]
        for level in range(depth):
            refs = [(prefix, r) for prefix, children in frontier for r in children
                    if r.ReferenceTypeId != _HAS_PROPERTY]
            refs = refs[: max_items - len(items)]
            if not refs:
                break
            grand = await _browse_children(client, [r.NodeId for _, r in refs])
            level_items = await _describe(client, refs, grand)
            items.extend(level_items)
            if len(items) >= max_items or level + 1 == depth:
                break
            frontier = [(item.path, kids) for item, kids in zip(level_items, grand, strict=True) if item.has_children]
    log.info("opcua.browse", extra={"node": node_id or "Objects", "depth": depth, "items": len(items)})
    return items


async def _describe(client: Client, refs: Sequence[tuple[str, ua.ReferenceDescription]],
                    children: Sequence[Sequence[ua.ReferenceDescription]]) -> list[BrowseItem]:
    """Turn references into BrowseItems with data type, unit and description (batched reads)."""
    variables = [i for i, (_, r) in enumerate(refs) if r.NodeClass == ua.NodeClass.Variable]
    eu_nodes = {i: next((c.NodeId for c in children[i] if c.BrowseName.Name == "EngineeringUnits"), None)
                for i in variables}
    wanted_eu = [(i, nid) for i, nid in eu_nodes.items() if nid is not None]
    type_dvs = await _read_values(client, [refs[i][1].NodeId for i in variables], ua.AttributeIds.DataType)
    eu_dvs = await _read_values(client, [nid for _, nid in wanted_eu], ua.AttributeIds.Value)
    desc_dvs = await _read_values(client, [r.NodeId for _, r in refs], ua.AttributeIds.Description)
    type_ids = {i: dv.Value.Value for i, dv in zip(variables, type_dvs, strict=True)
                if dv.StatusCode.is_good() and isinstance(dv.Value.Value, ua.NodeId)}
    names = await _data_type_names(client, type_ids.values())
    units: dict[int, str] = {}
    for (i, _), dv in zip(wanted_eu, eu_dvs, strict=True):
        eu = dv.Value.Value if dv.StatusCode.is_good() and dv.Value is not None else None
        text = getattr(getattr(eu, "DisplayName", None), "Text", None)
        if text:
            units[i] = text
    items = []
    for i, ((prefix, ref), kids) in enumerate(zip(refs, children, strict=True)):
        desc = desc_dvs[i].Value.Value if desc_dvs[i].StatusCode.is_good() and desc_dvs[i].Value else None
        name = ref.BrowseName.Name
        items.append(BrowseItem(
            id=ref.NodeId.to_string(),
            name=name,
            display_name=ref.DisplayName.Text or name,
            path=f"{prefix}/{name}" if prefix else name,
            has_children=any(k.ReferenceTypeId != _HAS_PROPERTY for k in kids),
            is_signal=ref.NodeClass == ua.NodeClass.Variable,
            data_type=names.get(type_ids[i]) if i in type_ids else None,
            eng_unit=units.get(i),
            description=(desc.Text or None) if isinstance(desc, ua.LocalizedText) else None,
        ))
    return items
