"""Settings read from the environment (and an optional `.env`), one class for the whole app."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository root: templates/ and static/ live beside app/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    token_days: int = Field(default=30, ge=1)
    session_days: int = Field(default=14, ge=1)
    #: Upper bound on epochs × training samples × parameters for one /train run, as estimated by
    #: app.training.runner.estimate_work: about 1e-10 s per unit here, so 1e11 is 10-15 s.
    train_work_budget: float = Field(default=1.0e11, gt=0)
    train_workers: int = Field(default=0, ge=0, description="0 means one per CPU core")
    train_queue: int = Field(default=2, ge=0)
    train_per_client: int = Field(
        default=1, ge=1, description="Runs one client (account, else visitor and address) may have"
    )
    train_per_minute: int = Field(
        default=20, ge=1, description="Runs one client may start in any minute"
    )
    register_per_hour: int = Field(
        default=10, ge=1, description="Sign-ups one client address may make in any hour"
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Proxies whose X-Forwarded-For is believed: comma-separated addresses or "
        "networks, or *; empty trusts none and the client is the connection's peer",
    )
    #: `backprop serve` hands these two to uvicorn (its --limit-concurrency, --timeout-keep-alive)
    limit_concurrency: int = Field(
        default=1000, ge=1, description="Connections and tasks one worker takes before a 503"
    )
    timeout_keep_alive: int = Field(
        default=5, ge=1, description="Seconds an idle keep-alive connection stays open"
    )
    #: Start the quiz-attempt writer process with the server, so the first signed-in submission
    #: does not wait the ~0.4 s it takes to start; off, it starts on that first submission.
    attempt_writer_at_startup: bool = True
    log_level: str = Field(
        default="INFO",
        pattern=r"(?i)^(debug|info|warning|error|critical)$",
        description="The lowest level logged, for the app and uvicorn alike",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text: time level logger: message; json: one object a line"
    )
    templates_dir: Path = PROJECT_ROOT / "templates"
    static_dir: Path = PROJECT_ROOT / "static"

    def resolved_database_url(self) -> str:
        """The configured database URL, or a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'backprop.db').as_posix()}"

    def resolved_secret_key(self) -> str:
        """SECRET_KEY, else the one kept in DATA_DIR/secret_key (made on first use, mode 0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        try:
            return path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            pass
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        tmp = path.with_name(f".secret_key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key)
        # link() fails if the file exists: when two workers start together one key wins, atomically.
        try:
            os.link(tmp, path)
        except FileExistsError:
            key = path.read_text(encoding="ascii").strip()
        finally:
            tmp.unlink()
        return key


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
