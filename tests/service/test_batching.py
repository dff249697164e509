"""Adaptive batching: concurrent requests share model calls, results go back to the right request, cohorts re-merge."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.batching import Batcher


class Model:
    """Doubles its inputs; each call costs ``cost`` seconds of the loop's time (like a scikit-learn call)."""

    def __init__(self, cost: float = 0.0, fail: bool = False):
        self.cost, self.fail, self.calls = cost, fail, []

    def __call__(self, snapshot, records):
        self.calls.append((snapshot, len(records)))
        if self.cost:
            time.sleep(self.cost)
        if self.fail:
            raise ValueError("model exploded")
        return [2 * r for r in records], [[0.5, 0.5]] * len(records)


def test_results_go_back_to_their_request_across_shared_calls():
    model = Model(cost=0.002)

    async def main():
        b = Batcher(model, max_size=64)
        out = await asyncio.gather(*(b.predict("v1", list(range(i, i + 1 + i % 3))) for i in range(40)))
        await b.close()
        return out

    out = asyncio.run(main())
    for i, (preds, probas, _) in enumerate(out):
        assert preds == [2 * r for r in range(i, i + 1 + i % 3)]
        assert len(probas) == len(preds)
    assert len(model.calls) < 10, model.calls


def test_a_call_never_exceeds_max_size_and_never_mixes_model_snapshots():
    model = Model()

    async def main():
        b = Batcher(model, max_size=10)
        reqs = [b.predict("v1" if i < 12 else "v2", [i, i]) for i in range(20)]
        out = await asyncio.gather(*reqs)
        await b.close()
        return out

    out = asyncio.run(main())
    assert [o[0] for o in out] == [[2 * i, 2 * i] for i in range(20)]
    assert all(n <= 10 for _, n in model.calls)
    assert sum(n for snap, n in model.calls if snap == "v1") == 24
    assert sum(n for snap, n in model.calls if snap == "v2") == 16


def test_a_failing_call_fails_each_of_its_requests_and_the_next_call_works():
    model = Model(fail=True)

    async def main():
        b = Batcher(model, max_size=8)
        first = await asyncio.gather(*(b.predict("v1", [i]) for i in range(5)), return_exceptions=True)
        model.fail = False
        second = await b.predict("v1", [7])
        await b.close()
        return first, second

    first, second = asyncio.run(main())
    assert all(isinstance(e, ValueError) for e in first)
    assert second[0] == [14]


def test_an_idle_request_is_not_held_back():
    model = Model()

    async def main():
        b = Batcher(model, max_size=64, max_wait_ms=200)
        t0 = time.perf_counter()
        await b.predict("v1", [1])
        took = time.perf_counter() - t0
        await b.close()
        return took

    assert asyncio.run(main()) < 0.05  # nowhere near max_wait_ms


def _mean_late_call(model: Model, last: int = 15) -> float:
    late = [n for _, n in model.calls[-last:]]
    return sum(late) / len(late)


def test_a_stall_that_splits_the_clients_into_two_cohorts_heals():
    """Half the clients stall once: for a while they are answered while the other half waits for the model.
    Waiting for the largest cohort of the last second (not the previous call's size) merges them again."""
    model = Model(cost=0.003)

    async def main():
        b = Batcher(model, max_size=64, max_wait_ms=8)

        async def client(i):
            for k in range(60):
                await b.predict("v1", [i])
                if k == 10 and i >= 8:
                    await asyncio.sleep(0.0015)
                await asyncio.sleep(0.0005)

        await asyncio.gather(*(client(i) for i in range(16)))
        await b.close()

    asyncio.run(main())
    assert _mean_late_call(model) >= 14, model.calls[-15:]


def test_requests_waiting_for_their_commit_are_waited_for():
    """Two cohorts of 8 whose answers take 3 ms (a commit) after the model call merge into one when the commit is
    the batcher's ``settle`` (it counts them as not answered yet); as a wait after the answer, unknown to the
    batcher, they stay split (the commit is longer than the 1 ms gap)."""

    async def commit(model, requests, preds, probas):
        await asyncio.sleep(0.003)
        return [None] * len(requests)

    def run(track: bool) -> float:
        model = Model(cost=0.003)

        async def main():
            b = Batcher(model, max_size=64, max_wait_ms=8, settle=commit if track else None)

            async def client(i):
                await asyncio.sleep(0.0015 if i >= 8 else 0.0)
                for _ in range(40):
                    await b.predict("v1", [i])
                    if not track:
                        await asyncio.sleep(0.003)

            await asyncio.gather(*(client(i) for i in range(16)))
            await b.close()

        asyncio.run(main())
        return _mean_late_call(model)

    assert run(track=True) >= 14
    assert run(track=False) <= 9  # the control: what the hook fixes


