"""Alembic environment: the app's models and settings; a connection handed in is used as is."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from app.config import get_settings
from app.db import include_object, make_engine
from app.models import Base

config = context.config
if config.config_file_name is not None and not config.attributes.get("connection"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        include_object=include_object,  # procrastinate's tables come from its SQL, not our models
        **kwargs,
    )


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: emit the SQL instead of running it."""
    url = config.attributes.get("url") or get_settings().resolved_database_url()
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """On a connection from the caller (the app, the CLI, tests) or one from the settings."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.attributes.get("url") or get_settings().resolved_database_url()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
