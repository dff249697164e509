"""The checkpoint is exact across restarts; id gaps wait out the grace period; windows by count and time."""

from __future__ import annotations

import datetime as dt

import pytest

from driftwatch.store import Store
from monitors.source import Checkpoint, IdRanges, Source

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
KEY = ("m", "v1")


class Clock:
    def __init__(self, t: float = T0.timestamp()):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(store_url) -> Store:
    """SQLite and the real PostgreSQL (``store_url`` in tests/conftest.py)."""
    s = Store(store_url)
    s.create_all()
    yield s
    s.dispose()


def rows(ids, *, version="v1", ts=T0, step=0.0):
    return [{"id": i, "request_id": f"r{i}", "ts": ts + dt.timedelta(seconds=step * k), "model_name": "m",
             "model_version": version, "features": {"x": float(i)}, "prediction": i % 2,
             "probabilities": [0.5, 0.5], "latency_ms": 1.0} for k, i in enumerate(ids)]


def insert(store: Store, ids, **kw) -> None:
    store.insert_predictions(rows(list(ids), **kw))


def source(store: Store, clock=None, **kw) -> Source:
    s = Source(store, window_size=kw.pop("window_size", 50), clock=clock or Clock(), page_rows=kw.pop("page_rows", 16), **kw)
    s.follow(KEY)
    return s


def run_stream(store: Store, batches: list[range], restart_after: set[int], crash_after: set[int]) -> list[tuple]:
    """Feed batches; evaluate when >= 20 new rows; 'restart' (new Source from the stored checkpoint) after some batches.

    A crash loses whatever was consumed since the last recorded run.
    """
    runs = []
    src = source(store)
    for b, ids in enumerate(batches):
        insert(store, ids)
        src.poll()
        if src.window.new_rows >= 20:
            w = src.window_rows()
            runs.append((w[0]["id"], w[-1]["id"], len(w), src.window.new_rows))
            store.add_monitor_run({"ts": T0, "model_name": "m", "model_version": "v1", "rows": len(w),
                                   "results": {}, "first_prediction_id": w[0]["id"], "last_prediction_id": w[-1]["id"]},
                                  state={"checkpoint": src.state()})
            src.mark_evaluated()
        if b in restart_after | crash_after:
            src = source(store)
            src.load(store.get_state("checkpoint"))
    return runs


def test_restart_resumes_exactly(store, tmp_path):
    batches = [range(1 + 13 * k, 1 + 13 * (k + 1)) for k in range(20)]  # 260 rows, runs every 2nd batch
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    other.create_all()
    plain = run_stream(other, batches, set(), set())
    restarted = run_stream(store, batches, restart_after={1, 5, 6, 12}, crash_after={3, 8, 16})
    assert restarted == plain
    assert sum(r[3] for r in plain) == 260 - 260 % 26  # every row counted once (the last batch is pending)
    assert all(r[2] == 50 or r[0] == 1 for r in plain)  # the count window is full once 50 rows exist


def test_gap_blocks_the_frontier_until_the_grace_period_passes(store):
    clock = Clock()
    src = source(store, clock, grace_seconds=30)
    insert(store, [1, 2, 3, 5, 6])          # 4 is still in flight (committed later)
    assert src.poll().new == 5
    assert src.checkpoint.frontier == 3 and 5 in src.checkpoint.seen
    clock.t += 10
    insert(store, [4])
    p = src.poll()
    assert p.new == 1 and p.lost == []       # the late row is consumed, the re-read 5 and 6 are not recounted
    assert src.checkpoint.frontier == 6 and not src.checkpoint.seen
    assert [r["id"] for r in src.window_rows()] == [1, 2, 3, 5, 6, 4]

    insert(store, [8, 9])                     # 7 never commits (rolled back, or burnt by ON CONFLICT)
    src.poll()
    clock.t += 29
    assert src.poll().lost == [] and src.checkpoint.frontier == 6
    clock.t += 2
    assert src.poll().lost == [(7, 7)] and src.checkpoint.frontier == 9


