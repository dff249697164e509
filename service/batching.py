"""Adaptive batching of model calls.

Requests queue; one task takes what is queued (up to ``max_size`` instances,
one model snapshot per call) and calls the model. Before a call it lets more
requests join, for at most ``max_wait_ms`` in all:

* those the event loop is already handling: it yields to the loop until the
  queue stops growing;
* while the batch is smaller than the largest one of the last second
  (clients that got their answers together send their next requests
  together), those that arrive within ``gap_ms`` of the last one. Waiting
  sleeps; it does not spin.

Under no load a request is predicted almost at once (previous batch: 1; two
idle loop turns). Under load calls grow and their fixed cost (pandas frame,
pipeline overhead: ~5 ms for a scikit-learn pipeline whether it predicts 1 row
or 100) is shared.

``settle`` (optional) runs after each call and before its requests are
answered: the request log commits the call's rows there, one transaction per
call, and each request gets back its request ids (or the error that failed
it). Requests are resumed once, with everything they need to answer.

``inline=True`` calls the model on the event loop thread. On a core shared
by the loop and the model that is cheaper than a worker thread: no GIL
hand-offs (a thread gets the GIL back only every switch interval, 5 ms), and
the loop parses every pending request before the next call instead of a few
between GIL switches, so calls are fewer and larger. ``inline=False`` runs
calls in a worker thread (for models that release the GIL for long).

>>> import asyncio
>>> calls = []
>>> def fn(model, recs):
...     calls.append(len(recs))
...     return [r * 2 for r in recs], None
>>> async def main():
...     b = Batcher(fn, max_size=8)
...     out = await asyncio.gather(*(b.predict("m", [i]) for i in range(5)))
...     await b.close()
...     return out
>>> [o.preds for o in asyncio.run(main())]
[[0], [2], [4], [6], [8]]
>>> calls
[5]
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

PredictFn = Callable[[Any, list], tuple[list, list | None]]
# settle(model, [(records, tag) per request], preds, probas) -> one value or exception per request
SettleFn = Callable[[Any, list[tuple[list, Any]], list, list | None], Awaitable[list[Any]]]


class Answer(NamedTuple):
    preds: list
    probas: list | None
    settled: Any = None  # what ``settle`` returned for this request (None without one)

# a batch stops growing after this many consecutive loop turns without a new request ...
IDLE_TURNS = 2
# ... unless it is smaller than the previous one: then it waits this long for each next request
GAP_MS = 1.0  # uvloop (libuv) timers have millisecond resolution
# ... where "previous" means the largest call of the last this many seconds
PEAK_SECONDS = 1.0


class Batcher:
    def __init__(self, fn: PredictFn, max_size: int = 64, max_wait_ms: float = 5.0, inline: bool = True,
                 gap_ms: float = GAP_MS, on_call: Callable[[int], None] = lambda n: None,
                 settle: SettleFn | None = None):
        self.fn = fn
        self.settle = settle
        self.on_call = on_call  # told the number of instances of every model call
        self.max_size = max(1, max_size)
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.gap = max(0.0, gap_ms) / 1000.0
        self.inline = inline
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._arrival: asyncio.Future | None = None  # set when a request queues while _gather waits
        # requests predicted but not answered yet (their settle, e.g. a commit, is running). While there are any, a
        # batch waits up to max_wait_ms for more requests instead of gap_ms: those clients send their next requests
        # as soon as they are answered. Without it, a commit longer than the gap splits the clients into two
        # cohorts: twice the model calls for the same requests.
        self.answering = 0
        self._settling: set[asyncio.Task] = set()  # calls whose settle is still running
        self._peak = 1  # most requests in one call lately (see _note_call)
        self._peak_at = 0.0
        self.calls = 0

    async def _call(self, model: Any, records: list) -> tuple[list, list | None]:
        self.on_call(len(records))
        if self.inline:
            return self.fn(model, records)
        return await asyncio.to_thread(self.fn, model, records)

    async def predict(self, model: Any, records: list, tag: Any = None) -> Answer:
        """Predictions for ``records`` (and what ``settle`` made of them; ``tag`` is passed to it)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.max_size == 1 or len(records) >= self.max_size:  # a call of its own
            self.calls += 1
            preds, probas = await self._call(model, records)
            await self._answer(model, [(model, records, fut, tag)], preds, probas)
            return fut.result()
        if self._task is None:
            self._task = loop.create_task(self._run())
        self._queue.put_nowait((model, records, fut, tag))
        if self._arrival is not None and not self._arrival.done():
            self._arrival.set_result(None)
        return await fut

    async def _next_arrival(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self._arrival = loop.create_future()
        timer = loop.call_later(timeout, _resolve, self._arrival)
        try:
            await self._arrival
        finally:
            timer.cancel()
            self._arrival = None

    async def _gather(self, first: tuple) -> tuple[list[tuple], tuple | None]:
        """``first`` plus what queues up while the loop handles the requests it already has."""
        loop = asyncio.get_running_loop()
        model, batch, n = first[0], [first], len(first[1])
        deadline = loop.time() + self.max_wait
        idle = 0
        while n < self.max_size:
            if self._queue.empty():
                now = loop.time()
                if now >= deadline:
                    break
                if idle < IDLE_TURNS:
                    idle += 1
                    await asyncio.sleep(0)
                    continue
                if self.answering and self.gap > 0:  # requests answered soon: their clients come back right after
                    await self._next_arrival(deadline - now)
                    continue
                if len(batch) >= self._peak or self.gap <= 0 or idle > IDLE_TURNS:
                    break
                idle += 1  # one wait per arrival: if nothing comes within the gap, stop
                await self._next_arrival(min(self.gap, deadline - now))
                continue
            idle = 0
            item = self._queue.get_nowait()
            if item[0] is not model or n + len(item[1]) > self.max_size:
                return batch, item  # a new model snapshot, or too big: next call
            batch.append(item)
            n += len(item[1])
        return batch, None

    async def _run(self) -> None:
        carry = None
        while True:
            first = carry or await self._queue.get()
            batch, carry = await self._gather(first)
            self._note_call(len(batch), asyncio.get_running_loop().time())
            model = first[0]
            records = [r for _, recs, _, _ in batch for r in recs]
            self.calls += 1
            try:
                preds, probas = await self._call(model, records)
            except Exception as e:  # noqa: BLE001 - each waiting request gets the error
                for _, _, fut, _ in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            if self.settle is None:
                self._deliver(batch, preds, probas, None)
            else:  # a task of its own: the next call can be gathered (and made) while this one's rows commit
                task = asyncio.get_running_loop().create_task(self._answer(model, batch, preds, probas))
                self._settling.add(task)  # the loop keeps only a weak reference to a task
                task.add_done_callback(self._settling.discard)

    async def _answer(self, model: Any, batch: list[tuple], preds: list, probas: list | None) -> None:
        """Settle one call's requests (if there is a ``settle``), then resume them."""
        if self.settle is None:
            self._deliver(batch, preds, probas, None)
            return
        self.answering += len(batch)
        try:
            settled = await self.settle(model, [(recs, tag) for _, recs, _, tag in batch], preds, probas)
        except BaseException as e:
            for _, _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(e if isinstance(e, Exception) else RuntimeError("request cancelled"))
            if not isinstance(e, Exception):
                raise
            return
        finally:
            self.answering -= len(batch)
        self._deliver(batch, preds, probas, settled)

    @staticmethod
    def _deliver(batch: list[tuple], preds: list, probas: list | None, settled: list | None) -> None:
        i = 0
        for k, (_, recs, fut, _) in enumerate(batch):
            j = i + len(recs)
            if not fut.done():
                extra = settled[k] if settled is not None else None
                if isinstance(extra, BaseException):
                    fut.set_exception(extra)
                else:
                    fut.set_result(Answer(preds[i:j], probas[i:j] if probas is not None else None, extra))
            i = j

    def _note_call(self, requests: int, now: float) -> None:
        """Track the most requests one call took within the last ``PEAK_SECONDS``.

        A batch smaller than that waits (``gap_ms`` per arrival) for the rest. With the previous call's size as
        the yardstick instead, a stall that once split the clients into two cohorts (each answered while the
        other one's call runs) kept them split for good: twice the calls for the same requests.
        """
        if requests >= self._peak or now - self._peak_at > PEAK_SECONDS:
            self._peak, self._peak_at = requests, now

    async def close(self, timeout: float = 10.0) -> None:
        """Stop calling the model; calls already made finish settling (their rows commit) for up to ``timeout``."""
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=timeout)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
