"""``python -m bot check`` on a PostgreSQL database: reachable? which schema version? Read-only:
one connection in a read-only session, nothing created or migrated."""

from __future__ import annotations

from psycopg import AsyncConnection, Error

from .migrate import describe_version
from .pg_database import connection_options
from .pg_migrate import load_pg_migrations, schema_version
from .urls import redact_url, scrub

CHECK_CONNECT_TIMEOUT_S = 5


class DatabaseCheckError(RuntimeError):
    """The database could not be inspected; the message never holds the URL's password."""


async def inspect_postgres(url: str) -> str:
    latest = len(load_pg_migrations())
    options = connection_options() | {
        "connect_timeout": CHECK_CONNECT_TIMEOUT_S,
        "options": "-c default_transaction_read_only=on",
    }
    try:
        async with await AsyncConnection.connect(url, **options) as conn:
            version = await schema_version(conn)
            server = divmod(conn.info.server_version, 10_000)  # 150018 -> (15, 18)
    except Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DatabaseCheckError(scrub(reason, url)) from None
    shown = f"PostgreSQL {server[0]}.{server[1]}"
    return f"{redact_url(url)} ({shown}; {describe_version(version, latest)})"
