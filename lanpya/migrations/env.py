"""Alembic environment: the URL comes from lanpya.db.alembic_config (or Config)."""

from alembic import context
from sqlalchemy import pool
from sqlalchemy.types import TypeDecorator

from lanpya.db import make_engine
from lanpya.models import Base

config = context.config
target_metadata = Base.metadata


def render_item(type_, obj, autogen_context):
    """Encrypted columns are plain binary in the schema."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl.__class__.__name__}()"
    return False


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from lanpya.config import Config

        url = Config.from_env().database_url
    return url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
