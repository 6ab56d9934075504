"""Alembic environment: migrations run online against sqlalchemy.url."""

from alembic import context

config = context.config
