"""The event-loop appenders write exactly what ``Store.insert_predictions`` writes, atomically, and fail fast."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time

import pytest
from sqlalchemy import text

from driftwatch.store import Store, T, utcnow
from driftwatch.store.appender import (
    COLUMNS,
    PostgresAppender,
    SQLiteAppender,
    appender_for,
    copy_text,
    sqlite_params,
)


def tricky_rows(prefix: str) -> list[dict]:
    """Values that stress the conversions: escapes COPY must double, unicode, nulls, big and negative numbers."""
    ts = dt.datetime(2026, 11, 27, 13, 5, 7, 123456, tzinfo=dt.UTC)
    feats = [
        {"age": 41.0, "car": "7", "note": "tab\there\nnew line\\back\rslash"},
        {"age": None, "car": "é ü 中文 🙂", "quote": 'say "hi"'},
        {"age": -0.0, "big": 2 ** 63 - 1, "tiny": 1e-300, "nested": {"a": [1, 2.5, None]}},
    ]
    preds = [1, "yes", None]
    probas = [[0.25, 0.75], None, [1.0, 0.0]]
    return [dict(request_id=f"{prefix}{i:030d}", ts=ts, model_name="loan approval", model_version="v\\1",
                 features=f, prediction=p, probabilities=q, latency_ms=[1.5, 0.0, 1234.000001][i])
            for i, (f, p, q) in enumerate(zip(feats, preds, probas))]


def raw_columns(store: Store, prefix: str) -> list[tuple]:
    """The stored values of the rows with this id prefix, as the database holds them (JSON as text)."""
    cols = ", ".join(f"CAST({c} AS TEXT)" if c in ("features", "prediction", "probabilities", "ts") else c
                     for c in COLUMNS[1:])
    with store.engine.connect() as c:
        return [tuple(r) for r in c.execute(text(
            f"SELECT {cols} FROM predictions WHERE request_id LIKE :p ORDER BY request_id"), {"p": prefix + "%"})]


def run(coro):
    return asyncio.run(coro)


def append(app, rows):
    if app.is_async:
        return run(_append_and_close(app, rows))
    return app.append(rows)


async def _append_and_close(app, rows):
    try:
        await app.append(rows)
    finally:
        await app.aclose()


def test_rows_are_stored_exactly_as_the_store_stores_them(store):
    store.insert_predictions(tricky_rows("a"))
    app = appender_for(store)
    assert app is not None
    append(app, tricky_rows("b"))
    if not app.is_async:
        app.close()
    assert raw_columns(store, "a") == raw_columns(store, "b")
    via_store = [{k: v for k, v in r.items() if k not in ("id", "request_id")} for r in store.read_predictions(0)[:3]]
    via_appender = [{k: v for k, v in r.items() if k not in ("id", "request_id")} for r in store.read_predictions(0)[3:]]
    assert via_store == via_appender
    assert via_appender[0]["features"]["note"] == "tab\there\nnew line\\back\rslash"
    assert via_appender[1]["features"]["car"] == "é ü 中文 🙂"
    assert via_appender[1]["probabilities"] is None and via_appender[2]["prediction"] is None


def test_sqlite_params_match_sqlalchemy_bind_processors(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    rows = tricky_rows("c")
    processors = [T.predictions.c[c].type._cached_bind_processor(store.engine.dialect) for c in COLUMNS]
    expected = [v if p is None else p(v) for r in rows for c, p in zip(COLUMNS, processors) for v in [r[c]]]
    assert sqlite_params(rows) == expected


def test_a_batch_with_a_stored_id_commits_nothing_else_on_postgresql(pg_url):
    store = Store(pg_url)
    store.create_all()
    store.insert_predictions(tricky_rows("d")[:1])
    app = PostgresAppender(store)
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        run(_append_and_close(app, tricky_rows("e") + tricky_rows("d")[:1]))
    assert raw_columns(store, "e") == []
    # the failed connection was discarded: the next append connects again and works
    app2 = PostgresAppender(store)
    run(_append_and_close(app2, tricky_rows("e")))
    assert len(raw_columns(store, "e")) == 3
    store.dispose()


def test_postgres_appender_reconnects_after_its_connection_is_killed(pg_url):
    store = Store(pg_url)
    store.create_all()
    app = PostgresAppender(store)

    async def scenario():
        await app.append(tricky_rows("f")[:1])
        pid = app._conn.info.backend_pid
        with store.engine.begin() as c:
            c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with pytest.raises(Exception):
            await app.append(tricky_rows("g")[:1])  # the dead connection fails this one ...
        await app.append(tricky_rows("g")[1:])  # ... and is replaced for the next
        await app.aclose()

    run(scenario())
    assert len(raw_columns(store, "f")) == 1
    assert [r["request_id"] for r in store.read_predictions(0) if r["request_id"][0] == "g"] == \
        [f"g{i:030d}" for i in (1, 2)]
    assert app.reconnects == 2
    store.dispose()


def test_sqlite_append_fails_at_once_while_another_process_holds_the_write_lock(tmp_path):
    path = tmp_path / "s.db"
    store = Store(f"sqlite:///{path}")
    store.create_all()
    app = SQLiteAppender(store)
    app.append(tricky_rows("h")[:1])
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    t0 = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        app.append(tricky_rows("i"))
    assert time.monotonic() - t0 < 0.5, "the appender waited for the lock (it would block the event loop)"
    other.execute("ROLLBACK")
    app.append(tricky_rows("i"))
    assert len(raw_columns(store, "i")) == 3
    app.close()
    other.close()


def test_sqlite_batches_larger_than_one_statement_are_one_transaction(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.create_all()
    app = SQLiteAppender(store)
    many = [dict(r, request_id=f"j{i:031d}") for i in range(app._insert.chunk * 2 + 5) for r in tricky_rows("x")[:1]]
    app.append(many)
    assert store.count_predictions() == len(many)
    more = [dict(many[0], request_id=f"k{i:031d}") for i in range(app._insert.chunk + 1)]
    more[-1]["model_name"] = None  # refused (NOT NULL) in the second statement
    with pytest.raises(sqlite3.IntegrityError):
        app.append(more)
    assert raw_columns(store, "k") == []  # the first statement was rolled back: nothing half-committed
    app.append(more[:-1])
    assert len(raw_columns(store, "k")) == len(more) - 1
    app.close()


def test_sqlite_checkpoints_are_due_every_n_commits_and_empty_the_wal(tmp_path):
    path = tmp_path / "s.db"
    store = Store(f"sqlite:///{path}")
    store.create_all()
    app = SQLiteAppender(store, checkpoint_every=5)
    for i in range(5):
        assert not app.checkpoint_due
        app.append([dict(tricky_rows("l")[0], request_id=f"l{i:031d}")])
    assert app.checkpoint_due
    app.checkpoint()
    assert not app.checkpoint_due
    with sqlite3.connect(path) as c:
        busy, wal_frames, checkpointed = c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and wal_frames == checkpointed  # everything in the WAL is in the database file
    # the appender's own connection never checkpoints by itself
    assert app._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert app._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    app.close()


def test_appender_for_in_memory_sqlite_is_none():
    assert appender_for(Store("sqlite:///:memory:")) is None


def test_copy_text_escapes_and_nulls():
    row = tricky_rows("m")[0]
    line = copy_text([row]).decode()
    assert line.endswith("\n") and line.count("\n") == 1  # the newline inside a value is escaped
    fields = line[:-1].split("\t")
    assert len(fields) == len(COLUMNS)
    assert "tab\\\\there" in fields[4] and "\\\\\\\\back" in fields[4]  # JSON's \t and \\, backslashes doubled
    assert fields[3] == "v\\\\1"
    assert copy_text([tricky_rows("m")[1]]).decode().split("\t")[6] == "null"  # as SQLAlchemy stores None
    assert copy_text([dict(row, latency_ms=None)]).decode().split("\t")[7] == "\\N\n"
    assert copy_text([dict(row, ts=utcnow())]).decode().split("\t")[1].endswith("+00:00")


@pytest.mark.parametrize("query, expected", [("", 2), ("?synchronous=NORMAL", 1), ("?synchronous=full", 2)])
def test_the_sqlite_url_chooses_synchronous_for_both_paths(tmp_path, query, expected):
    store = Store(f"sqlite:///{tmp_path / 's.db'}{query}")
    store.create_all()
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == expected
    app = SQLiteAppender(store)
    app.append(tricky_rows("n")[:1])
    assert app._conn.execute("PRAGMA synchronous").fetchone()[0] == expected
    assert store.engine.url.database == str(tmp_path / "s.db")  # the option is not part of the file name
    app.close()


def test_a_wrong_synchronous_value_says_what_is_allowed(tmp_path):
    with pytest.raises(ValueError, match="FULL .default., NORMAL or EXTRA"):
        Store(f"sqlite:///{tmp_path / 's.db'}?synchronous=sometimes")


def test_postgres_appender_connects_with_every_option_of_the_url(pg_url):
    """Two server options (a space in options=...): both reach the appender's connection, as SQLAlchemy's."""
    url = pg_url.replace("?options=-csearch_path%3D", "?options=-csynchronous_commit%3Doff%20-csearch_path%3D")
    store = Store(url)
    store.create_all()
    app = PostgresAppender(store)

    async def scenario():
        await app.append(tricky_rows("o")[:2])
        async with app._conn.cursor() as cur:
            await cur.execute("SHOW synchronous_commit")
            sync = (await cur.fetchone())[0]
        await app.aclose()
        return sync

    assert run(scenario()) == "off"
    assert len(raw_columns(store, "o")) == 2  # in the URL's schema: search_path applied too
    store.dispose()


def test_postgres_copy_larger_than_the_socket_buffers_and_a_refused_copy_on_the_same_appender(pg_url):
    """On the service's loop (uvloop): a COPY of several MB waits for the socket to drain; a COPY the server
    refuses raises, commits nothing, and the appender's next COPY works on a new connection."""
    import uvloop

    store = Store(pg_url)
    store.create_all()
    app = PostgresAppender(store)
    base = tricky_rows("h")[0]
    big = [{**base, "request_id": f"h{i:031d}", "features": {"x": i, "pad": "p" * 200}} for i in range(20000)]
    bad = [{**base, "request_id": "i" * 40}]  # longer than VARCHAR(32): the server refuses the COPY

    async def scenario():
        await app.append(big)
        with pytest.raises(Exception, match="(?i)too long"):
            await app.append(bad + tricky_rows("j"))
        await app.append(tricky_rows("k"))
        await app.aclose()

    uvloop.run(scenario())
    with store.engine.connect() as c:
        counts = dict(c.execute(text("SELECT left(request_id, 1), count(*) FROM predictions GROUP BY 1")).all())
    assert counts == {"h": 20000, "k": 3}
    assert app.reconnects == 2
    store.dispose()


def test_postgres_copy_into_a_missing_table_says_so(pg_url):
    store = Store(pg_url)  # no create_all: the schema is empty
    app = PostgresAppender(store)
    with pytest.raises(Exception, match="COPY did not start.*predictions"):
        run(_append_and_close(app, tricky_rows("m")))
    store.dispose()
