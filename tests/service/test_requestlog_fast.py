"""The request log's fast path: commits made on the event loop, and every way they hand rows to the writer thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy.exc import DataError, OperationalError

from driftwatch.store import Store
from driftwatch.store.appender import SQLiteAppender
from service.requestlog import RequestLog
from service.spool import Spool
from tests.helpers.service import wait_until
from tests.service.test_requestlog import FlakyStore, RefusingStore, rows


class FakeAppender:
    """Stands in for an appender: ``behave(rows)`` commits (returns) or fails (raises)."""

    checkpoint_due = False

    def __init__(self, behave, is_async: bool = False):
        self.behave, self.is_async, self.calls = behave, is_async, []

    def append(self, rows_):
        self.calls.append(rows_)
        if self.is_async:
            return self._append_async(rows_)
        self.behave(rows_)

    async def _append_async(self, rows_):
        await self.behave(rows_)

    def checkpoint(self):
        pass

    def close(self):
        pass

    async def aclose(self):
        pass


@pytest.fixture
def sqlite_store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'store.db'}", timeout=10)
    s.create_all()
    yield s
    s.dispose()


def make(store, tmp_path, appender, **kw) -> tuple[RequestLog, dict]:
    counters = {"stored": 0}
    log = RequestLog(store, Spool(tmp_path / "spool"), appender=appender, retry_seconds=0.05,
                     on_stored=lambda n: counters.__setitem__("stored", counters["stored"] + n), **kw)
    return log.start(), counters


def stored_ids(store) -> list[str]:
    return [r["request_id"] for r in store.read_predictions(0, limit=100000)]


def test_writes_of_one_loop_turn_share_one_commit_on_the_loop(sqlite_store, tmp_path):
    log, counters = make(sqlite_store, tmp_path, SQLiteAppender(sqlite_store))
    batches = [rows(2) for _ in range(50)]

    async def main():
        await asyncio.gather(*(log.write(b) for b in batches))
        await log.aclose()

    asyncio.run(main())
    assert log.fast_commits == 1 and log.handed_off == 0
    assert stored_ids(sqlite_store) == [r["request_id"] for b in batches for r in b]
    assert counters["stored"] == 100


def test_a_write_lock_held_elsewhere_hands_rows_to_the_writer_and_never_blocks_the_loop(sqlite_store, tmp_path):
    log, _ = make(sqlite_store, tmp_path, SQLiteAppender(sqlite_store))
    other = sqlite3.connect(sqlite_store.engine.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing (a long checkpoint, the monitor, another worker)
    threading.Timer(0.5, lambda: other.execute("ROLLBACK")).start()
    ticks = []

    async def ticker():
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main():
        t = asyncio.get_running_loop().create_task(ticker())
        batch = rows(3)
        t0 = time.monotonic()
        await log.write(batch)
        waited = time.monotonic() - t0
        t.cancel()
        await log.aclose()
        return batch, waited

    batch, waited = asyncio.run(main())
    other.close()
    assert waited >= 0.4, "the rows cannot have been committed while the lock was held"
    assert log.handed_off == 1
    assert stored_ids(sqlite_store) == [r["request_id"] for r in batch]
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert len(ticks) > 20 and max(gaps) < 0.2, f"the event loop stalled for {max(gaps):.3f} s"


def test_an_outage_on_the_fast_path_spools_then_ships_in_order(tmp_path):
    store = FlakyStore(f"sqlite:///{tmp_path / 'store.db'}")

    def behave(rows_):
        if store.down:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("store down (test)"))
        store.insert_predictions(rows_)

    app = FakeAppender(behave)
    log, counters = make(store, tmp_path, app)
    store.down = True
    during = [rows(2) for _ in range(5)]

    async def write_all(batches):
        for b in batches:
            await log.write(b)

    asyncio.run(write_all(during))  # acknowledged: spooled by the writer thread
    assert log.spool.pending == 10 and store.ids_in_order() == []
    fast_calls = len(app.calls)
    assert fast_calls == 1, "once the store is known down, rows go straight to the writer (and its spool)"
    store.down = False
    after = [rows(1) for _ in range(5)]
    asyncio.run(write_all(after))
    wait_until(lambda: log.spool.pending == 0 and len(store.ids_in_order()) == 15, 20, "the spool to be shipped")
    assert store.ids_in_order() == [r["request_id"] for b in during + after for r in b], \
        "spooled rows first, each once; newer rows never overtake the spool"
    log.close()
    store.real.dispose()


def test_a_hanging_store_times_out_and_the_writer_commits_the_rows(tmp_path):
    store = FlakyStore(f"sqlite:///{tmp_path / 'store.db'}")

    async def hang(rows_):
        await asyncio.sleep(3600)

    log, _ = make(store, tmp_path, FakeAppender(hang, is_async=True), timeout=0.2)
    batch = rows(4)

    async def main():
        t0 = time.monotonic()
        await log.write(batch)
        return time.monotonic() - t0

    took = asyncio.run(main())
    assert took < 5
    assert log.handed_off == 1
    assert store.ids_in_order() == [r["request_id"] for r in batch]
    log.close()
    store.real.dispose()


def test_rows_the_store_refuses_on_the_fast_path_fail_their_request_only(tmp_path):
    store = RefusingStore(f"sqlite:///{tmp_path / 'refuse.db'}")

    def behave(rows_):
        if any(r["prediction"] == "bad" for r in rows_):
            raise DataError("INSERT", {}, ValueError("invalid input syntax for type json"))
        store.insert_predictions(rows_)

    log, _ = make(store, tmp_path, FakeAppender(behave))
    good, bad = rows(3), rows(1)
    bad[0]["prediction"] = "bad"

    async def main():
        return await asyncio.gather(log.write(good), log.write(bad), return_exceptions=True)

    ok, err = asyncio.run(main())
    assert ok is None and isinstance(err, DataError)
    assert store.ids_in_order() == [r["request_id"] for r in good]
    assert log.store_up and log.spool.pending == 0
    log.close()
    store.real.dispose()


def test_aclose_waits_for_commits_in_flight(tmp_path):
    store = FlakyStore(f"sqlite:///{tmp_path / 'store.db'}")

    async def slow(rows_):
        await asyncio.sleep(0.2)
        store.insert_predictions(rows_)

    log, _ = make(store, tmp_path, FakeAppender(slow, is_async=True))
    batches = [rows(1) for _ in range(20)]

    async def main():
        writes = [asyncio.ensure_future(log.write(b)) for b in batches]
        await asyncio.sleep(0.05)  # the first commit is in flight, the rest queued behind it
        await log.aclose()
        return await asyncio.gather(*writes, return_exceptions=True)

    results = asyncio.run(main())
    assert results == [None] * 20
    assert sorted(store.ids_in_order()) == sorted(b[0]["request_id"] for b in batches)
    with pytest.raises(RuntimeError):
        asyncio.run(log.write(rows(1)))
    store.real.dispose()


def test_write_many_commits_one_model_calls_requests_together(sqlite_store, tmp_path):
    log, _ = make(sqlite_store, tmp_path, SQLiteAppender(sqlite_store))
    groups = [rows(1 + i % 3) for i in range(16)]

    async def main():
        out = await log.write_many(groups)
        await log.aclose()
        return out

    assert asyncio.run(main()) == [None] * 16
    assert log.fast_commits == 1 and log.handed_off == 0
    assert stored_ids(sqlite_store) == [r["request_id"] for g in groups for r in g]


def test_write_many_a_request_the_store_refuses_fails_alone(tmp_path):
    store = RefusingStore(f"sqlite:///{tmp_path / 'refuse.db'}")
    app = FakeAppender(store.insert_predictions)  # refuses like the store: the writer isolates the request
    log, _ = make(store, tmp_path, app)
    groups = [rows(2), rows(1), rows(2)]
    groups[1][0]["prediction"] = "bad"

    async def main():
        out = await log.write_many(groups)
        await log.aclose()
        return out

    out = asyncio.run(main())
    assert out[0] is None and out[2] is None and "invalid input syntax" in str(out[1])
    assert store.ids_in_order() == [r["request_id"] for g in (groups[0], groups[2]) for r in g]
    store.real.dispose()
