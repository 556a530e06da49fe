"""Settings read from the environment (and an optional `.env`), one class for the whole app."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import resources

#: Shorter secrets are refused: the key signs cookies and CSRF tokens and keys option orders.
MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """A setting that cannot be used as given; the message names it and says what to do."""


class Settings(BaseSettings):
    """Everything a deployment can change, each field an environment variable of the same name."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    #: The lessons served; by default the course bundled with the package (the seed lesson).
    content_dir: Path = Field(default_factory=resources.course_dir)
    #: Relative to the working directory, like every relative path set here.
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
    # --- where /train's runs train (app/training/backend.py) ---
    training_backend: Literal["local", "queue"] = Field(
        default="local",
        description="local: this server's processes; queue: jobs on PostgreSQL for "
        "`backprop worker`s (needs a PostgreSQL DATABASE_URL)",
    )
    #: queue backend: runs that may wait for a worker before 429
    train_queue_max: int = Field(default=100, ge=1)
    #: queue backend: finished runs (and their epoch rows) are deleted after this many hours
    train_keep_hours: float = Field(default=24.0, ge=0)
    #: queue backend: the procrastinate queue (and NOTIFY channel) name; deployments that share
    #: a database keep their runs apart with different names
    train_queue_name: str = Field(default="training", pattern=r"^[a-z][a-z0-9_]{0,39}$")

    @field_validator("training_backend")
    @classmethod
    def _queue_needs_postgresql(cls, value: str, info: ValidationInfo) -> str:
        url = info.data.get("database_url") or ""
        if value == "queue" and not url.startswith("postgresql"):
            where = url.split("://", 1)[0] + "://..." if url else "unset (SQLite in DATA_DIR)"
            raise ValueError(
                "TRAINING_BACKEND=queue needs a PostgreSQL DATABASE_URL "
                f"(postgresql+psycopg://user@host/db); DATABASE_URL is {where}"
            )
        return value

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
    templates_dir: Path = Field(default_factory=resources.templates_dir)
    static_dir: Path = Field(default_factory=resources.static_dir)

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
        """DATA_DIR, owner-only (0700): password hashes, answer keys and the secret key live in it.

        Missing folders are made 0700; an existing DATA_DIR of ours that is looser (made by an
        older version, or by hand under the usual umask) is tightened to 0700.
        """
        make_private_dirs(self.data_dir)
        info = self.data_dir.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(self.data_dir, 0o700)
        return self.data_dir

    def resolved_secret_key(self) -> str:
        """SECRET_KEY, else the one kept in DATA_DIR/secret_key (made on first use, mode 0600);
        an empty SECRET_KEY or a secret shorter than MIN_SECRET_LENGTH is a SettingsError."""
        if self.secret_key is not None:  # set, even to "": never silently the key file instead
            return _strong(self.secret_key)
        path = self.data_dir / "secret_key"
        kept = _read_key_file(path)
        if kept is not None:
            return kept
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
        except FileExistsError:  # another worker's key won
            won = _read_key_file(path)
            if won is None:
                raise SettingsError(f"SECRET_KEY: {path} was deleted while starting") from None
            key = won
        finally:
            tmp.unlink()
        return key


def _read_key_file(path: Path) -> str | None:
    """The strong key kept in `path`, or None if there is no such file.

    Opened with O_NOFOLLOW: a symbolic link planted there (pointing at a file someone else can
    read or write) is refused, never followed. O_NONBLOCK: a FIFO cannot hang the start.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise SettingsError(
            f"SECRET_KEY: {path} is a symbolic link, which is never followed; delete the link to "
            f"have a key generated, or set SECRET_KEY to a random string ({_HOW})"
        ) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise SettingsError(
                f"SECRET_KEY: {path} is not a regular file; delete it to have a key generated"
            )
        data = fh.read()
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise SettingsError(
            f"SECRET_KEY: the key in {path} is not ASCII text; delete that file to have one "
            "generated"
        ) from None
    return _strong(text.strip(), path)


def make_private_dirs(path: Path) -> Path:
    """`path` as a folder, each missing folder on the way created owner-only (0700).

    `Path.mkdir(mode=..., parents=True)` gives the mode to the last folder only and makes the
    parents with the umask's 0755: `DATA_DIR/cache/lessons` made first would leave DATA_DIR
    readable by everyone. Folders that exist already are left as they are.
    """
    missing: list[Path] = []
    folder = path
    while not folder.is_dir() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:  # another process made it first, or it is not a folder
            if not folder.is_dir():
                raise
    return path


#: How to make a strong secret, quoted in the refusal.
_HOW = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def _strong(secret: str, source: Path | None = None) -> str:
    """`secret` if it is long enough to sign with; else a SettingsError naming SECRET_KEY."""
    if len(secret) >= MIN_SECRET_LENGTH and secret.strip():
        return secret
    if source is not None:
        raise SettingsError(
            f"SECRET_KEY: the key in {source} is {len(secret)} character(s) long; it must be at "
            f"least {MIN_SECRET_LENGTH}: delete that file to have one generated, or set "
            f"SECRET_KEY to a random string ({_HOW})"
        )
    if not secret.strip():  # `SECRET_KEY=` in .env or the environment: a slip, not "unset"
        raise SettingsError(
            f"SECRET_KEY is set but empty: set it to a random string of at least "
            f"{MIN_SECRET_LENGTH} characters ({_HOW}), or remove the variable to have one "
            "generated into DATA_DIR/secret_key"
        )
    raise SettingsError(
        f"SECRET_KEY is {len(secret)} character(s) long; it must be at least "
        f"{MIN_SECRET_LENGTH}: set it to a random string ({_HOW}), or unset it to have one "
        "generated into DATA_DIR/secret_key"
    )


def settings_problems(exc: BaseException) -> list[str] | None:
    """One line per problem if `exc` is a refused setting (SettingsError, or a Settings field
    that failed validation), naming the variable; None for any other exception."""
    if isinstance(exc, SettingsError):
        return [str(exc)]
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return [
            f"setting {'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        ]
    return None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
