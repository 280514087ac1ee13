"""AVEVA (OSIsoft) PI Web API connector: connection test, point search, current and recorded values.

Configuration (an integration's ``config`` dict, normalised by :func:`merge_config`):

- ``base_url``: e.g. ``https://pi.example.com/piwebapi``. Precedence: the integration's own
  non-blank value, else the environment (``PI_BASE_URL`` via Settings), else none. User info in
  the URL (``https://user:pw@host/...``) is removed from the address and used as Basic
  credentials only when ``username`` is not set.
- ``auth_type``: ``anonymous`` or ``basic``; absent means ``basic`` when a username is set.
- ``username`` / ``password``: Basic credentials. The password is a secret: never logged,
  never in messages or details.
- ``verify_tls``: default True. False is an explicit per-integration opt-out for servers with
  self-signed certificates.
- ``timeout_s``: default 10 (clamped to 0.5-120); bounds every request and a whole connection test.
- ``data_server``: PI Data Archive name; default: the first one PI Web API lists.
- ``poll_interval_s``: default 5 (clamped to 0.5-3600); read by the ingest worker, not here.

Every failure is a :class:`PiError` (a ``ConnectorError``) whose ``code`` says what went wrong:
``no_endpoint``, ``invalid_endpoint``, ``invalid_config``, ``dns_failure``,
``connection_refused``, ``connection_failed``, ``timeout``, ``tls_error``, ``unauthorized``,
``not_pi_web_api``, ``server_error``, ``not_found``, ``bad_request``, ``data_server_not_found``.
:func:`test_connection` turns them into a ``TestResult`` with ``details["reason"]`` = code.

WebIds are opaque: they are passed back to the server untouched and never decoded.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec
from yarl import URL

from optria.connectors.base import BrowseItem, ConnectorError, Sample, TestResult, test_message

log = logging.getLogger("optria.connectors.pi")

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_POLL_INTERVAL_S = 5.0
STREAMSET_BATCH = 100          # WebIds per streamsets call: keeps URLs well under IIS limits
MAX_RECORDED_PAGES = 10_000    # per stream and call: a guard, not a limit anyone should reach
USER_AGENT = "OPTRIA-IQ PI connector"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FALSE = {"0", "false", "no", "off", ""}


class PiError(ConnectorError):
    """A PI failure with a safe message, a reason ``code``, the HTTP status if any, safe details."""

    def __init__(self, message: str, *, code: str, status: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.details = details or {}


# ---------------------------------------------------------------------------------------------
# Configuration


def merge_config(config: Mapping[str, Any] | None, settings: Any | None = None) -> dict[str, Any]:
    """The integration config with defaults applied; idempotent, so the result can be merged again.

    ``settings`` (``optria.config.Settings`` or None) supplies ``pi_base_url`` only when the
    integration's ``base_url`` is absent or blank. The result holds the password: never log it
    (use :func:`public_config`).
    """
    cfg = dict(config or {})
    base_url = _clean(cfg.get("base_url"))
    source = (cfg.get("base_url_source") or "integration") if base_url else None
    if not base_url and settings is not None:
        base_url = _clean(getattr(settings, "pi_base_url", None))
        source = "environment" if base_url else None
    username, password = _clean(cfg.get("username")), _secret(cfg.get("password"))
    base_url, url_user, url_password = _split_userinfo(base_url)
    if not username and url_user:
        username, password = url_user, url_password
    auth_type = (_clean(cfg.get("auth_type")) or ("basic" if username else "anonymous")).lower()
    return {
        "base_url": base_url,
        "base_url_source": source,
        "auth_type": auth_type,
        "username": username,
        "password": password,
        "verify_tls": _flag(cfg.get("verify_tls"), default=True),
        "timeout_s": _bounded(cfg.get("timeout_s"), DEFAULT_TIMEOUT_S, 0.5, 120.0),
        "data_server": _clean(cfg.get("data_server")),
        "poll_interval_s": _bounded(cfg.get("poll_interval_s"), DEFAULT_POLL_INTERVAL_S, 0.5, 3600.0),
    }


def public_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The merged config safe to show or log: the password replaced by whether one is set."""
    cfg = merge_config(config)
    cfg["password_set"] = bool(cfg.pop("password"))
    return cfg