def test_gap_survives_a_restart(store):
    clock = Clock()
    src = source(store, clock, grace_seconds=30)
    insert(store, [1, 2, 4, 5])
    src.poll()
    state = src.state()
    assert state["frontier"] == 2 and state["seen"] == [[4, 5, clock.t]]
    insert(store, [3, 6])
    again = source(store, clock, grace_seconds=30)
    again.load(state)
    assert [r["id"] for r in again.window_rows()] == [1, 2, 4, 5]   # the window is rebuilt, nothing new yet
    assert again.window.new_rows == 0
    p = again.poll()
    assert p.new == 2 and again.checkpoint.frontier == 6


def test_time_window(store):
    clock = Clock(T0.timestamp() + 100)
    src = source(store, clock, window_seconds=30)
    insert(store, range(1, 101), step=1.0)   # one row a second, ts T0 .. T0+99
    src.poll()
    ids = [r["id"] for r in src.window_rows()]
    assert ids == list(range(71, 101))       # ts >= now - 30 s
    clock.t += 10
    assert len(src.window_rows()) == 20


def test_other_versions_are_consumed_not_windowed_and_kept_for_a_promotion(store):
    src = source(store)
    insert(store, range(1, 11))
    insert(store, range(11, 16), version="v2")
    p = src.poll()
    assert p.new == 15 and len(src.window_rows()) == 10
    src.follow(("m", "v2"))                  # promotion noticed after v2 rows were read
    assert [r["id"] for r in src.window_rows()] == list(range(11, 16))
    assert src.window.new_rows == 5


def test_id_ranges_round_trip():
    r = IdRanges()
    for i in (1, 2, 3, 7, 5, 6, 10):
        r.add(i, float(i))
    assert r.to_list() == [[1, 3, 1.0], [5, 7, 5.0], [10, 10, 10.0]]
    assert IdRanges(r.to_list()).to_list() == r.to_list()
    cp = Checkpoint(frontier=0, seen=r)
    assert cp.advance(now=12.0, grace_seconds=5) == [(4, 4)]      # seen at 5.0: old enough
    assert cp.frontier == 7 and cp.seen.to_list() == [[10, 10, 10.0]]


def test_rows_above_a_gap_are_not_reread(store):
    """Even with more rows pending above a gap than one poll reads, new rows keep flowing."""
    clock = Clock()
    src = source(store, clock, grace_seconds=30, max_rows_per_poll=40)
    insert(store, range(2, 42))               # id 1 is in flight
    assert src.poll().new == 40 and src.checkpoint.frontier == 0
    insert(store, range(42, 52))
    p = src.poll()
    assert (p.rows, p.new) == (10, 10)        # only the new rows were read
    insert(store, [1])
    p = src.poll()
    assert (p.rows, p.new) == (1, 1) and src.checkpoint.frontier == 51


@pytest.mark.postgres
def test_out_of_order_commits_on_postgresql(pg_url):
    """Two writers: the row with the lower id commits last, and is still consumed, once."""
    from sqlalchemy import insert

    from driftwatch.store import T

    store = Store(pg_url)
    store.create_all()
    try:
        clock = Clock()
        src = source(store, clock, grace_seconds=30)
        slow = store.engine.connect()
        tx = slow.begin()
        slow.execute(insert(T.predictions), [{k: v for k, v in r.items() if k != "id"} for r in rows([0])])
        store.insert_predictions([{k: v for k, v in r.items() if k != "id"} for r in rows([1, 2])])
        p = src.poll()
        assert p.new == 2 and src.checkpoint.frontier == 0       # id 1 is taken, not committed: wait
        clock.t += 5
        tx.commit()
        slow.close()
        p = src.poll()
        assert p.new == 1 and p.lost == [] and src.checkpoint.frontier == 3
        assert sorted(r["request_id"] for r in src.window_rows()) == ["r0", "r1", "r2"]
    finally:
        store.dispose()