@pytest.mark.parametrize("max_size", [1])
def test_max_size_one_calls_the_model_per_request(max_size):
    model = Model()

    async def main():
        b = Batcher(model, max_size=max_size)
        await asyncio.gather(*(b.predict("v1", [i]) for i in range(6)))
        await b.close()

    asyncio.run(main())
    assert [n for _, n in model.calls] == [1] * 6


class Settle:
    """Records each call's requests; answers each with its tag doubled, or fails the tags in ``fail``."""

    def __init__(self, delay: float = 0.0, fail=(), explode: bool = False):
        self.delay, self.fail, self.explode, self.calls = delay, set(fail), explode, []

    async def __call__(self, model, requests, preds, probas):
        self.calls.append([tag for _, tag in requests])
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.explode:
            raise OSError("log exploded")
        return [KeyError(tag) if tag in self.fail else 2 * tag for _, tag in requests]


def test_settle_runs_once_per_call_and_each_request_gets_its_own_value():
    model, settle = Model(cost=0.002), Settle(fail={3})

    async def main():
        b = Batcher(model, max_size=64, settle=settle)
        out = await asyncio.gather(*(b.predict("v1", [i], tag=i) for i in range(8)), return_exceptions=True)
        await b.close()
        return out

    out = asyncio.run(main())
    assert len(settle.calls) == len(model.calls) and sorted(t for c in settle.calls for t in c) == list(range(8))
    assert isinstance(out[3], KeyError), "a request its settle failed fails alone"
    for i, o in enumerate(out):
        if i != 3:
            assert o.preds == [2 * i] and o.settled == 2 * i


def test_a_settle_that_fails_as_a_whole_fails_its_requests_and_the_next_call_works():
    settle = Settle(explode=True)

    async def main():
        b = Batcher(Model(), max_size=8, settle=settle)
        first = await asyncio.gather(*(b.predict("v1", [i], tag=i) for i in range(4)), return_exceptions=True)
        settle.explode = False
        second = await b.predict("v1", [7], tag=7)
        await b.close()
        return first, second

    first, second = asyncio.run(main())
    assert all(isinstance(e, OSError) for e in first)
    assert second == (([14], [[0.5, 0.5]], 14))


def test_the_next_call_is_made_while_the_previous_one_settles():
    """A slow settle (a PostgreSQL commit) does not hold back the model call of requests that arrived meanwhile."""
    model, settle = Model(), Settle(delay=0.05)
    seen = {}

    async def main():
        b = Batcher(model, max_size=64, max_wait_ms=1, settle=settle)
        first = asyncio.ensure_future(b.predict("v1", [1], tag=1))
        await asyncio.sleep(0.01)  # the first call is made, its settle sleeps
        second = asyncio.ensure_future(b.predict("v1", [2], tag=2))
        await asyncio.sleep(0.02)
        seen["calls while settling"] = len(model.calls)
        seen["answering"] = b.answering
        await asyncio.gather(first, second)
        await b.close()

    asyncio.run(main())
    assert seen["calls while settling"] == 2 and seen["answering"] == 2


def test_a_request_with_a_call_of_its_own_is_settled_too():
    settle = Settle()

    async def main():
        b = Batcher(Model(), max_size=2, settle=settle)
        out = await b.predict("v1", [1, 2, 3], tag=5)
        await b.close()
        return out

    assert asyncio.run(main()) == ([2, 4, 6], [[0.5, 0.5]] * 3, 10)
    assert settle.calls == [[5]]


def test_close_lets_calls_already_made_finish_settling():
    settle = Settle(delay=0.05)

    async def main():
        b = Batcher(Model(), max_size=64, settle=settle)
        req = asyncio.ensure_future(b.predict("v1", [3], tag=3))
        await asyncio.sleep(0.01)  # the call is made, its settle (a commit) is in flight
        await b.close()
        return req.done() and req.result()

    assert asyncio.run(main()) == ([6], [[0.5, 0.5]], 6)
