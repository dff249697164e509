"""Engines: SQLite in WAL mode by default, PostgreSQL for scale-out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool


def json_dumps(value: Any) -> str:
    """JSON for the JSON columns: orjson when it gives what ``json.dumps`` would mean, else ``json.dumps``.

    orjson is several times faster (the request log serialises three values per row) and writes the same
    JSON values (compact; non-ASCII unescaped; floats may print shorter). Its output is used unless it
    holds a null: ``json.dumps`` writes NaN and infinities as such where orjson writes null. It cannot
    encode integers beyond 64 bits either: those go to ``json.dumps`` too.

    >>> json_dumps({"x": 1.5, "c": "é"}), json_dumps([None, float("nan")]), json_dumps(2 ** 70)
    ('{"x":1.5,"c":"é"}', '[null, NaN]', '1180591620717411303424')
    """
    try:
        out = orjson.dumps(value)
    except TypeError:
        return json.dumps(value)
    return json.dumps(value) if b"null" in out else out.decode()


def pg_connect_args(timeout: float) -> dict[str, Any]:
    """libpq options for every PostgreSQL connection: a connect timeout, and keepalives + ``tcp_user_timeout`` so
    a server that silently stops answering fails the connection within seconds instead of hanging a writer."""
    return {"connect_timeout": max(1, int(timeout)), "keepalives": 1, "keepalives_idle": 5,
            "keepalives_interval": 2, "keepalives_count": 2, "tcp_user_timeout": int(max(timeout, 5) * 1000)}


def sqlite_synchronous(url: str) -> str:
    """SQLite's ``synchronous`` setting for this URL: FULL unless the URL says ``?synchronous=NORMAL``.

    FULL: a commit is on disk before it returns (``fdatasync`` of the WAL): acknowledged rows survive a crash
    of the process, of the OS and a power loss. NORMAL: no sync per commit; rows survive a crash of the
    process (they are in the OS's page cache), not of the OS or the machine.

    >>> sqlite_synchronous("sqlite:///x.db"), sqlite_synchronous("sqlite:///x.db?synchronous=normal")
    ('FULL', 'NORMAL')
    """
    value = make_url(url).query.get("synchronous", "FULL")
    value = (value[-1] if isinstance(value, tuple) else value).upper()
    if value not in ("FULL", "NORMAL", "EXTRA"):
        raise ValueError(f"synchronous={value!r} in the SQLite URL: use FULL (default), NORMAL or EXTRA")
    return value


def make_engine(url: str, *, timeout: float = 5.0, pool_size: int = 4) -> Engine:
    """Create an engine with the settings driftwatch relies on.

    SQLite: WAL journal, ``synchronous=FULL`` (a commit survives a crash of the
    process and of the machine), a busy timeout so several processes can write.
    PostgreSQL: a connect timeout so an outage fails fast instead of hanging.

    >>> e = make_engine("sqlite:///:memory:")
    >>> e.dialect.name
    'sqlite'
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        synchronous = sqlite_synchronous(url)
        url = u.difference_update_query(["synchronous"]).render_as_string(hide_password=False)
        u = make_url(url)
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": timeout, "check_same_thread": False}, json_serializer=json_dumps,
                               **({"poolclass": StaticPool} if u.database in (None, "", ":memory:") else {}))

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            cur.close()

        return engine
    if u.get_backend_name() == "postgresql":
        return create_engine(
            url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True, pool_recycle=300, json_serializer=json_dumps,
            connect_args=pg_connect_args(timeout))
    return create_engine(url)
