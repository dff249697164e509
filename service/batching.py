"""Adaptive batching of model calls.

While the model is busy, requests queue; the next call takes everything
queued (up to ``max_size`` instances, one model snapshot per call). Under no
load a request is predicted at once; under load, calls grow and their fixed
cost (pandas frame, pipeline overhead) is shared.

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
>>> [o[0] for o in asyncio.run(main())]
[[0], [2], [4], [6], [8]]
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

PredictFn = Callable[[Any, list], tuple[list, list | None]]


class Batcher:
    def __init__(self, fn: PredictFn, max_size: int = 64):
        self.fn = fn
        self.max_size = max(1, max_size)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.calls = 0

    async def predict(self, model: Any, records: list) -> tuple[list, list | None]:
        if self.max_size == 1 or len(records) >= self.max_size:
            return await asyncio.to_thread(self.fn, model, records)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((model, records, fut))
        return await fut

    async def _run(self) -> None:
        carry = None
        while True:
            first = carry or await self._queue.get()
            carry = None
            model, batch = first[0], [first]
            n = len(first[1])
            while not self._queue.empty() and n < self.max_size:
                item = self._queue.get_nowait()
                if item[0] is not model or n + len(item[1]) > self.max_size:
                    carry = item
                    break
                batch.append(item)
                n += len(item[1])
            records = [r for _, recs, _ in batch for r in recs]
            self.calls += 1
            try:
                preds, probas = await asyncio.to_thread(self.fn, model, records)
            except Exception as e:  # noqa: BLE001 - each waiting request gets the error
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            i = 0
            for _, recs, fut in batch:
                j = i + len(recs)
                if not fut.done():
                    fut.set_result((preds[i:j], probas[i:j] if probas is not None else None))
                i = j

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
