"""All opsdesk settings, declared once.

Every setting is an ``OPSDESK_*`` environment variable with a description;
``docs/configuration.md`` is generated from this class (see ``opsdesk.docsgen``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration, read from ``OPSDESK_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="OPSDESK_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/opsdesk.db",
        description="SQLAlchemy URL of the application database. SQLite (WAL mode) by default; "
        "use postgresql+psycopg://user@host/db for production.",
    )
    host: str = Field(default="127.0.0.1", description="Interface `opsdesk serve` binds to.")
    port: int = Field(default=8000, description="Port `opsdesk serve` listens on.")
    sqlite_busy_timeout_ms: int = Field(
        default=30_000,
        description="How long a SQLite writer waits for the write lock before failing.",
    )
    idempotency_ttl_hours: int = Field(
        default=24,
        description="How long an Idempotency-Key and its first response are remembered.",
    )
    page_size_max: int = Field(
        default=500, description="Largest page a list endpoint returns in one response."
    )
    model_max_bytes: int = Field(
        default=1_048_576,
        ge=1,
        description="Largest operating model file `opsdesk model check/diff/apply` and "
        "`opsdesk init --model` read; a larger one is refused unread.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1,
        description="Largest request body the API accepts, in bytes; a larger one is refused "
        "with 413 before it is read whole.",
    )
    log_level: str = Field(default="info", description="Log level of the server (uvicorn).")
    jobs_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between two sweeps of the jobs outbox (SLA timers, escalations, "
        "exception expiry, overflow), in `opsdesk worker` and in the in-process scheduler.",
    )
    jobs_batch: int = Field(
        default=500,
        ge=1,
        description="Jobs run per transaction by a sweep; a failing job never rolls back "
        "the others.",
    )
    jobs_max_attempts: int = Field(
        default=8,
        ge=1,
        description="Attempts after which a failing job is dead: kept, listed by "
        "`opsdesk worker --status`, retried only by `opsdesk worker --retry-dead`.",
    )
    jobs_inprocess: bool | None = Field(
        default=None,
        description="Whether `opsdesk serve` runs the jobs in a background thread. Unset: yes "
        "on SQLite, no on PostgreSQL (run `opsdesk worker` processes there).",
    )
    # --- personal data (see docs/security.md, "Personal data: erasure and retention") ---
    master_key: SecretStr | None = Field(
        default=None,
        description="Master key that wraps the per-customer data keys: 32 random bytes in "
        "URL-safe base64 (`python -c 'import base64,os;print(base64.urlsafe_b64encode("
        "os.urandom(32)).decode())'`). Unset: read from `OPSDESK_MASTER_KEY_FILE`. Losing it "
        "makes every personal field of the event log unreadable: back it up apart from the "
        "database.",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="File holding the master key (created with mode 0600 by `opsdesk init` "
        "when missing). Unset: the SQLite database's path plus `.key` (var/opsdesk.db.key), "
        "or var/opsdesk-master.key on PostgreSQL.",
    )
    retention_message_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description="Age in days after which message bodies are purged by `opsdesk retention "
        "apply` (whole calendar months whose last day is older than this). Unset: no "
        "retention unless `--older-than-days` is given.",
    )

    def master_key_path(self) -> Path:
        """Where the master key file is (or will be created)."""
        if self.master_key_file is not None:
            return self.master_key_file
        sqlite = self.sqlite_path()
        if sqlite is not None:
            return sqlite.with_name(sqlite.name + ".key")
        return Path("var/opsdesk-master.key")

    def jobs_run_inprocess(self) -> bool:
        """Whether the server sweeps the jobs outbox itself."""
        if self.jobs_inprocess is not None:
            return self.jobs_inprocess
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file when the URL is SQLite, else None."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url[len(prefix) :])
        return None
