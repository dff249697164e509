"""Appending fresh request-log rows from the service's event loop (the serving fast path).

A worker's event loop, its model calls and its request log share a core under
load. Handing every commit to a writer thread then costs more than the commit
itself: GIL hand-offs and context switches between the loop and the thread,
and SQLAlchemy's per-statement machinery (measured in ``bench/serving.py``).
So the loop appends the rows itself, with a connection of its own:

* ``SQLiteAppender``: a plain ``sqlite3`` connection (WAL, ``synchronous=FULL``
  unless the URL says ``?synchronous=NORMAL``: a commit is on disk when
  ``append`` returns). ``busy_timeout=0``: if another
  process holds the write lock, ``append`` raises at once instead of blocking
  the loop; the caller hands those rows to the writer thread, which waits.
  ``wal_autocheckpoint=0``: a checkpoint (copying the WAL into the database)
  never runs inside a request's commit; ``checkpoint()`` runs a small one
  from the writer thread every ``CHECKPOINT_EVERY`` commits instead.
* ``PostgresAppender``: a psycopg ``AsyncConnection``; rows go in with one
  ``COPY ... FROM STDIN`` per commit (a single statement, so atomic in
  autocommit mode): no per-row statement work on either side. The COPY
  runs on libpq directly (``copy_in``): psycopg's cursor and copy layers
  cost twice the client CPU of the protocol itself.

Values are converted exactly as SQLAlchemy converts them for the same columns
(the JSON columns through ``json_dumps``), so readers cannot tell which path
wrote a row. Both appenders only ever see fresh request ids: anything that
may be a retry (spool shipping, a commit whose outcome is unknown) goes
through ``Store.insert_predictions``, which skips ids already stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from typing import Any

from driftwatch.store import Store, _MultiRowInsert
from driftwatch.store import tables as T
from driftwatch.store.engine import json_dumps, pg_connect_args

# Commits between WAL checkpoints. Small checkpoints: a big one (SQLite's default, 1000 pages) writes megabytes into
# the database file, and the next commits' fdatasync of the WAL waits behind that writeback (ext4 orders them):
# 100-500 ms stalls of every request. Every 5 commits (~30 pages) was free of them; every 20 (~100 pages of 16-row
# commits) too (worst request 62 ms vs 79 ms with 5, 7 rounds of bench/serving.py); every 5 costs 1.16x the CPU per
# commit (bench/commit_cost.py).
CHECKPOINT_EVERY = 20

COLUMNS = [c.name for c in T.predictions.c if not (c.primary_key and c.autoincrement)]
JSON_COLUMNS = {"features", "prediction", "probabilities"}


class SQLiteAppender:
    """Synchronous appends on the calling thread (the event loop's); see the module docstring.

    >>> import tempfile, os
    >>> from driftwatch.store import utcnow
    >>> path = os.path.join(tempfile.mkdtemp(), "s.db")
    >>> store = Store(f"sqlite:///{path}"); store.create_all()
    >>> app = SQLiteAppender(store)
    >>> app.append([dict(request_id="r1", ts=utcnow(), model_name="m", model_version="v", features={"x": 1.0},
    ...                  prediction=1, probabilities=[0.4, 0.6], latency_ms=1.5)])
    >>> [(r["request_id"], r["features"]) for r in store.read_predictions(0)]
    [('r1', {'x': 1.0})]
    >>> app.close()
    """

    is_async = False

    def __init__(self, store: Store, *, checkpoint_every: int = CHECKPOINT_EVERY):
        url = store.engine.url
        if store.dialect != "sqlite" or not url.database or url.database == ":memory:":
            raise ValueError("SQLiteAppender needs a SQLite database file")
        self.path = url.database
        self.store = store
        self._insert = _MultiRowInsert.build(store.engine.dialect, store._insert_ignore(T.predictions),
                                             T.predictions)
        if self._insert is None or self._insert.columns != COLUMNS:
            raise ValueError("this SQLite/SQLAlchemy cannot build the multi-row insert")
        self._conn: sqlite3.Connection | None = None
        self._ckpt_conn: sqlite3.Connection | None = None  # the checkpointing thread's own
        self.checkpoint_every = checkpoint_every
        self.commits_since_checkpoint = 0

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.store.sqlite_synchronous}")  # FULL unless the URL says otherwise
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Insert and commit ``rows`` (one transaction); raises ``sqlite3.Error`` if they are not committed."""
        if self._conn is None:
            self._conn = self._connect()
        conn, ins = self._conn, self._insert
        if len(rows) <= ins.chunk:
            conn.execute(ins.sql(len(rows)), sqlite_params(rows))  # one statement: its own transaction
        else:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for i in range(0, len(rows), ins.chunk):
                    chunk = rows[i:i + ins.chunk]
                    conn.execute(ins.sql(len(chunk)), sqlite_params(chunk))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        self.commits_since_checkpoint += 1

    @property
    def checkpoint_due(self) -> bool:
        return self.commits_since_checkpoint >= self.checkpoint_every

    def checkpoint(self) -> None:
        """Copy the WAL into the database without waiting for readers or writers (any thread)."""
        self.commits_since_checkpoint = 0
        if self._ckpt_conn is None:  # a plain connection: SQLAlchemy's pool checkout cost more than the checkpoint
            self._ckpt_conn = sqlite3.connect(self.path, isolation_level=None, timeout=0, check_same_thread=False)
            self._ckpt_conn.execute(f"PRAGMA synchronous={self.store.sqlite_synchronous}")
        self._ckpt_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        """Close both connections (a later ``append`` or ``checkpoint`` opens its own again)."""
        for conn in (self._conn, self._ckpt_conn):
            if conn is not None:
                conn.close()
        self._conn = self._ckpt_conn = None


def sqlite_ts(ts: dt.datetime) -> str:
    """A datetime as SQLAlchemy's SQLite ``DateTime`` stores it (naive text; ours are all UTC).

    >>> sqlite_ts(dt.datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=dt.timezone.utc))
    '2026-01-02 03:04:05.000060'
    """
    return (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d} "
            f"{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}.{ts.microsecond:06d}")


