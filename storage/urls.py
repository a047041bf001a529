"""``DATABASE_URL``: which database it names, and how to show it without its password.

A PostgreSQL URL carries a password, so nothing here echoes a URL it was given: errors name
its scheme or what is wrong with it, and ``redact_url`` is the only form logs, errors and
``python -m bot check`` show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlencode

POSTGRES_SCHEMES = ("postgresql", "postgres")
_MASK = "***"


def database_kind(url: str) -> Literal["sqlite", "postgresql"]:
    """Which store a ``DATABASE_URL`` selects; ``ValueError`` (never echoing it) if none."""
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme in POSTGRES_SCHEMES:
        check_postgres_url(url)
        return "postgresql"
    sqlite_path_from_url(url)
    return "sqlite"


def sqlite_path_from_url(database_url: str) -> Path | None:
    """``sqlite:///data/bot.db`` -> ``data/bot.db`` (relative to the working directory),
    ``sqlite:////abs/path.db`` -> ``/abs/path.db``, ``sqlite:///:memory:`` -> None.

    Raises ``ValueError`` for anything else.
    """
    prefix = "sqlite:///"
    rest = database_url.removeprefix(prefix)
    if not database_url.startswith(prefix) or not rest:
        # The URL is not echoed: it may carry a password (postgresql://user:secret@host/db).
        scheme = database_url.partition(":")[0][:20] if ":" in database_url else ""
        raise ValueError(
            f"unsupported database URL (scheme {scheme!r})"
            if scheme
            else "unsupported database URL"
        )
    if rest == ":memory:":
        return None
    return Path(rest)


def check_postgres_url(url: str) -> None:
    """``ValueError`` unless libpq can parse ``url``; its message never holds the URL (libpq's
    own does: "... in URI: "postgresql://user:secret@...")."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "cannot be parsed"
        raise ValueError(f"invalid PostgreSQL URL: {scrub(reason, url)}") from None


def url_password(url: str) -> str | None:
    """The password a PostgreSQL URL carries (in its user part or as ``?password=``)."""
    _, userinfo, _, query = _split(url)
    if ":" in userinfo:
        return unquote(userinfo.partition(":")[2]) or None
    for name, value in parse_qsl(query):
        if name == "password" and value:
            return value
    return None


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: the form to show anywhere."""
    head, userinfo, rest, query = _split(url)
    if ":" in userinfo:
        userinfo = f"{userinfo.partition(':')[0]}:{_MASK}"
    shown = f"{head}{userinfo}@{rest}" if userinfo else f"{head}{rest}"
    if "password" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
        masked = urlencode([(k, _MASK if k == "password" else v) for k, v in pairs], safe="*/")
        shown = shown.removesuffix(query) + masked
    return shown


def _split(url: str) -> tuple[str, str, str, str]:
    """(``scheme://``, user info, the rest, the query) by hand: ``urlsplit`` raises on some
    URLs libpq takes (several hosts) and on some broken ones, which must still be redacted."""
    scheme, sep, after = url.partition("://")
    if not sep:
        return "", "", url, ""
    end = min((i for i in (after.find(c) for c in "/?#") if i >= 0), default=len(after))
    authority, rest = after[:end], after[end:]
    userinfo, at, hosts = authority.rpartition("@")
    query = rest.partition("?")[2].partition("#")[0]
    return f"{scheme}://", userinfo if at else "", hosts + rest, query


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message) with ``url`` and its password masked."""
    text = text.replace(url, redact_url(url))
    password = url_password(url)
    if password:
        text = text.replace(password, _MASK)
        raw = _split(url)[1].partition(":")[2]
        if raw and raw != password:
            text = text.replace(raw, _MASK)
    return text
