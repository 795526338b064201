"""SQL storage: one SQLAlchemy 2 async engine per Hub (SQLite by default, PostgreSQL by URL).

Each concept keeps its tables in its own module on the shared :data:`metadata`; migrations live
in ``storage/migrations`` (Alembic) and are applied by :func:`connectors.storage.migrate.migrate`.
"""

from connectors.storage.db import Base, Database, metadata

__all__ = ["Base", "Database", "metadata"]