def sqlite_params(rows: list[dict[str, Any]]) -> list[Any]:
    """The flat parameters of a multi-row insert of ``rows`` (``COLUMNS`` order), converted as SQLAlchemy's bind
    processors convert them (``json_dumps`` for the JSON columns, ``sqlite_ts`` for ``ts``; the tests compare
    both). Rows of one request share their ``ts`` object: it is formatted once."""
    out: list[Any] = []
    last_ts = last_text = None
    for r in rows:
        ts = r["ts"]
        if ts is not last_ts:
            last_ts, last_text = ts, sqlite_ts(ts)
        out += (r["request_id"], last_text, r["model_name"], r["model_version"], json_dumps(r["features"]),
                json_dumps(r["prediction"]), json_dumps(r["probabilities"]), r["latency_ms"])
    return out


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(rows: list[dict[str, Any]]) -> bytes:
    r"""Rows as PostgreSQL ``COPY`` text (columns in ``COLUMNS`` order; ``\N`` is NULL, JSON columns hold JSON).

    >>> import datetime as dt
    >>> ts = dt.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=dt.timezone.utc)
    >>> copy_text([dict(request_id="r1", ts=ts, model_name="m", model_version="v", features={"x": 1.5},
    ...                 prediction="yes", probabilities=None, latency_ms=1.25)]).decode().split("\t")
    ['r1', '2026-01-02T03:04:05.006000+00:00', 'm', 'v', '{"x":1.5}', '"yes"', 'null', '1.25\n']
    """
    out = []
    last_ts = ts_text = None
    for r in rows:
        ts = r["ts"]
        if ts is not last_ts:  # rows of one request share their ts
            last_ts, ts_text = ts, ("\\N" if ts is None else ts.isoformat())
        lat = r["latency_ms"]
        out.append("\t".join((
            _copy_escape(r["request_id"]), ts_text, _copy_escape(r["model_name"]), _copy_escape(r["model_version"]),
            _json_field(r["features"]), _json_field(r["prediction"]), _json_field(r["probabilities"]),
            "\\N" if lat is None else repr(float(lat)))))
    out.append("")
    return "\n".join(out).encode("utf-8")


def _copy_escape(s: Any) -> str:
    s = str(s)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        return s.translate(_COPY_ESCAPES)
    return s


