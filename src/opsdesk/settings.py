"""All opsdesk settings, declared once.

Every setting is an ``OPSDESK_*`` environment variable with a description;
``docs/configuration.md`` is generated from this class (see ``opsdesk.docsgen``).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


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
    import_max_bytes: int = Field(
        default=32 << 30,
        ge=1,
        description="Largest event log `opsdesk import` and `opsdesk diagnose` read (32 GiB): "
        "the file, and a gzipped one once decompressed; a larger one is refused. "
        "`--max-bytes` overrides it for one command. At least 1.",
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
    token_ttl_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days a new API token lives when `opsdesk token create --expires-in` (or "
        "the API's `expires_in_days`) does not say; an expired token is refused with 401.",
    )
    token_max_ttl_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="Longest lifetime, in days, a new API token may be given; a longer one is "
        "refused. A default above it is capped to it.",
    )
    sign_in_ttl_hours: int = Field(
        default=12,
        ge=1,
        le=720,
        description="Hours a token from a password sign-in (`POST /api/v1/auth/token`) "
        "lives: a working shift, not the months of a token made on purpose.",
    )

    # --- abuse and transport (docs/security.md#rate-limits, #transport) -----------------
    cors_origins: str = Field(
        default="",
        max_length=4096,
        description="Comma-separated exact origins (`https://desk.example.com`) allowed to "
        "call the API from a browser (CORS). Empty: CORS is off and browsers refuse "
        "cross-origin calls. At most 4,096 characters.",
    )

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",") if o.strip()):
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"CORS origin {origin!r} is not an exact origin such as "
                    "https://desk.example.com (scheme, host, optional port; no path, no *)"
                )
        return value

    redis_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^(redis|rediss|redis\+unix)://",
        description="Redis URL (`redis://127.0.0.1:6379/0`) holding the rate-limit counters, "
        "so every API process shares them. Unset: counters in each process's memory (one "
        "process: `opsdesk serve`). At most 2,048 characters.",
    )
    rate_limit_prefix: str = Field(
        default="opsdesk",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Prefix of the rate-limit keys in Redis, to share one Redis between "
        "deployments: 1 to 64 of `A-Z a-z 0-9 _ . : -`.",
    )
    rate_limit_requests_per_minute: int = Field(
        default=3000,
        ge=1,
        le=1_000_000,
        description="Requests one API token may make per minute (fixed window); more "
        "answer 429 with Retry-After. 1 to 1,000,000.",
    )
    rate_limit_bad_tokens_per_minute: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="Requests with a refused bearer token one client address may make per "
        "minute; beyond, it gets 429 before any token is looked up. 1 to 100,000.",
    )
    login_failures_per_account: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Failed sign-ins to one account within OPSDESK_LOGIN_WINDOW_MINUTES "
        "that lock it for OPSDESK_LOGIN_LOCKOUT_MINUTES. 1 to 1,000.",
    )
    login_failures_per_client: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Failed sign-ins from one client address within "
        "OPSDESK_LOGIN_WINDOW_MINUTES after which that address may not try again until "
        "the oldest failure is older than the window. 1 to 100,000.",
    )
    login_window_minutes: int = Field(
        default=15,
        ge=1,
        le=1440,
        description="The moving window failed sign-ins are counted over, in minutes. 1 to 1,440.",
    )
    login_lockout_minutes: int = Field(
        default=15,
        ge=1,
        le=10_080,
        description="How long an account stays locked after too many failed sign-ins (the "
        "right password is refused too). 1 to 10,080 (a week).",
    )

    def cors_origin_list(self) -> list[str]:
        """The configured CORS origins (none: CORS off)."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

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
