"""Durable request log with group commit and a spool for store outages.

Request handlers call ``await log.write(rows)``; one writer thread commits
everything that queued up meanwhile in a single transaction, then wakes the
handlers. A response is sent only after its rows are committed — in the
store, or (store unreachable) fsynced to the local spool, which is shipped in
order as soon as a probe sees the store again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable

from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from driftwatch.store import Store
from service.spool import Spool

log = logging.getLogger("driftwatch.requestlog")


class _LoopWaiter(Future):
    """What ``write`` waits on: the writer settles it like any ``Future``, then
    ``wake`` settles the asyncio twins on their loop, a whole commit in one
    ``call_soon_threadsafe`` (one loop wake-up, not one per request)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__()
        self.loop = loop
        self.aio = loop.create_future()

    @staticmethod
    def wake(items: list[tuple[Any, Future]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_LoopWaiter]] = {}
        for _, fut in items:
            if isinstance(fut, _LoopWaiter):
                by_loop.setdefault(fut.loop, []).append(fut)
        for loop, waiters in by_loop.items():
            try:
                loop.call_soon_threadsafe(_LoopWaiter._settle, waiters)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    @staticmethod
    def _settle(waiters: list["_LoopWaiter"]) -> None:
        for w in waiters:
            if w.aio.done():  # the request was cancelled meanwhile
                continue
            e = w.exception()
            if e is None:
                w.aio.set_result(None)
            else:
                w.aio.set_exception(e)


def is_outage(e: BaseException) -> bool:
    """Connection trouble (spool and retry) as opposed to rows the store refuses (fail them)."""
    return isinstance(e, (OperationalError, InterfaceError)) or bool(getattr(e, "connection_invalidated", False))


