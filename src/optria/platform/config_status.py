"""Configuration status as flags only: whether each setting is present, never its value."""

from __future__ import annotations

import msgspec

from optria.config import Settings, missing_required


class ConfigStatus(msgspec.Struct, kw_only=True):
    has_database_url: bool
    has_session_secret: bool
    has_openai_api_key: bool
    has_opcua_endpoint: bool
    has_opcua_credentials: bool
    has_pi_base_url: bool
    has_sap_base_url: bool
    demo_mode: bool
    optimization_engine_enabled: bool
    external_db_enable: bool
    app_env: str
    required_secrets_ok: bool
    storage_tier: str


def _present(secret) -> bool:
    return bool(secret is not None and secret.get_secret_value().strip())


def config_status(settings: Settings, storage_tier: str) -> ConfigStatus:
    return ConfigStatus(
        has_database_url=settings.database_dsn() is not None,
        has_session_secret=_present(settings.session_secret),
        has_openai_api_key=_present(settings.openai_api_key),
        has_opcua_endpoint=bool(settings.opcua_endpoint_url),
        has_opcua_credentials=bool(settings.opcua_username) and _present(settings.opcua_password),
        has_pi_base_url=bool(settings.pi_base_url),
        has_sap_base_url=bool(settings.sap_base_url),
        demo_mode=settings.demo_mode,
        optimization_engine_enabled=settings.optimization_engine_enabled,
        external_db_enable=settings.external_db_enable,
        app_env=settings.app_env,
        required_secrets_ok=not missing_required(settings),
        storage_tier=storage_tier,
    )
