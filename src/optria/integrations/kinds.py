"""What each kind of integration keeps in its config, how it is checked, and how it meets the
platform defaults.

A tenant's config holds non-secret settings only; a ``password`` found in it (or in a SQL
connection string) is taken out to be sealed. Blank values are dropped, so "no endpoint"
means "use the global default" (``OPCUA_ENDPOINT_URL``, ``PI_BASE_URL``). The connectors'
own ``merge_config`` functions apply those defaults; this module only reports which one won.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

import psycopg

from optria.connectors import opcua, pi, sql
from optria.integrations.errors import N_, InputError

FIELDS = {
    "opcua": ("endpoint_url", "security_policy", "security_mode", "auth_type", "username", "timeout_s",
              "publishing_interval_ms", "sampling_interval_ms"),
    "pi": ("base_url", "auth_type", "username", "verify_tls", "timeout_s", "data_server", "poll_interval_s"),
    "sql": ("dsn", "query", "tags_query", "poll_interval_s", "timeout_s"),
}
AUTH_TYPES = {"opcua": ("anonymous", "username"), "pi": ("anonymous", "basic")}
# (minimum, maximum, integer?) of numeric settings
NUMBERS = {
    "timeout_s": (1, 120, False), "publishing_interval_ms": (50, 600_000, True),
    "sampling_interval_ms": (-1, 600_000, True), "poll_interval_s": (0.5, 3600, False),
}
TEXT_MAX = 2000


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = str(value).strip()
    return text or None


def _choice(value: str, options: tuple[str, ...]) -> str | None:
    key = value.replace("_", "").replace("-", "").replace(" ", "").lower()
    return next((o for o in options if o.replace("_", "").lower() == key), None)


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    return None


def _number(name: str, value: Any, errors: dict[str, str]) -> float | int | None:
    low, high, integer = NUMBERS[name]
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        errors[name] = N_("Enter a number.")
        return None
    if not math.isfinite(number) or not low <= number <= high:
        errors[name] = N_("The number is outside the allowed range.")
        return None
    return int(number) if integer else number


def check_opcua_endpoint(url: str) -> str | None:
    """Why an ``opc.tcp://`` URL cannot be used, as a msgid; None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return N_("The endpoint has an invalid port.")
    if parts.scheme.lower() != "opc.tcp":
        return N_("The endpoint must start with opc.tcp:// (for example opc.tcp://plant-server:4840).")
    if "@" in parts.netloc:
        return N_("Do not put credentials in the address; use the username and password fields.")
    if not parts.hostname or any(c.isspace() for c in url):
        return N_("The endpoint has no valid host name.")
    return None