def _clean(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _secret(value: Any) -> str | None:
    if value is not None and hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return value if isinstance(value, str) and value != "" else None


def _flag(value: Any, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return bool(value)


def _bounded(value: Any, default: float, low: float, high: float) -> float:
    try:
        number = float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        number = default
    return min(max(number, low), high)


def _split_userinfo(base_url: str | None) -> tuple[str | None, str | None, str | None]:
    """Remove user info from the address (it must never be displayed) and return it separately."""
    if not base_url:
        return None, None, None
    try:
        url = URL(base_url)
    except (ValueError, TypeError):
        return base_url, None, None
    if url.user is None and url.password is None:
        return base_url.rstrip("/"), None, None
    return str(url.with_user(None)).rstrip("/"), url.user, url.password


def display_url(base_url: str | None) -> str | None:
    """The address as it may be shown: no user info, no query string."""
    if not base_url:
        return None
    try:
        url = URL(base_url)
        return str((url.with_user(None) if url.is_absolute() else url).with_query(None))
    except (ValueError, TypeError):
        return "<invalid address>"


def endpoint_problem(cfg: Mapping[str, Any]) -> PiError | None:
    """Why this merged config cannot be used at all, before any network traffic."""
    base_url = cfg.get("base_url")
    if not base_url:
        return PiError("No PI Web API address is configured: set the integration's base URL "
                       "or PI_BASE_URL.", code="no_endpoint")
    try:
        url = URL(base_url)
    except (ValueError, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        return PiError("The PI Web API address is malformed; expected e.g. https://pi-server/piwebapi.",
                       code="invalid_endpoint")
    if cfg.get("auth_type") not in ("anonymous", "basic"):
        return PiError(f"Unsupported auth_type {cfg.get('auth_type')!r}; use 'anonymous' or 'basic'.",
                       code="invalid_config")
    if cfg.get("auth_type") == "basic" and not cfg.get("username"):
        return PiError("Basic authentication needs a username.", code="invalid_config")
    return None


# ---------------------------------------------------------------------------------------------
# Timestamps


_TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$", re.IGNORECASE)


def pi_ticks(text: str) -> int:
    """A PI timestamp as 100 ns ticks since the Unix epoch: exact, unlike ``datetime``.

    PI sends up to seven fractional digits ("2026-11-25T09:30:01.1234567Z"), which
    ``datetime.fromisoformat`` in Python 3.11 refuses; digits past the seventh are dropped.
    """
    m = _TS_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a PI timestamp: {text!r}")
    offset = timedelta(0)
    if m[8] and m[8].upper() != "Z":
        digits = m[8][1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        offset = -offset if m[8][0] == "-" else offset
    whole = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                     tzinfo=timezone(offset))
    seconds = (whole - _EPOCH) // timedelta(seconds=1)
    return seconds * 10_000_000 + int((m[7] or "0")[:7].ljust(7, "0"))


def parse_pi_time(text: str) -> datetime:
    """A PI timestamp as an aware UTC datetime, truncated to microseconds (order-preserving)."""
    return _EPOCH + timedelta(microseconds=pi_ticks(text) // 10)


_SECONDS: dict[str, tuple[int, datetime]] = {}   # "YYYY-MM-DDTHH:MM:SS" → (Unix seconds, as a datetime)
_SECONDS_KEPT = 4096
_FRACTIONS: dict[str, tuple[int, timedelta]] = {}  # "1234567" → (ticks, as a timedelta of whole microseconds)
_FRACTIONS_KEPT = 65536


def pi_stamp(text: str) -> tuple[int, datetime]:
    """``(pi_ticks(text), parse_pi_time(text))`` at a fraction of the cost for PI's usual shape
    ("2026-11-25T09:30:01.1234567Z"): the whole seconds of recent stamps are kept, so a page of
    values costs a dictionary look-up and an integer each instead of a regex and a date
    computation twice (the recorded read of a busy server parses tens of thousands a second)."""
    n = len(text)
    if n >= 20 and text[-1] == "Z" and (n == 20 or text[19] == "."):
        head = text[:19]
        whole = _SECONDS.get(head)
        if whole is None:
            seconds = pi_ticks(head + "Z") // 10_000_000       # validates the date and time
            if len(_SECONDS) >= _SECONDS_KEPT:
                _SECONDS.clear()
            whole = _SECONDS[head] = (seconds, _EPOCH + timedelta(seconds=seconds))
        if n == 20:
            return whole[0] * 10_000_000, whole[1]
        frac = text[20:-1]
        part = _FRACTIONS.get(frac)    # a point's events repeat its phase within the second
        if part is None and frac.isascii() and frac.isdigit():
            ticks = int(frac[:7].ljust(7, "0"))
            if len(_FRACTIONS) >= _FRACTIONS_KEPT:
                _FRACTIONS.clear()
            part = _FRACTIONS[frac] = (ticks, timedelta(microseconds=ticks // 10))
        if part is not None:
            return whole[0] * 10_000_000 + part[0], whole[1] + part[1]
    ticks = pi_ticks(text)
    return ticks, _EPOCH + timedelta(microseconds=ticks // 10)


def format_pi_time(moment: datetime) -> str:
    """A datetime as an ISO string PI accepts; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------------
# Value objects -> Samples


def sample_from_value(web_id: str, obj: Any, *, fallback_time: datetime, moment: datetime | None = None) -> Sample:
    """Map one PI value object (number, digital state, system state, or an error) to a Sample
    (``moment``: its timestamp, when the caller parsed it already)."""
    if not isinstance(obj, dict):
        return _error_sample(web_id, "PI Web API returned no value object.", fallback_time)
    errors = _errors(obj) or (_errors(obj["Value"]) if isinstance(obj.get("Value"), dict) else [])
    if moment is None:
        try:
            moment = parse_pi_time(str(obj.get("Timestamp")))
        except ValueError:
            moment = None
    if errors or moment is None:
        return _error_sample(web_id, "; ".join(errors) or "PI Web API sent an unreadable timestamp.",
                             moment or fallback_time)
    value, state, is_system = _value_and_state(obj.get("Value"))
    return Sample(signal_id=web_id, time=moment, value=None if is_system else value,
                  quality=_quality(obj, is_system), state=state,
                  eng_unit=obj.get("UnitsAbbreviation") or None)


def _value_and_state(raw: Any) -> tuple[float | None, str | None, bool]:
    """(number, state name, is a system state). Digital states carry both a name and a number."""
    if isinstance(raw, dict):
        number = raw.get("Value")
        return (float(number) if _is_number(number) else None, _str_or_none(raw.get("Name")),
                bool(raw.get("IsSystem")))
    if isinstance(raw, bool):
        return float(raw), None, False
    if _is_number(raw):
        return float(raw), None, False
    if isinstance(raw, str):
        return None, raw, False      # PI string points: text, not a number
    return None, None, False


def _quality(obj: Mapping[str, Any], is_system: bool) -> str:
    """Worst first: bad (not Good, or a system state), questionable, substituted, good."""
    if is_system or obj.get("Good") is False:
        return "bad"
    if obj.get("Questionable"):
        return "questionable"
    if obj.get("Substituted"):
        return "substituted"
    return "good"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def _errors(obj: Any) -> list[str]:
    """The ``Errors`` list of a PI object (also the ``WebException`` PI adds for stream faults)."""
    if not isinstance(obj, dict) or ("Errors" not in obj and "WebException" not in obj):
        return []
    errors = [str(e) for e in obj.get("Errors") or []]
    web_exc = obj.get("WebException")
    if isinstance(web_exc, dict):
        errors += [str(e) for e in web_exc.get("Errors") or []] or [f"HTTP {web_exc.get('StatusCode')}"]
    return errors


def _error_sample(web_id: str, message: str, moment: datetime) -> Sample:
    return Sample(signal_id=web_id, time=moment, value=None, quality="bad", error=message)


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _items_by_web_id(requested: Sequence[str], body: Any) -> list[tuple[str, Any]]:
    """Pair each requested WebId with its stream-set item: by WebId, else by position."""
    items = body.get("Items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise PiError("PI Web API answered without an Items list.", code="not_pi_web_api")
    by_id = {item.get("WebId"): item for item in items if isinstance(item, dict) and item.get("WebId")}
    paired = []
    for index, web_id in enumerate(requested):
        item = by_id.get(web_id)
        if item is None and len(items) == len(requested) and isinstance(items[index], dict) \
                and not items[index].get("WebId"):
            item = items[index]
        paired.append((web_id, item))
    return paired


# ---------------------------------------------------------------------------------------------
# The client


class RecordedPage(msgspec.Struct):
    """One answer of a recorded read: values (each stream ascending; an error object met among
    them is a Sample with ``error`` set) and the streams that failed as a whole, with PI's words."""

    samples: list[Sample] = msgspec.field(default_factory=list)
    stream_errors: dict[str, str] = msgspec.field(default_factory=dict)


class PiClient:
    """One PI Web API endpoint with one reusable HTTP session (the ingest worker polls with it).

    Use as ``async with PiClient(config) as client:`` (or call :meth:`close`; an unclosed
    session leaks a connection pool). Not thread-safe; one event loop. The constructor raises
    PiError for a config that cannot work (no/malformed address, basic without username).
    """

    def __init__(self, config: Mapping[str, Any], *, timeout: float | None = None,
                 batch_size: int = STREAMSET_BATCH) -> None:
        self.config = merge_config(config)
        problem = endpoint_problem(self.config)
        if problem is not None:
            raise problem
        self.base_url: str = self.config["base_url"].rstrip("/")
        self.timeout_s = float(timeout or self.config["timeout_s"])
        self.batch_size = max(1, batch_size)
        self._session: aiohttp.ClientSession | None = None
        self._data_servers: list[dict[str, Any]] | None = None

    @property
    def display_url(self) -> str | None:
        return display_url(self.base_url)

    async def __aenter__(self) -> PiClient:
        self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
            if self.config["auth_type"] == "basic":
                token = f"{self.config['username']}:{self.config['password'] or ''}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
            connector = aiohttp.TCPConnector(ssl=None if self.config["verify_tls"] else False, limit=8)
            self._session = aiohttp.ClientSession(
                headers=headers, connector=connector, raise_for_status=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- HTTP --------------------------------------------------------------------------------

    async def request_json(self, method: str, path: str, *, params: Iterable[tuple[str, str]] = (),
                           json_body: Any = None, ok: tuple[int, ...] = (200,),
                           typed: msgspec.json.Decoder | None = None) -> tuple[int, Any]:
        """One request; returns (status, decoded JSON) for an ``ok`` status, raises PiError otherwise.
        With ``typed``, an answer of the decoder's shape comes back decoded by it (see
        ``_RecordedBody``); any other JSON comes back as plain objects.

        Redirects are not followed: the Authorization header must not travel to another host,
        and a redirect means the configured address is not the API's own.
        """
        session = self._open()
        headers = {"X-Requested-With": "XMLHttpRequest"} if method != "GET" else None
        data = msgspec.json.encode(json_body) if json_body is not None else None
        if data is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
        url = f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url
        try:
            async with session.request(method, url, params=list(params), data=data, headers=headers,
                                       allow_redirects=False) as response:
                raw = await response.read()
                status, ctype = response.status, response.headers.get("Content-Type", "")
                location = response.headers.get("Location")
        except (aiohttp.ClientError, asyncio.TimeoutError, ssl.SSLError, OSError) as exc:
            error = self._network_error(exc)
            log.debug("pi.request.failed", extra={"method": method, "path": path, "reason": error.code})
            raise error from None
        log.debug("pi.request", extra={"method": method, "path": path, "status": status})
        if status not in ok:
            raise self._status_error(status, ctype, raw, path, location)
        return status, self._decode(raw, ctype, status, path, typed)

    def _decode(self, raw: bytes, ctype: str, status: int, path: str,
                typed: msgspec.json.Decoder | None = None) -> Any:
        if "json" not in ctype.lower() and raw.lstrip()[:1] not in (b"{", b"["):
            raise PiError(f"The address answered with {_kind(ctype, raw)}, not PI Web API JSON "
                          f"(HTTP {status} for /{path}).", code="not_pi_web_api", status=status,
                          details={"content_type": ctype.split(";")[0]})
        try:
            if typed is not None and raw:
                try:
                    return typed.decode(raw)
                except msgspec.ValidationError:
                    pass        # valid JSON of another shape: read as plain objects, judged by the caller
            return msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            raise PiError(f"The answer to /{path} is not valid JSON.", code="not_pi_web_api",
                          status=status) from None

    def _status_error(self, status: int, ctype: str, raw: bytes, path: str, location: str | None) -> PiError:
        details = {"content_type": ctype.split(";")[0]} if ctype else {}
        server_msg = _first_error(raw, ctype)
        suffix = f": {server_msg}" if server_msg else "."
        if status in (401, 403):
            if status == 401 and self.config["auth_type"] == "anonymous":
                message = "PI Web API requires authentication (HTTP 401); configure a username and password."
            elif status == 401:
                message = "PI Web API rejected the username or password (HTTP 401)."
            else:
                message = f"PI Web API refused access (HTTP 403){suffix}"
            return PiError(message, code="unauthorized", status=status, details=details)
        if status >= 500:
            return PiError(f"PI Web API answered HTTP {status} (server error) for /{path}{suffix}",
                           code="server_error", status=status, details=details)
        if 300 <= status < 400:
            target = display_url(location) if location else "another address"
            return PiError(f"The address redirects (HTTP {status}) to {target}; configure that address.",
                           code="not_pi_web_api", status=status, details=details)
        if status == 404:
            return PiError(f"Not found at PI Web API (HTTP 404) for /{path}{suffix}", code="not_found",
                           status=status, details=details)
        return PiError(f"PI Web API refused the request (HTTP {status}) for /{path}{suffix}",
                       code="bad_request", status=status, details=details)

    def _network_error(self, exc: BaseException) -> PiError:
        """Name the network failure precisely; the message carries the host, never credentials."""
        url = URL(self.base_url)
        where = f"{url.host}:{url.port}"
        os_error = getattr(exc, "os_error", None)
        dns_error = getattr(aiohttp, "ClientConnectorDNSError", socket.gaierror)  # aiohttp < 3.10 lacks it
        if isinstance(exc, dns_error) or isinstance(os_error, socket.gaierror):
            return PiError(f"Cannot resolve the host name {url.host!r}; check the PI Web API address.",
                           code="dns_failure")
        if isinstance(exc, (aiohttp.ClientSSLError, ssl.SSLError)) or isinstance(os_error, ssl.SSLError):
            return PiError(f"TLS handshake with {where} failed ({_tls_reason(exc)}). Install the server's "
                           "CA certificate, or turn off certificate verification for this integration "
                           "if it uses a self-signed certificate.", code="tls_error")
        if isinstance(exc, aiohttp.ClientConnectorError):
            if isinstance(os_error, ConnectionRefusedError):
                return PiError(f"Connection refused by {where}; is PI Web API running and the port open?",
                               code="connection_refused")
            return PiError(f"Cannot connect to {where} ({type(os_error or exc).__name__}).",
                           code="connection_failed")
        if isinstance(exc, asyncio.TimeoutError):
            return PiError(f"No answer from {where} within {self.timeout_s:g} s.", code="timeout")
        if isinstance(exc, aiohttp.InvalidURL):
            return PiError("The PI Web API address is malformed.", code="invalid_endpoint")
        return PiError(f"The connection to {where} failed ({type(exc).__name__}).", code="connection_failed")

    # -- resources ---------------------------------------------------------------------------

    async def system(self) -> dict[str, Any]:
        """``GET /system``; a JSON answer without ProductTitle is not PI Web API."""
        try:
            _, body = await self.request_json("GET", "system")
        except PiError as exc:
            if exc.code in ("not_found", "bad_request"):
                raise PiError(f"No PI Web API at this address (HTTP {exc.status} for /system); the "
                              "address usually ends with /piwebapi.", code="not_pi_web_api",
                              status=exc.status, details=exc.details) from None
            raise
        if not isinstance(body, dict) or "ProductTitle" not in body:
            raise PiError("The address answered JSON that is not PI Web API's (no ProductTitle at /system).",
                          code="not_pi_web_api", status=200)
        return body

    async def data_servers(self) -> list[dict[str, Any]]:
        """``GET /dataservers`` (cached for the life of the client)."""
        if self._data_servers is None:
            _, body = await self.request_json("GET", "dataservers")
            items = body.get("Items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise PiError("PI Web API answered /dataservers without Items.", code="not_pi_web_api")
            self._data_servers = [i for i in items if isinstance(i, dict)]
        return self._data_servers

    async def data_server(self, name: str | None = None) -> dict[str, Any]:
        """The named data server (case-insensitive), else the configured one, else the first."""
        wanted = name or self.config["data_server"]
        servers = await self.data_servers()
        if wanted:
            for server in servers:
                if str(server.get("Name", "")).lower() == wanted.lower():
                    return server
            raise PiError(f"PI Data Archive {wanted!r} is not known to this PI Web API "
                          f"(known: {', '.join(str(s.get('Name')) for s in servers) or 'none'}).",
                          code="data_server_not_found")
        if not servers:
            raise PiError("This PI Web API lists no PI Data Archive.", code="data_server_not_found")
        return servers[0]

    async def search_points(self, name_filter: str = "*", start_index: int = 0, max_count: int = 100,
                            data_server: str | None = None) -> list[BrowseItem]:
        """Points whose name matches ``name_filter`` (PI wildcards ``*``/``?``), one page."""
        server = await self.data_server(data_server)
        params = [("nameFilter", name_filter or "*"), ("startIndex", str(max(0, start_index))),
                  ("maxCount", str(max(1, max_count)))]
        _, body = await self.request_json("GET", f"dataservers/{_segment(server['WebId'])}/points",
                                          params=params)
        items = body.get("Items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise PiError("PI Web API answered the point search without Items.", code="not_pi_web_api")
        return [_browse_item(p) for p in items if isinstance(p, dict) and p.get("WebId")]

    async def read_current(self, web_ids: Sequence[str]) -> list[Sample]:
        """Current values via ``streamsets/value``, one Sample per requested WebId, in order.

        A 207 answer (some WebIds unknown) and error objects inside a 200 become Samples with
        ``error`` set (stamped now); the good ones still come back.
        """
        samples: list[Sample] = []
        for chunk in _chunks(web_ids, self.batch_size):
            _, body = await self.request_json("GET", "streamsets/value", params=[("webId", w) for w in chunk],
                                              ok=(200, 207))
            now = datetime.now(timezone.utc)
            for web_id, item in _items_by_web_id(chunk, body):
                samples.append(_current_sample(web_id, item, now))
        return samples

    async def read_recorded(self, web_ids: Sequence[str], start: datetime, end: datetime,
                            max_count: int = 1000) -> list[Sample]:
        """All recorded values in [start, end] via ``streamsets/recorded``, grouped by WebId in
        request order, each stream ascending. ``max_count`` is the page size: a stream that
        returns a full page is asked again from its last timestamp, the repeated boundary
        value dropped, until the window is exhausted. A stream that fails (unknown WebId, an
        ``Errors`` object) gives one Sample with ``error`` set, stamped at ``end``, after any
        values it did give.
        """
        results: dict[str, list[Sample]] = {w: [] for w in web_ids}
        errors: dict[str, str] = {}
        async for page in self.iter_recorded(list(results), start, end, max_count):
            for sample in page.samples:
                results[sample.signal_id].append(sample)
            errors.update(page.stream_errors)
        for web_id, message in errors.items():
            results[web_id].append(_error_sample(web_id, message, end))
        return [sample for web_id in results for sample in results[web_id]]

    async def iter_recorded(self, web_ids: Sequence[str], start: datetime, end: datetime,
                            max_count: int = 1000) -> AsyncIterator[RecordedPage]:
        """The values of :meth:`read_recorded`, one HTTP answer at a time, so a caller can store
        each page before asking for the next (memory stays bounded by a page however long the
        window). Per chunk of WebIds: one ``streamsets/recorded`` call for all of them, then each
        stream whose page was full continues alone from its last timestamp. Each stream's values
        arrive in ascending order, never twice. Errors of a whole stream (unknown WebId, no read
        access, no recorded data for this stream) come apart, in ``stream_errors``; an error
        object among the values is a Sample with ``error`` set, in its place.
        """
        start_text, end_text = format_pi_time(start), format_pi_time(end)
        for chunk in _chunks(list(dict.fromkeys(web_ids)), self.batch_size):
            page, full = await self._recorded_page(chunk, start_text, end_text, max_count, {})
            yield page
            for web_id, (last_text, last_ticks) in full.items():
                async for more in self._page_stream(web_id, last_text, last_ticks, end_text, max_count):
                    yield more

    async def _recorded_page(self, web_ids: list[str], start_text: str, end_text: str, max_count: int,
                             after: dict[str, int]) -> tuple[RecordedPage, dict[str, tuple[str, int]]]:
        """One streamsets/recorded call: its new values and stream errors, and the streams that
        returned a full page (without a stream error) and go on."""
        params = [("webId", w) for w in web_ids] + [
            ("startTime", start_text), ("endTime", end_text), ("maxCount", str(max_count)),
            ("boundaryType", "Inside")]
        _, body = await self.request_json("GET", "streamsets/recorded", params=params, ok=(200, 207),
                                          typed=_RECORDED)
        if isinstance(body, _RecordedBody):
            body = body.plain()
        fallback = parse_pi_time(end_text)
        page = RecordedPage()
        full: dict[str, tuple[str, int]] = {}
        for web_id, item in _items_by_web_id(web_ids, body):
            values = item.get("Items") if isinstance(item, dict) else None
            errors = _errors(item) if isinstance(item, dict) else ["PI Web API returned no item for this WebId."]
            if isinstance(values, list):
                last = _append_new(web_id, values, after.get(web_id), page.samples, fallback)
                if len(values) >= max_count and last is not None and not errors:
                    full[web_id] = last
            elif not errors:
                errors = ["No Items in the answer."]
            if errors:
                page.stream_errors[web_id] = "; ".join(errors)
        return page, full

    async def _page_stream(self, web_id: str, last_text: str, last_ticks: int, end_text: str,
                           max_count: int) -> AsyncIterator[RecordedPage]:
        """Continue one stream from its last timestamp until a short page (or no progress)."""
        for _ in range(MAX_RECORDED_PAGES):
            page, more = await self._recorded_page([web_id], last_text, end_text, max_count, {web_id: last_ticks})
            yield page
            if web_id not in more:
                return
            if more[web_id][1] <= last_ticks:
                log.warning("pi.recorded.no_progress", extra={"web_id": web_id, "base_url": self.display_url})
                return
            last_text, last_ticks = more[web_id]
        log.warning("pi.recorded.page_limit", extra={"web_id": web_id, "base_url": self.display_url})

    async def batch(self, requests: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """``POST /batch``: several GETs in one round trip (PI answers 207 with one entry per key)."""
        _, body = await self.request_json("POST", "batch", json_body=dict(requests), ok=(200, 207))
        if not isinstance(body, dict):
            raise PiError("PI Web API answered the batch without an object.", code="not_pi_web_api")
        return body


class _RecordedValue(msgspec.Struct, gc=False):
    """A value object of a recorded answer, decoded without a dict per value (a busy read holds
    tens of thousands). Every field is optional and of any type, so any object decodes; an
    absent field and a null one mean the same to the mapping (``plain`` keeps neither)."""

    Timestamp: Any = None
    Value: Any = None
    UnitsAbbreviation: Any = None
    Good: Any = None
    Questionable: Any = None
    Substituted: Any = None
    Errors: Any = None
    WebException: Any = None

    def plain(self) -> dict[str, Any]:
        return _present_fields(self)


class _RecordedItem(msgspec.Struct):
    WebId: Any = None
    Items: list[_RecordedValue] | None = None
    Errors: Any = None
    WebException: Any = None


class _RecordedBody(msgspec.Struct):
    """The usual shape of a stream-set recorded answer. Any other (an item or a value that is not
    an object, ``Items`` that is not a list) fails this decoder and is read as plain JSON."""

    Items: list[_RecordedItem] | None = None

    def plain(self) -> dict[str, Any]:
        """The answer as the plain objects ``_items_by_web_id`` reads, the values left typed."""
        if self.Items is None:
            return {}
        return {"Items": [_present_fields(item) for item in self.Items]}


def _present_fields(obj: msgspec.Struct) -> dict[str, Any]:
    """A decoded struct as the plain object it came from, less its absent (or null) fields."""
    return {f: v for f in obj.__struct_fields__ if (v := getattr(obj, f)) is not None}


_RECORDED = msgspec.json.Decoder(_RecordedBody)


def _append_new(web_id: str, values: list[Any], after: int | None, out: list[Sample],
                fallback: datetime) -> tuple[str, int] | None:
    """Append values later than ``after`` (drops the repeated page boundary); return the last stamp."""
    last: tuple[str, int] | None = None
    for obj in values:
        typed = type(obj) is _RecordedValue
        stamp = obj.Timestamp if typed else (obj.get("Timestamp") if isinstance(obj, dict) else None)
        try:
            ticks, moment = pi_stamp(str(stamp))
        except ValueError:
            out.append(sample_from_value(web_id, obj.plain() if typed else obj, fallback_time=fallback))
            continue
        if after is not None and ticks <= after:
            continue
        value = obj.Value if typed else None
        if type(value) is float and obj.Good is True and not obj.Questionable and not obj.Substituted \
                and obj.Errors is None and obj.WebException is None:
            # the common case (a good number) without the general mapping, whose checks it passes
            out.append(Sample(signal_id=web_id, time=moment, value=value, eng_unit=obj.UnitsAbbreviation or None))
        else:
            out.append(sample_from_value(web_id, obj.plain() if typed else obj, fallback_time=fallback,
                                         moment=moment))
        last = (str(stamp), ticks)
    if last is None and values and after is not None:
        tail = values[-1]
        if type(tail) is _RecordedValue:
            return str(tail.Timestamp), after
        return (str(tail.get("Timestamp")), after) if isinstance(tail, dict) else None
    return last


def _current_sample(web_id: str, item: Any, now: datetime) -> Sample:
    if not isinstance(item, dict):
        return _error_sample(web_id, "PI Web API returned no item for this WebId.", now)
    errors = _errors(item)
    if errors:
        return _error_sample(web_id, "; ".join(errors), now)
    return sample_from_value(web_id, item.get("Value"), fallback_time=now)


def _browse_item(point: Mapping[str, Any]) -> BrowseItem:
    name = str(point.get("Name") or point.get("WebId"))
    return BrowseItem(id=str(point["WebId"]), name=name, display_name=name, path=str(point.get("Path") or ""),
                      has_children=False, is_signal=True, data_type=point.get("PointType") or None,
                      eng_unit=point.get("EngineeringUnits") or None, description=point.get("Descriptor") or None)


def _segment(web_id: str) -> str:
    """A WebId as one path segment, escaped but otherwise untouched (WebIds are opaque)."""
    return quote(web_id, safe="")


def _first_error(raw: bytes, ctype: str) -> str | None:
    if "json" not in ctype.lower():
        return None
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    errors = _errors(body)
    return errors[0][:300] if errors else None


def _kind(ctype: str, raw: bytes) -> str:
    if "html" in ctype.lower() or raw.lstrip()[:1] == b"<":
        return "an HTML page"
    return f"'{ctype.split(';')[0] or 'no content type'}'"


def _tls_reason(exc: BaseException) -> str:
    text = str(getattr(exc, "os_error", None) or exc).lower()
    if "self-signed" in text or "self signed" in text:
        return "self-signed certificate"
    if "verify failed" in text or "certificate" in text:
        return "certificate not trusted"
    if "hostname" in text:
        return "certificate does not match the host name"
    return "protocol error"


# ---------------------------------------------------------------------------------------------
# Module-level operations (one short-lived client each)


async def test_connection(config: Mapping[str, Any], *, timeout: float | None = None) -> TestResult:
    """Read ``/system`` and ``/dataservers``; the whole test ends within ``timeout`` (or timeout_s)."""
    cfg = merge_config(config)
    base = {"base_url": display_url(cfg["base_url"]), "auth_type": cfg["auth_type"],
            "verify_tls": cfg["verify_tls"]}
    limit = float(timeout or cfg["timeout_s"])
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            async with PiClient(cfg, timeout=limit) as client:
                system = await client.system()
                round_trip_ms = (time.monotonic() - started) * 1000
                servers = await client.data_servers()
                chosen = await client.data_server() if servers or cfg["data_server"] else None
    except PiError as exc:
        return _failed(exc, base)
    except TimeoutError:
        return _failed(PiError(f"No complete answer from PI Web API within {limit:g} s.", code="timeout"), base)
    details = {**base, "reason": "ok", "product_title": system.get("ProductTitle"),
               "product_version": system.get("ProductVersion"),
               "data_servers": [s.get("Name") for s in servers],
               "data_server": chosen.get("Name") if chosen else None,
               "round_trip_ms": round(round_trip_ms, 1),
               "elapsed_ms": round((time.monotonic() - started) * 1000, 1)}
    log.info("pi.test_connection.ok", extra={"base_url": base["base_url"], "product": details["product_title"],
                                             "round_trip_ms": details["round_trip_ms"]})
    message = f"Connected to {details['product_title']} ({details['product_version']})"
    product = f"{details['product_title']} ({details['product_version']})"
    if chosen:
        message += f"; data server {chosen.get('Name')}"
        details["msg"] = test_message("connected_pi", product=product, server=chosen.get("Name"))
    else:
        details["msg"] = test_message("connected_pi_no_server", product=product)
    return TestResult(success=True, message=message + ".", details=details)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def _failed(exc: PiError, base: dict[str, Any]) -> TestResult:
    details = {**base, **exc.details, "reason": exc.code}
    if exc.status is not None:
        details["status"] = exc.status
    log.warning("pi.test_connection.failed", extra={"base_url": base["base_url"], "reason": exc.code,
                                                    "status": exc.status})
    return TestResult(success=False, message=exc.message, details=details)


async def search_points(config: Mapping[str, Any], name_filter: str = "*", start_index: int = 0,
                        max_count: int = 100, data_server: str | None = None) -> list[BrowseItem]:
    """One page of points matching ``name_filter``; ``BrowseItem.id`` is the WebId."""
    async with PiClient(config) as client:
        return await client.search_points(name_filter, start_index, max_count, data_server)


browse = search_points  # PI points are flat: browsing is searching


async def read_current(config: Mapping[str, Any], web_ids: Sequence[str]) -> list[Sample]:
    async with PiClient(config) as client:
        return await client.read_current(web_ids)


async def read_recorded(config: Mapping[str, Any], web_ids: Sequence[str], start: datetime, end: datetime,
                        max_count: int = 1000) -> list[Sample]:
    async with PiClient(config) as client:
        return await client.read_recorded(web_ids, start, end, max_count)
