"""Settings read from the environment (and an optional `.env`), one class for the whole app."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository root: templates/ and static/ live beside app/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Shorter secrets are refused: the key signs cookies and CSRF tokens and keys option orders.
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    """Everything a deployment can change, each field an environment variable of the same name."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    content_dir: Path = Path("content")
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<DATA_DIR>/backprop.db"
    )
    secret_key: str | None = Field(
        default=None, description="Signs cookies and tokens; generated into DATA_DIR when unset"
    )
    pass_percent: int = Field(default=80, ge=0, le=100)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    #: Strict-Transport-Security max-age on https responses; 0 leaves the header out.
    hsts_seconds: int = Field(default=0, ge=0)
    token_days: int = Field(default=30, ge=1)
    session_days: int = Field(default=14, ge=1)
    #: Upper bound on epochs × training samples × parameters for one /train run, as estimated by
    #: app.training.runner.estimate_work: a request cannot hold a training process for long.
    train_work_budget: float = Field(default=1.0e11, gt=0)
    train_workers: int = Field(default=0, ge=0, description="0 means one per CPU core")
    train_queue: int = Field(default=2, ge=0)
    log_level: str = Field(
        default="INFO",
        pattern=r"(?i)^(debug|info|warning|error|critical)$",
        description="The lowest level logged, for the app and uvicorn alike",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text: time level logger: message; json: one object a line"
    )
    root_path: str = Field(
        default="",
        pattern=r"^(/[A-Za-z0-9._~-]+)*$",
        description="The sub-path the site is served under behind a proxy, e.g. /backprop",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="The site's address as learners reach it, for links the CLI prints",
    )
    #: Request counts and latencies for /metrics; off only to measure what they cost.
    metrics_enabled: bool = True
    metrics_token: str | None = Field(
        default=None, description="When set, /metrics wants `Authorization: Bearer <token>`"
    )
    templates_dir: Path = PROJECT_ROOT / "templates"
    static_dir: Path = PROJECT_ROOT / "static"

    @field_validator("root_path", mode="before")
    @classmethod
    def _no_trailing_slash(cls, value: object) -> object:
        """`/backprop/` and `/backprop` are one prefix; `/` alone is none."""
        return value.strip().rstrip("/") if isinstance(value, str) else value

    def resolved_database_url(self) -> str:
        """The configured database URL, or a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'backprop.db').as_posix()}"

    def make_data_dir(self) -> Path:
        """DATA_DIR, created owner-only (0700) if missing: password hashes, answer keys, the key."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.data_dir

    def resolved_secret_key(self) -> str:
        """SECRET_KEY, else the one kept in DATA_DIR/secret_key (made on first use, mode 0600);
        a secret shorter than MIN_SECRET_LENGTH is refused (ValueError naming SECRET_KEY)."""
        if self.secret_key:
            return _strong(self.secret_key)
        path = self.data_dir / "secret_key"
        try:
            return _strong(path.read_text(encoding="ascii").strip(), path)
        except FileNotFoundError:
            pass
        self.make_data_dir()
        key = secrets.token_urlsafe(48)
        # Written in full under a name of our own, then linked into place: link() fails if the
        # key exists (a symlink included), so when two workers start together one key wins, and
        # no one ever reads a half-written file. O_EXCL | O_NOFOLLOW: never through a planted link.
        tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key)
        try:
            os.link(tmp, path)
        except FileExistsError:
            key = _strong(path.read_text(encoding="ascii").strip(), path)
        finally:
            tmp.unlink()
        return key


#: How to make a strong secret, quoted in the refusal.
_HOW = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def _strong(secret: str, source: Path | None = None) -> str:
    """`secret` if it is long enough to sign with; else a ValueError naming SECRET_KEY."""
    if len(secret) >= MIN_SECRET_LENGTH:
        return secret
    if source is None:
        raise ValueError(
            f"SECRET_KEY is {len(secret)} character(s) long; it must be at least "
            f"{MIN_SECRET_LENGTH}: set it to a random string ({_HOW}), or unset it to have one "
            "generated into DATA_DIR/secret_key"
        )
    raise ValueError(
        f"the secret key in {source} is {len(secret)} character(s) long; SECRET_KEY must be at "
        f"least {MIN_SECRET_LENGTH}: delete that file to have one generated, or set SECRET_KEY "
        f"to a random string ({_HOW})"
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
