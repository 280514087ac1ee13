"""Settings read from the environment, and the start-up check of required secrets.

Only the variables listed in the README are read, each into one field. Secrets are
``SecretStr`` so an accidental ``repr`` or log line shows ``**********``.
"""

from __future__ import annotations

import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("optria.config")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP_ENVS = ("development", "test", "production")


class ConfigError(RuntimeError):
    """A configuration problem the operator must fix; the message names variables, never values."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    database_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")
    database_read_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_READ_URL")
    session_secret: SecretStr | None = Field(default=None, validation_alias="SESSION_SECRET")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    openai_model: str = Field(default="gpt-4o-mini", validation_alias="OPENAI_MODEL")
    openai_timeout_s: float = Field(default=30.0, gt=0, validation_alias="OPENAI_TIMEOUT_S")
    demo_mode: bool = Field(default=False, validation_alias="DEMO_MODE")
    app_env: str = Field(default="development", validation_alias="APP_ENV")
    optimization_engine_enabled: bool = Field(default=True, validation_alias="OPTIMIZATION_ENGINE_ENABLED")
    external_db_enable: bool = Field(default=False, validation_alias="EXTERNAL_DB_ENABLE")
    pi_base_url: str | None = Field(default=None, validation_alias="PI_BASE_URL")
    sap_base_url: str | None = Field(default=None, validation_alias="SAP_BASE_URL")
    opcua_username: str | None = Field(default=None, validation_alias="OPCUA_USERNAME")
    opcua_password: SecretStr | None = Field(default=None, validation_alias="OPCUA_PASSWORD")
    opcua_endpoint_url: str | None = Field(default=None, validation_alias="OPCUA_ENDPOINT_URL")

    # libpq-style parts, used only when DATABASE_URL is absent
    pghost: str | None = Field(default=None, validation_alias="PGHOST")
    pgport: int | None = Field(default=None, validation_alias="PGPORT")
    pgdatabase: str | None = Field(default=None, validation_alias="PGDATABASE")
    pguser: str | None = Field(default=None, validation_alias="PGUSER")
    pgpassword: SecretStr | None = Field(default=None, validation_alias="PGPASSWORD")

    blackbox_grouping_window_min: float = Field(default=30.0, gt=0, validation_alias="BLACKBOX_GROUPING_WINDOW_MIN")
    data_dir: Path = Field(default=PROJECT_ROOT / ".optria", validation_alias="OPTRIA_DATA_DIR")
    # The embedded server's edition (no DATABASE_URL): plain PostgreSQL, or TimescaleDB built by
    # scripts/timescaledb with its community license (full) or Apache-only.
    timescale: str = Field(default="off", validation_alias="OPTRIA_TIMESCALE")
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("OPTRIA_LOG_LEVEL", "LOG_LEVEL"))

    @field_validator("app_env")
    @classmethod
    def _known_env(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in APP_ENVS:
            raise ValueError(f"must be one of {', '.join(APP_ENVS)}")
        return value

    @field_validator("timescale")
    @classmethod
    def _known_edition(cls, value: str) -> str:
        value = value.strip().lower() or "off"
        if value not in ("off", "full", "apache"):
            raise ValueError("must be one of off, full, apache")
        return value

    @field_validator("pi_base_url", "sap_base_url", "opcua_endpoint_url", "openai_base_url", "opcua_username")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value

    @property
    def embedded_pg_dir(self) -> Path:
        """Where the embedded server keeps its cluster: one per edition, never mixed."""
        base = Path(self.data_dir)
        return base / "pg" if self.timescale == "off" else base / f"pg-timescale-{self.timescale}"

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    def database_dsn(self) -> str | None:
        """The DSN from DATABASE_URL, else from PG* parts, else None (embedded server)."""
        if self.database_url and self.database_url.get_secret_value().strip():
            return self.database_url.get_secret_value().strip()
        if self.pghost or self.pgdatabase:
            user = quote(self.pguser or "postgres")
            pw = f":{quote(self.pgpassword.get_secret_value())}" if self.pgpassword else ""
            host = self.pghost or "localhost"
            port = self.pgport or 5432
            return f"postgresql://{user}{pw}@{host}:{port}/{quote(self.pgdatabase or 'postgres')}"
        return None

    def session_key(self) -> bytes:
        if self.session_secret and self.session_secret.get_secret_value():
            return self.session_secret.get_secret_value().encode()
        return _ephemeral_secret(Path(self.data_dir))


@lru_cache(maxsize=4)
def _ephemeral_secret(data_dir: Path) -> bytes:
    """A generated development secret, shared by every process of this checkout (web workers,
    ingest) through a private file under the data directory."""
    path = data_dir / "dev-session-secret"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()
    except FileExistsError:
        return path.read_text().strip().encode()
    except OSError:
        return secrets.token_urlsafe(48).encode()


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning a validation failure into a ConfigError that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        names = []
        for err in exc.errors():
            loc = err.get("loc") or ("?",)
            field = str(loc[0])
            alias = _ALIASES.get(field, field.upper())
            names.append(f"{alias}: {err.get('msg', 'invalid value')}")
        raise ConfigError("Invalid configuration: " + "; ".join(names)) from None


_ALIASES = {name: (f.validation_alias if isinstance(f.validation_alias, str) else name.upper())
            for name, f in Settings.model_fields.items()}
_ALIASES.update({f.validation_alias: f.validation_alias for f in Settings.model_fields.values()
                 if isinstance(f.validation_alias, str)})


def missing_required(settings: Settings) -> list[str]:
    """Names of required variables that are absent (production needs a session secret and a database)."""
    missing = []
    if not (settings.session_secret and settings.session_secret.get_secret_value().strip()):
        missing.append("SESSION_SECRET")
    if settings.database_dsn() is None:
        missing.append("DATABASE_URL")
    return missing


def validate_required_secrets(settings: Settings) -> bool:
    """Stop in production when a required secret is missing; warn in development.

    Returns True when every required secret is present. The embedded database counts as
    a database outside production, so development needs no variables at all.
    """
    missing = missing_required(settings)
    if not missing:
        return True
    if settings.is_production:
        raise ConfigError(
            "Missing required configuration for APP_ENV=production: " + ", ".join(missing)
            + ". Set these environment variables and start again."
        )
    for name in missing:
        if name == "SESSION_SECRET":
            log.warning("config.missing_secret", extra={"variable": name, "action": "using an ephemeral secret; sessions end on restart"})
        else:
            log.warning("config.missing_setting", extra={"variable": name, "action": "using the embedded PostgreSQL"})
    return False


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