def check_http_url(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        return N_("The address has an invalid port.")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        return N_("Enter an address like https://pi-server/piwebapi.")
    if "@" in parts.netloc:
        return N_("Do not put credentials in the address; use the username and password fields.")
    return None


def clean_config(kind: str, raw: dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """(config to store, password taken out of it) or InputError naming each bad field."""
    values = dict(raw or {})
    given = values.pop("password", None)
    password = given if isinstance(given, str) and given != "" else None  # never stripped: spaces may be part of it
    errors: dict[str, str] = {}
    unknown = sorted(k for k in values if k not in FIELDS[kind])
    if unknown:
        errors["config"] = "Unknown settings for this kind of integration: " + ", ".join(unknown[:10])
    config: dict[str, Any] = {}
    for name in FIELDS[kind]:
        value = values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name in NUMBERS:
            number = _number(name, value, errors)
            if number is not None:
                config[name] = number
        elif name == "verify_tls":
            flag = _flag(value)
            if flag is None:
                errors[name] = N_("Choose yes or no.")
            else:
                config[name] = flag
        else:
            text = _text(value)
            if text is None:
                errors[name] = N_("Enter text.")
            elif len(text) > TEXT_MAX:
                errors[name] = N_("The value is too long.")
            else:
                config[name] = text
    extra_password = {"opcua": _check_opcua, "pi": _check_pi, "sql": _check_sql}[kind](config, errors)
    if errors:
        raise InputError(errors)
    return config, password or extra_password


def _check_opcua(config: dict[str, Any], errors: dict[str, str]) -> None:
    if "endpoint_url" in config and (problem := check_opcua_endpoint(config["endpoint_url"])):
        errors["endpoint_url"] = problem
    policy = _choice(config.get("security_policy", "None"), opcua.SECURITY_POLICIES)
    mode = _choice(config["security_mode"], opcua.SECURITY_MODES) if "security_mode" in config else None
    if policy is None:
        errors["security_policy"] = N_("Choose a security policy from the list.")
    elif "security_policy" in config:
        config["security_policy"] = policy
    if "security_mode" in config:
        if mode is None:
            errors["security_mode"] = N_("Choose a security mode from the list.")
        else:
            config["security_mode"] = mode
    if policy and mode and (policy == "None") != (mode == "None"):
        errors["security_mode"] = N_("Security policy None goes with mode None; a secure policy needs Sign or "
                                     "Sign and encrypt.")
    _check_auth("opcua", config, errors, needs_user="username")


def _check_pi(config: dict[str, Any], errors: dict[str, str]) -> None:
    if "base_url" in config:
        problem = check_http_url(config["base_url"])
        if problem:
            errors["base_url"] = problem
        else:
            config["base_url"] = config["base_url"].rstrip("/")
    _check_auth("pi", config, errors, needs_user="basic")


def _check_auth(kind: str, config: dict[str, Any], errors: dict[str, str], *, needs_user: str) -> None:
    if "auth_type" in config:
        auth = _choice(config["auth_type"], AUTH_TYPES[kind])
        if auth is None:
            errors["auth_type"] = N_("Choose how to sign in from the list.")
            return
        config["auth_type"] = auth
    if config.get("auth_type") == "anonymous":
        config.pop("username", None)
    # Without a username of its own, an OPC-UA integration on the global endpoint uses the global login.
    global_login_possible = kind == "opcua" and "endpoint_url" not in config
    if config.get("auth_type") == needs_user and not config.get("username") and not global_login_possible:
        errors["username"] = N_("Enter a username, or choose anonymous access.")


def _check_sql(config: dict[str, Any], errors: dict[str, str]) -> str | None:
    password = None
    if "dsn" not in config:
        errors["dsn"] = N_("Enter the connection string of the SQL source.")
    else:
        try:
            parts = psycopg.conninfo.conninfo_to_dict(config["dsn"])
            password = parts.pop("password", None)
            config["dsn"] = psycopg.conninfo.make_conninfo(**{k: v for k, v in parts.items() if v is not None})
        except psycopg.ProgrammingError:
            errors["dsn"] = N_("The connection string is not valid.")
    if "query" not in config:
        errors["query"] = N_("Enter the query that returns tag, time and value rows.")
    elif "%(watermark)s" not in config["query"]:
        errors["query"] = N_("The query must use the watermark parameter, so it reads only rows newer than those "
                             "already stored.")
    return str(password) if password else None


# ----------------------------------------------------------------------------- defaults and endpoints


def merged(kind: str, config: dict[str, Any], secrets: dict[str, str], settings: Any) -> dict[str, Any]:
    """The connector config: tenant settings and opened secrets over the platform defaults.
    Holds the password: never log or return it."""
    combined = {**config, **secrets}
    return {"opcua": opcua.merge_config, "pi": pi.merge_config, "sql": sql.merge_config}[kind](combined, settings)


def endpoint_info(kind: str, config: dict[str, Any], settings: Any) -> dict[str, Any]:
    """Where this integration connects (host only, never credentials) and whether the address is the
    tenant's own (``tenant``), the platform default (``global``) or absent (``missing``)."""
    if kind == "opcua":
        cfg = opcua.merge_config(config, settings)
        source = cfg["_sources"]["endpoint_url"]
        display = _host_port(cfg["endpoint_url"], opcua.DEFAULT_PORT)
    elif kind == "pi":
        cfg = pi.merge_config(config, settings)
        source = "global" if cfg["base_url_source"] == "environment" else "tenant" if cfg["base_url"] else "missing"
        display = _host_port(cfg["base_url"], None)
    else:
        source = "tenant" if config.get("dsn") else "missing"
        display = sql.describe({"dsn": config["dsn"]}) if config.get("dsn") else None
    return {"display": display, "source": source, "uses_global_default": source == "global"}


def _host_port(url: str | None, default_port: int | None) -> str | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or default_port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}" if port else host


def config_sources(kind: str, merged_cfg: dict[str, Any]) -> dict[str, str]:
    """Which value came from where (tenant / global / default / missing), for test details."""
    if kind == "opcua":
        return dict(merged_cfg.get("_sources") or {})
    if kind == "pi":
        source = merged_cfg.get("base_url_source")
        return {"base_url": "global" if source == "environment" else "tenant" if merged_cfg.get("base_url")
                else "missing"}
    return {"dsn": "tenant" if merged_cfg.get("dsn") else "missing"}


def secret_values(merged_cfg: dict[str, Any]) -> list[str]:
    """Every secret string in a merged config, so results can be scrubbed of them."""
    out = []
    for key in ("password",):
        value = merged_cfg.get(key)
        if value is not None and hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, str) and value:
            out.append(value)
    return out