def _json_field(value: Any) -> str:
    # JSON text has no raw tab, newline or carriage return (JSON escapes them): only backslashes need doubling.
    # None too: SQLAlchemy stores JSON null, not NULL.
    text = json_dumps(value)
    return text.replace("\\", "\\\\") if "\\" in text else text


class PostgresAppender:
    """Asynchronous appends on the event loop over a psycopg ``AsyncConnection``; see the module docstring."""

    is_async = True
    checkpoint_due = False

    def __init__(self, store: Store, *, timeout: float = 5.0):
        if store.dialect != "postgresql":
            raise ValueError("PostgresAppender needs a PostgreSQL store")
        # exactly the arguments SQLAlchemy gives psycopg for this URL (not the URL re-rendered: libpq's URI
        # parser would take the "+" SQLAlchemy writes for a space in options=... literally)
        cargs, cparams = store.engine.dialect.create_connect_args(store.engine.url)
        cparams.pop("context", None)  # SQLAlchemy's type adapters: not for this connection
        self.connect_args = (list(cargs), {**cparams, **pg_connect_args(timeout)})
        self._conn = None
        self._sql = f"COPY {T.predictions.name} ({', '.join(COLUMNS)}) FROM STDIN"
        self.reconnects = 0

    async def append(self, rows: list[dict[str, Any]]) -> None:
        """COPY ``rows`` in (one atomic statement); raises if they are not committed."""
        import psycopg

        data = copy_text(rows)
        if self._conn is None or self._conn.closed:
            args, kwargs = self.connect_args
            self._conn = await psycopg.AsyncConnection.connect(*args, autocommit=True, **kwargs)
            self.reconnects += 1
        try:
            await copy_in(self._conn.pgconn, self._sql.encode(), data)
        except BaseException:
            await self.discard()  # its state is unknown (cancelled mid-COPY, broken socket): a new one next time
            raise

    async def discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    def checkpoint(self) -> None:  # PostgreSQL checkpoints itself
        pass

    async def aclose(self) -> None:
        await self.discard()


async def copy_in(pg: Any, sql: bytes, data: bytes) -> None:
    """``COPY ... FROM STDIN`` of ``data`` on a non-blocking libpq connection (psycopg's ``pgconn``), waiting on
    the event loop: the messages psycopg's ``cursor.copy`` sends, without its layers. Raises ``psycopg.Error`` if
    the server refuses the COPY; the connection is then in an unknown state (the caller discards it)."""
    from psycopg import DatabaseError
    from psycopg.pq import ExecStatus

    loop = asyncio.get_running_loop()
    fd = pg.socket
    pg.send_query(sql)
    res = await _next_result(pg, fd, loop)
    if res is None or res.status != ExecStatus.COPY_IN:
        raise DatabaseError(_message(res, "COPY did not start"))
    while not pg.put_copy_data(data):  # 0: libpq's buffer is full (non-blocking mode)
        await _ready(loop, fd, write=True)
    while not pg.put_copy_end():
        await _ready(loop, fd, write=True)
    res = await _next_result(pg, fd, loop)
    if res is None or res.status != ExecStatus.COMMAND_OK:
        raise DatabaseError(_message(res, "COPY failed"))
    while await _next_result(pg, fd, loop) is not None:  # up to ReadyForQuery
        pass


async def _next_result(pg: Any, fd: int, loop: asyncio.AbstractEventLoop) -> Any:
    while pg.flush():  # 1: output still queued
        await _ready(loop, fd, write=True)
    while True:
        pg.consume_input()
        if not pg.is_busy():
            return pg.get_result()
        await _ready(loop, fd)


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, write: bool = False) -> None:
    fut = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if write else (loop.add_reader, loop.remove_reader)
    add(fd, _resolve, fut)
    try:
        await fut
    finally:
        remove(fd)


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


def _message(res: Any, what: str) -> str:
    text = res.error_message.decode("utf-8", "replace").strip() if res is not None else ""
    return f"{what}: {text}" if text else what


def appender_for(store: Store, *, timeout: float = 5.0) -> SQLiteAppender | PostgresAppender | None:
    """The fast-path appender for this store, or None (in-memory SQLite, other databases: the thread path)."""
    try:
        if store.dialect == "sqlite":
            return SQLiteAppender(store)
        if store.dialect == "postgresql":
            return PostgresAppender(store, timeout=timeout)
    except ValueError:
        return None
    return None


