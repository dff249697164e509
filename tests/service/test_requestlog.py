"""The request log: group commit, spooling while the store is down, shipping once it is back."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from sqlalchemy.exc import OperationalError

from driftwatch.store import Store, utcnow
from service.requestlog import RequestLog
from service.spool import Spool
from tests.helpers.service import wait_until


class _DownEngine:
    def connect(self):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("store down (test)"))


class FlakyStore:
    """A real SQLite store that a test can take down; counts transactions."""

    def __init__(self, url: str):
        self.real = Store(url)
        self.real.create_all()
        self.down = False
        self.fail_next = 0  # fail this many inserts, then work (the store flaps)
        self.gate: threading.Event | None = None  # the first insert waits for it
        self.transactions: list[list[str]] = []
        self.lock = threading.Lock()

    @property
    def engine(self):
        return _DownEngine() if self.down else self.real.engine

    def insert_predictions(self, rows):
        if self.gate is not None:
            gate, self.gate = self.gate, None
            assert gate.wait(30), "test gate never opened"
        with self.lock:
            if self.down or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                raise OperationalError("INSERT", {}, ConnectionResetError("store down (test)"))
        n = self.real.insert_predictions(rows)
        self.transactions.append([r["request_id"] for r in rows])
        return n

    def ids_in_order(self) -> list[str]:
        return [r["request_id"] for r in self.real.read_predictions(0, limit=100000)]


def rows(n: int = 1) -> list[dict]:
    return [dict(request_id=uuid.uuid4().hex, ts=utcnow(), model_name="m", model_version="v1",
                 features={"x": 1.0}, prediction=0, probabilities=[1.0, 0.0], latency_ms=1.0) for _ in range(n)]


@pytest.fixture
def make_log(tmp_path):
    made = []

    def make(store, **kw) -> tuple[RequestLog, dict]:
        counters = {"stored": 0, "backlog": []}

        def on_stored(n):
            counters["stored"] += n

        log = RequestLog(store, Spool(tmp_path / "spool"), on_stored=on_stored,
                         on_backlog=counters["backlog"].append, **{"retry_seconds": 0.05, **kw})
        made.append(log.start())
        return log, counters

    yield make
    for log in made:
        log.close()


@pytest.fixture
def store(tmp_path):
    s = FlakyStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.real.dispose()


_gates: list[threading.Event] = []


@pytest.fixture(autouse=True)
def _open_gates_at_the_end():
    """A failing test must not leave a writer thread blocked on a gate."""
    yield
    for ev in _gates:
        ev.set()
    _gates.clear()


def hold_first_commit(store) -> threading.Event:
    """The next insert blocks until the returned event is set."""
    gate = threading.Event()
    _gates.append(gate)
    store.gate = gate
    return gate


def test_group_commit_many_concurrent_writes_few_transactions(store, make_log):
    log, counters = make_log(store)
    gate = hold_first_commit(store)
    first = log.submit(rows(1))  # the writer takes it and blocks in the store ...
    wait_until(lambda: store.gate is None, 10, "the writer to start the first commit")
    batches = [rows(1 + i % 3) for i in range(200)]
    futures = []
    threads = [threading.Thread(target=lambda bs=batches[i::8]: futures.extend(log.submit(b) for b in bs))
               for i in range(8)]  # ... while 200 requests from 8 threads queue up
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    gate.set()
    for f in [first, *futures]:
        assert f.result(timeout=30) is None
    n_rows = 1 + sum(len(b) for b in batches)
    assert len(futures) == 200
    assert len(store.transactions) <= 3, f"{len(store.transactions)} transactions for 201 writes"
    assert sorted(store.ids_in_order()) == sorted([first_id for first_id in store.transactions[0]] +
                                                  [r["request_id"] for b in batches for r in b])
    assert len(store.ids_in_order()) == n_rows
    assert counters["stored"] == n_rows


def test_batches_respect_max_batch(store, make_log):
    log, _ = make_log(store, max_batch=10)
    gate = hold_first_commit(store)
    first = log.submit(rows(1))
    wait_until(lambda: store.gate is None, 10, "the writer to start the first commit")
    futures = [log.submit(rows(3)) for _ in range(30)] + [log.submit(rows(25))]
    gate.set()
    for f in [first, *futures]:
        f.result(timeout=30)
    sizes = [len(t) for t in store.transactions]
    assert sum(sizes) == 1 + 90 + 25
    # a transaction stops taking requests once it has max_batch rows; requests are never split
    assert all(s < 10 + 25 for s in sizes), sizes
    assert sorted(sizes)[-2] <= 12, sizes
    assert len(sizes) >= 1 + 90 // 12, sizes


def test_async_write_waits_for_the_commit(store, make_log):
    log, _ = make_log(store)

    async def main():
        batches = [rows(2) for _ in range(50)]
        await asyncio.gather(*(log.write(b) for b in batches))
        return batches

    batches = asyncio.run(main())
    assert set(store.ids_in_order()) == {r["request_id"] for b in batches for r in b}


def test_store_down_rows_spooled_and_writes_succeed(store, make_log, tmp_path):
    log, counters = make_log(store)
    store.down = True
    batches = [rows(2) for _ in range(20)]
    for f in [log.submit(b) for b in batches]:
        assert f.result(timeout=30) is None, "the request is acknowledged: its rows are in the spool"
    assert store.ids_in_order() == []
    assert log.spool.pending == 40
    assert counters["backlog"][-1] == 40
    assert not log.store_up
    assert Spool(tmp_path / "other").backlog() == 0
    assert Spool(tmp_path / "spool").backlog() == 40


def test_store_back_rows_shipped_in_order_exactly_once(store, make_log):
    log, counters = make_log(store)
    before = [rows(1) for _ in range(5)]
    for f in [log.submit(b) for b in before]:
        f.result(timeout=30)
    store.down = True
    during = [rows(2) for _ in range(30)]
    for b in during:  # one at a time: the submission order is the order they must be stored in
        log.submit(b).result(timeout=30)
    assert log.spool.pending == 60
    store.down = False
    after = [rows(1) for _ in range(10)]
    for b in after:
        log.submit(b).result(timeout=30)  # may be spooled behind the backlog, never ahead of it
    wait_until(lambda: log.spool.pending == 0 and len(store.ids_in_order()) == 75, 20, "the spool to be shipped")
    expected = [r["request_id"] for b in before + during + after for r in b]
    assert store.ids_in_order() == expected, "shipped in order, before newer rows, each once"
    assert log.store_up
    assert counters["backlog"][-1] == 0
    assert counters["stored"] == 75


def test_store_flapping_while_shipping_still_exactly_once(store, make_log):
    log, counters = make_log(store, max_batch=7)
    store.down = True
    batches = [rows(1) for _ in range(50)]
    for b in batches:
        log.submit(b).result(timeout=30)
    store.fail_next = 0
    store.down = False
    # the 2nd and 3rd batches of the shipment fail: batch 1 gets shipped twice
    shipped_batches = {"n": 0}
    real_insert = store.insert_predictions

    def insert(rows_):
        shipped_batches["n"] += 1
        if shipped_batches["n"] in (2, 3):
            raise OperationalError("INSERT", {}, ConnectionResetError("flap"))
        return real_insert(rows_)

    store.insert_predictions = insert
    wait_until(lambda: log.spool.pending == 0, 20, "the spool to be shipped")
    assert store.ids_in_order() == [b[0]["request_id"] for b in batches]


def test_spool_failure_fails_the_request(store, make_log, monkeypatch):
    """Neither the store nor the disk: the request must not be acknowledged."""
    log, _ = make_log(store)
    store.down = True

    def full(rows_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(log.spool, "append", full)
    with pytest.raises(OSError):
        log.submit(rows(1)).result(timeout=30)


def test_close_commits_what_is_queued(store, tmp_path):
    log = RequestLog(store, Spool(tmp_path / "spool"), retry_seconds=0.05).start()
    gate = hold_first_commit(store)
    futures = [log.submit(rows(1))]
    wait_until(lambda: store.gate is None, 10, "the writer to start the first commit")
    futures += [log.submit(rows(1)) for _ in range(10)]
    closer = threading.Thread(target=log.close)
    closer.start()
    gate.set()
    closer.join(30)
    assert not closer.is_alive()
    for f in futures:
        f.result(timeout=1)
    assert len(store.ids_in_order()) == 11
    with pytest.raises(RuntimeError):
        log.submit(rows(1))


def test_orphan_spool_of_a_dead_process_is_shipped(store, tmp_path):
    dead = Spool(tmp_path / "spool")
    orphan_rows = rows(5)
    dead.append(orphan_rows)
    dead._own.close()  # what a crash does: the lock is gone, the file stays
    dead._own = None
    log = RequestLog(store, Spool(tmp_path / "spool"), retry_seconds=0.05).start()
    try:
        wait_until(lambda: len(store.ids_in_order()) == 5, 20, "the orphan spool to be shipped")
        assert store.ids_in_order() == [r["request_id"] for r in orphan_rows]
        assert Spool(tmp_path / "spool").backlog() == 0
    finally:
        log.close()


def test_writer_survives_an_unexpected_error(store, make_log):
    """A bug or a bad row must fail the requests concerned, not stop the writer (all later requests would hang)."""
    log, _ = make_log(store)
    real_insert = store.insert_predictions
    calls = {"n": 0}

    def insert(rows_):
        calls["n"] += 1
        if calls["n"] == 1:
            raise TypeError("Object of type Decimal is not JSON serializable")
        return real_insert(rows_)

    store.insert_predictions = insert
    with pytest.raises(TypeError):
        log.submit(rows(1)).result(timeout=30)
    ok = rows(1)
    log.submit(ok).result(timeout=30)
    assert store.ids_in_order() == [ok[0]["request_id"]]


class RefusingStore(FlakyStore):
    """Up, but refuses rows whose prediction is the string "bad" (like PostgreSQL refusing NaN in json)."""

    def insert_predictions(self, rows):
        from sqlalchemy.exc import DataError
        if any(r["prediction"] == "bad" for r in rows):
            raise DataError("INSERT", {}, ValueError("invalid input syntax for type json"))
        return super().insert_predictions(rows)


def test_rows_the_store_refuses_fail_their_request_only(tmp_path, make_log):
    store = RefusingStore(f"sqlite:///{tmp_path / 'refuse.db'}")
    log, counters = make_log(store)
    gate = hold_first_commit(store)
    first_rows = rows(1)
    first = log.submit(first_rows)
    wait_until(lambda: store.gate is None, 10, "the writer to start the first commit")
    good, bad = rows(3), rows(1)
    bad[0]["prediction"] = "bad"
    f_good, f_bad = log.submit(good), log.submit(bad)  # queued together: one batch
    gate.set()
    first.result(10)
    f_good.result(10)
    with pytest.raises(Exception, match="invalid input syntax"):
        f_bad.result(10)
    assert log.store_up and log.spool.pending == 0  # not mistaken for an outage, nothing spooled behind it
    later = rows(2)
    log.submit(later).result(10)
    assert store.ids_in_order() == [r["request_id"] for r in first_rows + good + later]
    store.real.dispose()
