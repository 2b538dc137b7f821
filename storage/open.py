"""The one way in: a storage URL names the backend, and `open_storage` opens it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from storage.sql import SqlStorage

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
URL_FORMS = "sqlite:///PATH of a file or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def check_storage_url(url: str) -> str:
    """The URL as given when it names a backend; ValueError (which never quotes the URL, as
    it may hold a password) otherwise."""
    if url.startswith(SQLITE_PREFIX):
        path = url.removeprefix(SQLITE_PREFIX)
        # Without a file name ("sqlite:///", "sqlite:///data/") SQLite is given a folder.
        if path.strip() and not path.endswith("/"):
            return url
    elif urlsplit(url).scheme in POSTGRES_SCHEMES:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is no number
        except ValueError:
            raise ValueError(f"expected {URL_FORMS}; the port is not a number") from None
        if parts.path.strip("/"):
            return url
        raise ValueError(f"expected {URL_FORMS}; the database name is missing")
    raise ValueError(f"expected {URL_FORMS}")


@asynccontextmanager
async def open_storage(
    url: str, *, create: bool = True, migrate: bool = True
) -> AsyncIterator[SqlStorage]:
    """The backend `url` names, connected for the block and closed after it.

    `create=False` refuses a SQLite file that does not exist (a PostgreSQL database is
    never created: `createdb` makes it); `migrate=False` leaves the schema as it is. Raises
    ValueError for a URL `check_storage_url` refuses, and DatabaseMissing or
    StorageUnavailable (storage.base) when there is nothing to open.
    """
    check_storage_url(url)
    storage: SqlStorage
    if url.startswith(SQLITE_PREFIX):
        from storage.sqlite import SqliteStorage

        path = Path(url.removeprefix(SQLITE_PREFIX))
        storage = SqliteStorage(path, create=create, migrate=migrate)
    else:
        from storage.postgres import PostgresStorage

        storage = PostgresStorage(url, migrate=migrate)
    async with storage:
        yield storage


def safe_url(url: str) -> str:
    """The URL with its password masked, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()
