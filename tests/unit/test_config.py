"""Settings: exactly the documented variables, clear errors, secrets handled as secrets."""

from __future__ import annotations

import logging

import pytest

from optria.config import ConfigError, Settings, load_settings, validate_required_secrets

ENV = {
    "DATABASE_URL": "postgresql://u:p@db:5432/optria", "SESSION_SECRET": "s" * 32, "OPENAI_API_KEY": "sk-test",
    "DEMO_MODE": "true", "APP_ENV": "production", "OPTIMIZATION_ENGINE_ENABLED": "false",
    "EXTERNAL_DB_ENABLE": "1", "PI_BASE_URL": "https://pi.example/piwebapi", "SAP_BASE_URL": "https://sap.example",
    "OPCUA_USERNAME": "opc", "OPCUA_PASSWORD": "opc-pass", "OPCUA_ENDPOINT_URL": "opc.tcp://plc:4840",
}
FIELDS = {
    "DATABASE_URL": "database_url", "SESSION_SECRET": "session_secret", "OPENAI_API_KEY": "openai_api_key",
    "DEMO_MODE": "demo_mode", "APP_ENV": "app_env", "OPTIMIZATION_ENGINE_ENABLED": "optimization_engine_enabled",
    "EXTERNAL_DB_ENABLE": "external_db_enable", "PI_BASE_URL": "pi_base_url", "SAP_BASE_URL": "sap_base_url",
    "OPCUA_USERNAME": "opcua_username", "OPCUA_PASSWORD": "opcua_password", "OPCUA_ENDPOINT_URL": "opcua_endpoint_url",
}


@pytest.fixture
def clean_env(monkeypatch):
    for name in [*ENV, "PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_reads_each_variable_into_its_field(clean_env) -> None:
    for k, v in ENV.items():
        clean_env.setenv(k, v)
    s = load_settings()
    for env, field in FIELDS.items():
        value = getattr(s, field)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        expected = {"true": True, "false": False, "1": True}.get(ENV[env], ENV[env]) if field in (
            "demo_mode", "optimization_engine_enabled", "external_db_enable") else ENV[env]
        assert value == expected, env


def test_secrets_are_secretstr(clean_env) -> None:
    for k, v in ENV.items():
        clean_env.setenv(k, v)
    s = load_settings()
    text = repr(s) + str(s)
    for secret in ("opc-pass", "sk-test", "s" * 32, "u:p@db"):
        assert secret not in text


def test_pg_parts_build_the_dsn_when_database_url_is_absent(clean_env) -> None:
    clean_env.setenv("PGHOST", "db.internal")
    clean_env.setenv("PGPORT", "6543")
    clean_env.setenv("PGDATABASE", "plant")
    clean_env.setenv("PGUSER", "app")
    clean_env.setenv("PGPASSWORD", "p@ss word")
    assert load_settings().database_dsn() == "postgresql://app:p%40ss%20word@db.internal:6543/plant"


def test_no_database_settings_means_embedded(clean_env) -> None:
    assert load_settings().database_dsn() is None


def test_production_without_secret_stops_naming_the_variable(clean_env) -> None:
    clean_env.setenv("APP_ENV", "production")
    clean_env.setenv("DATABASE_URL", "postgresql://u:supersecret@db/x")
    with pytest.raises(ConfigError) as err:
        validate_required_secrets(load_settings())
    assert "SESSION_SECRET" in str(err.value) and "supersecret" not in str(err.value)


def test_production_without_database_stops(clean_env) -> None:
    clean_env.setenv("APP_ENV", "production")
    clean_env.setenv("SESSION_SECRET", "x" * 40)
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        validate_required_secrets(load_settings())


def test_development_warns_and_uses_a_generated_secret(clean_env, caplog, tmp_path) -> None:
    clean_env.setenv("OPTRIA_DATA_DIR", str(tmp_path))
    caplog.set_level(logging.WARNING)
    s = load_settings()
    assert validate_required_secrets(s) is False
    assert "config.missing_secret" in caplog.text
    key = s.session_key()
    assert len(key) >= 32 and key == load_settings().session_key()  # shared by processes of one checkout


@pytest.mark.parametrize("name,value", [("DEMO_MODE", "maybe"), ("APP_ENV", "staging"), ("PGPORT", "five")])
def test_malformed_values_name_the_variable(clean_env, name, value) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_blank_urls_are_absent(clean_env) -> None:
    clean_env.setenv("PI_BASE_URL", "   ")
    assert load_settings().pi_base_url is None


def test_settings_has_exactly_documented_env_names() -> None:
    aliases = {f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)}
    assert set(FIELDS) <= aliases
