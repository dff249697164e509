"""Adaptive batching: concurrent requests share model calls, results go back to the right request, cohorts re-merge."""

from __future__ import annotations

import asyncio
import contextlib
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
    for i, (preds, probas) in enumerate(out):
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
    """Two cohorts of 8 whose answers take 3 ms (a commit) after the model call merge into one;
    without ``answering_now`` they stay split (the commit is longer than the 1 ms gap)."""

    def run(track: bool) -> float:
        model = Model(cost=0.003)

        async def main():
            b = Batcher(model, max_size=64, max_wait_ms=8)

            async def client(i):
                await asyncio.sleep(0.0015 if i >= 8 else 0.0)
                for _ in range(40):
                    await b.predict("v1", [i])
                    with (b.answering_now() if track else contextlib.nullcontext()):
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
