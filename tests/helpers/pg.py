"""The real PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth, database ``test``).

Every run works in its own schema (``dw_<random>``) that it drops afterwards,
so parallel runs and other engineers' tests never see each other's rows.
Unreachable server: tests skip with the reason, except under ``CI=true``,
where they fail — CI must never silently skip the PostgreSQL tests.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from typing import Iterator

import pytest

PG_HOST = os.environ.get("DRIFTWATCH_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DRIFTWATCH_TEST_PG_PORT", "5432"))
PG_USER = "postgres"
PG_DB = "test"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def admin_conninfo(host: str = PG_HOST, port: int = PG_PORT) -> str:
    return f"host={host} port={port} user={PG_USER} dbname={PG_DB} connect_timeout=3"


@functools.lru_cache(maxsize=None)
def unavailable_reason() -> str | None:
    """None if the server answers, else why not (checked once per session)."""
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover - psycopg is a dependency
        return f"psycopg is not installed: {e}"
    try:
        with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as e:  # noqa: BLE001 - any failure means: no usable server
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else e!r}"
    return None


def require_pg() -> None:
    """Skip (laptop) or fail (``CI=true``) when PostgreSQL is not reachable."""
    reason = unavailable_reason()
    if reason is None:
        return
    where = f"{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
    if in_ci():
        pytest.fail(f"CI=true and the PostgreSQL tests cannot run: no server at {where} ({reason})", pytrace=False)
    pytest.skip(f"PostgreSQL not reachable at {where} ({reason}); start it, or set CI=true to make this a failure")


def url(schema: str, host: str = PG_HOST, port: int = PG_PORT) -> str:
    """SQLAlchemy URL whose connections use ``schema`` only."""
    return (f"postgresql+psycopg://{PG_USER}@{host}:{port}/{PG_DB}"
            f"?options=-csearch_path%3D{schema}")


@contextlib.contextmanager
def schema() -> Iterator[str]:
    """Create ``dw_<random>``; drop it (and everything in it) at the end."""
    import psycopg

    require_pg()
    name = f"dw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