class RequestLog:
    def __init__(self, store: Store, spool: Spool, *, max_batch: int = 512, retry_seconds: float = 1.0,
                 on_stored: Callable[[int], None] = lambda n: None,
                 on_backlog: Callable[[int], None] = lambda n: None):
        self.store, self.spool = store, spool
        self.max_batch, self.retry_seconds = max_batch, retry_seconds
        self.on_stored, self.on_backlog = on_stored, on_backlog
        self._pending: deque[tuple[list[dict[str, Any]], Future]] = deque()
        self._cv = threading.Condition()
        self._store_up = True
        self._stop = False
        self._writer = threading.Thread(target=self._run, name="requestlog-writer", daemon=True)
        self._prober = threading.Thread(target=self._probe, name="requestlog-prober", daemon=True)
        self._next_orphan_check = 0.0
        self._kick_loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> "RequestLog":
        self._writer.start()
        self._prober.start()
        return self

    def submit(self, rows: list[dict[str, Any]]) -> Future:
        fut: Future = Future()
        with self._cv:
            if self._stop:
                raise RuntimeError("request log is closed")
            self._pending.append((rows, fut))
            self._cv.notify()
        return fut

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Return once ``rows`` are durable (store or spool); raise if neither worked.

        The writer is woken once per event-loop turn, after every request of
        that turn has queued its rows (requests resumed by the same model call
        share one commit), and wakes the loop once per commit.
        """
        loop = asyncio.get_running_loop()
        waiter = _LoopWaiter(loop)
        with self._cv:
            if self._stop:
                raise RuntimeError("request log is closed")
            self._pending.append((rows, waiter))
        if self._kick_loop is not loop:
            self._kick_loop = loop
            loop.call_soon(self._kick)
        await waiter.aio

    def _kick(self) -> None:
        self._kick_loop = None
        with self._cv:
            self._cv.notify()

    @property
    def store_up(self) -> bool:
        return self._store_up

    # -- writer thread -------------------------------------------------------
    def _take(self) -> list[tuple[list[dict[str, Any]], Future]]:
        with self._cv:
            while not self._pending and not self._stop:
                self._cv.wait(timeout=self.retry_seconds)
                if self._store_up and (self.spool.pending or time.monotonic() >= self._next_orphan_check):
                    break
            items, n = [], 0
            while self._pending and (n < self.max_batch or not items):
                rows, fut = self._pending.popleft()
                items.append((rows, fut))
                n += len(rows)
            return items

    def _run(self) -> None:
        while True:
            items = self._take()
            if not items and self._stop:
                return
            if self._store_up:
                self._guard(self._ship_spool)
            if self._store_up and time.monotonic() >= self._next_orphan_check:
                self._guard(self._ship_orphans)
            if items:
                try:
                    self._commit(items)
                except Exception as e:  # noqa: BLE001 - fail these requests; a dead writer would hang all later ones
                    log.exception("request log: cannot log %d requests", len(items))
                    for _, fut in items:
                        if not fut.done():
                            fut.set_exception(e)
                _LoopWaiter.wake(items)

    def _guard(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - keep the writer alive; the rows stay spooled for the next try
            log.exception("request log: %s failed", step.__name__)
            self._mark_down(e)  # retried after the next probe, not in a busy loop

    def _commit(self, items: list[tuple[list[dict[str, Any]], Future]]) -> None:
        rows = [r for batch, _ in items for r in batch]
        error: BaseException | None = None
        if self._store_up and not self.spool.pending:
            try:
                self.store.insert_predictions(rows)
                self.on_stored(len(rows))
            except SQLAlchemyError as e:
                if not is_outage(e):
                    self._commit_each(items, e)
                    return
                self._mark_down(e)
                error = self._to_spool(rows)
        else:
            error = self._to_spool(rows)
        for _, fut in items:
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)

    def _commit_each(self, items: list[tuple[list[dict[str, Any]], Future]], first: BaseException) -> None:
        """The store is up but refused the batch as data: isolate the requests it refuses.

        Those fail (nothing acknowledged, nothing spooled to block the queue); the rest commit.
        """
        log.error("request log: the store refused a batch (%s); committing request by request",
                  str(first).splitlines()[0])
        for rows, fut in items:
            try:
                self.store.insert_predictions(rows)
                self.on_stored(len(rows))
                fut.set_result(None)
            except SQLAlchemyError as e:
                if is_outage(e):
                    self._mark_down(e)
                    err = self._to_spool(rows)
                    fut.set_result(None) if err is None else fut.set_exception(err)
                else:
                    fut.set_exception(e)

    def _to_spool(self, rows: list[dict[str, Any]]) -> BaseException | None:
        try:
            self.spool.append(rows)
            self.on_backlog(self.spool.pending)
            return None
        except OSError as e:  # disk full, read-only: the request fails, nothing is acknowledged
            log.error("cannot spool %d rows: %s", len(rows), e)
            return e

    def _ship_spool(self) -> None:
        if not self.spool.pending:
            return
        try:
            for batch in self.spool.drain_batches(self.max_batch):
                self.store.insert_predictions(batch)
            shipped = self.spool.pending
            self.spool.clear()
            self.on_stored(shipped)
            self.on_backlog(0)
            log.warning("store is back: shipped %d spooled rows", shipped)
        except SQLAlchemyError as e:
            self._mark_down(e)

    def _ship_orphans(self) -> None:
        self._next_orphan_check = time.monotonic() + 10.0
        try:
            n = self.spool.ship_orphans(self.store.insert_predictions)
            if n:
                self.on_stored(n)
                log.warning("shipped %d rows spooled by a process that stopped", n)
        except (SQLAlchemyError, OSError) as e:
            self._mark_down(e)

    def _mark_down(self, e: BaseException) -> None:
        if self._store_up:
            log.error("store unreachable, spooling request-log rows: %s", str(e).splitlines()[0])
        self._store_up = False

    # -- prober thread: finds out, off the hot path, when the store is back ---
    def _probe(self) -> None:
        while not self._stop:
            time.sleep(self.retry_seconds)
            if self._store_up:
                continue
            try:
                with self.store.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                with self._cv:
                    self._store_up = True
                    self._cv.notify()
            except SQLAlchemyError:
                pass

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._writer.is_alive():
            self._writer.join(timeout)
        self.spool.close()
