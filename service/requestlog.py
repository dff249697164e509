"""Durable request log with group commit and a spool for store outages.

Request handlers call ``await log.write(rows)``; everything queued during one
turn of the event loop is committed in a single transaction, then the handlers
resume. A response is sent only after its rows are committed — in the store,
or (store unreachable) fsynced to the local spool, which is shipped in order
as soon as a probe sees the store again.

Two paths commit:

* the fast path: the event loop appends fresh rows itself through an
  appender (``driftwatch.store.appender``: a plain sqlite3 connection, or
  psycopg's async COPY), with no thread hand-off;
* the writer thread: everything else — rows the fast path could not commit
  (another process held the SQLite write lock, the store failed or refused
  them), every row while the store is down or the spool is not empty, the
  spool and orphan shipping, checkpoints. It inserts with "skip ids already
  stored", so a commit whose outcome the fast path could not know (a
  connection lost mid-commit) is retried safely.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from driftwatch.store import Store
from service.spool import Spool

log = logging.getLogger("driftwatch.requestlog")


class _LoopWaiter(Future):
    """What a request handed to the writer thread waits on: the writer settles it like any ``Future``, then
    ``wake`` settles the asyncio twins on their loop, a whole commit in one ``call_soon_threadsafe`` (one
    loop wake-up, not one per request)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, aio: asyncio.Future | None = None):
        super().__init__()
        self.loop = loop
        self.aio = aio if aio is not None else loop.create_future()

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
    def _settle(waiters: list[_LoopWaiter]) -> None:
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
    def __init__(self, store: Store, spool: Spool, *, max_batch: int = 2048, retry_seconds: float = 1.0,
                 on_stored: Callable[[int], None] = lambda n: None,
                 on_backlog: Callable[[int], None] = lambda n: None,
                 appender: Any = None, timeout: float = 5.0,
                 on_commit: Callable[[str, float], None] = lambda path, seconds: None):
        self.store, self.spool = store, spool
        self.appender, self.timeout = appender, timeout
        self.on_commit = on_commit  # told ("loop" | "writer", seconds) of every commit that stored rows
        self._fast: deque[tuple[list[dict[str, Any]], asyncio.Future]] = deque()
        self._flushing = False
        self._flush_task: asyncio.Task | None = None
        self._checkpoint_due = False
        self.fast_commits = self.handed_off = 0
        self._next_handoff_warning = 0.0
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

    def start(self) -> RequestLog:
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

        Rows queued during one event-loop turn share one commit, made on the
        loop by the appender; while the store is down, the spool is not empty,
        or without an appender, the writer thread commits them.
        """
        fut = asyncio.get_running_loop().create_future()
        self._enqueue([(rows, fut)])
        await fut

    async def write_many(self, groups: list[list[dict[str, Any]]]) -> list[BaseException | None]:
        """``write`` for several requests at once (one model call's): what failed each, None where durable.

        One commit for all of them when it can; a request the store refuses fails alone.
        """
        loop = asyncio.get_running_loop()
        items = [(rows, loop.create_future()) for rows in groups]
        self._enqueue(items, now=True)
        if not all(fut.done() for _, fut in items):
            await asyncio.wait([fut for _, fut in items])
        return [fut.exception() for _, fut in items]

    def _enqueue(self, items: list[tuple[list[dict[str, Any]], asyncio.Future]], now: bool = False) -> None:
        """Queue ``items`` for the next commit: on the loop at its next turn (rows of every request resumed in this
        one share it), or at once if ``now`` and the appender is synchronous (one model call's rows: already all
        there is); through the writer thread if the loop may not commit them."""
        if self._stop:
            raise RuntimeError("request log is closed")
        loop = asyncio.get_running_loop()
        if self.appender is not None and self._fast_ok():
            self._fast.extend(items)
            if not self._flushing:
                self._flushing = True
                if now and not self.appender.is_async:
                    self._flush_sync(loop)
                else:
                    loop.call_soon(self._start_flush, loop)
        else:
            self._to_writer(items, loop)

    def _fast_ok(self) -> bool:
        # rows that may not overtake others go to the writer thread: the spool's, and anything it still holds
        return self._store_up and not self.spool.pending and not self._pending

    def _to_writer(self, items: list[tuple[list[dict[str, Any]], asyncio.Future]],
                   loop: asyncio.AbstractEventLoop) -> None:
        with self._cv:
            for rows, fut in items:
                self._pending.append((rows, _LoopWaiter(loop, fut)))
        if self._kick_loop is not loop:
            self._kick_loop = loop
            loop.call_soon(self._kick)

    # -- fast path: commits on the event loop ----------------------------------
    def _start_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.appender.is_async:
            self._flush_task = loop.create_task(self._flush_async(loop))
        else:
            self._flush_sync(loop)

    def _next_fast(self, loop: asyncio.AbstractEventLoop) -> tuple[list, list[dict[str, Any]]] | None:
        """The next requests (≤ ``max_batch`` rows) the loop may commit and their rows; None when none are left.
        Requests that may not go fast any more (the store went down meanwhile) go to the writer."""
        while self._fast:
            items, n = [], 0
            while self._fast and (n < self.max_batch or not items):
                rows, fut = self._fast.popleft()
                items.append((rows, fut))
                n += len(rows)
            if self._fast_ok():
                return items, [r for batch, _ in items for r in batch]
            self._to_writer(items, loop)
        return None

    def _flush_sync(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while (batch := self._next_fast(loop)) is not None:
                items, rows = batch
                t0 = time.perf_counter()
                try:
                    self.appender.append(rows)
                except Exception as e:  # noqa: BLE001 - locked by another process, failed, refused: the writer decides
                    self._hand_off(items, loop, e)
                else:
                    self._committed(items, len(rows), time.perf_counter() - t0)
        finally:
            self._flushing = False

    async def _flush_async(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while (batch := self._next_fast(loop)) is not None:
                items, rows = batch
                t0 = time.perf_counter()
                try:
                    await asyncio.wait_for(self.appender.append(rows), self.timeout)
                except asyncio.CancelledError:
                    self._to_writer(items, loop)  # shutting down: the writer still commits them
                    raise
                except Exception as e:  # noqa: BLE001 - timed out, failed, refused: the writer decides
                    self._hand_off(items, loop, e)
                else:
                    self._committed(items, len(rows), time.perf_counter() - t0)
        finally:
            self._flushing = False
            self._flush_task = None

    def _committed(self, items: list[tuple[list[dict[str, Any]], asyncio.Future]], n: int, seconds: float) -> None:
        self.fast_commits += 1
        self.on_stored(n)
        self.on_commit("loop", seconds)
        for _, fut in items:
            if not fut.done():
                fut.set_result(None)
        if self.appender.checkpoint_due and not self._checkpoint_due:
            with self._cv:
                self._checkpoint_due = True
                self._cv.notify()

    def _hand_off(self, items: list[tuple[list[dict[str, Any]], asyncio.Future]],
                  loop: asyncio.AbstractEventLoop, e: BaseException) -> None:
        self.handed_off += 1
        now = time.monotonic()
        if now >= self._next_handoff_warning:  # say so (at most once a minute): a misconfiguration shows here
            self._next_handoff_warning = now + 60.0
            # SQLite's write lock held by another writer (the monitor, feedback, another worker) is expected now and then
            level = logging.INFO if "database is locked" in str(e) else logging.WARNING
            log.log(level, "request log: the event loop could not commit %d requests (%s: %s); the writer thread "
                        "takes them (%d hand-offs so far)", len(items), type(e).__name__,
                        str(e).splitlines()[0] if str(e) else "", self.handed_off)
        self._to_writer(items, loop)

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
            while not self._pending and not self._stop and not self._checkpoint_due:
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
            if self._checkpoint_due:
                self._checkpoint_due = False
                try:
                    self.appender.checkpoint()
                except Exception as e:  # noqa: BLE001 - the next one catches up
                    log.warning("request log: WAL checkpoint failed: %s", e)
            if items:
                try:
                    self._commit(items)
                except Exception as e:  # fail these requests: a dead writer would hang all later ones
                    log.exception("request log: cannot log %d requests", len(items))
                    for _, fut in items:
                        if not fut.done():
                            fut.set_exception(e)
                _LoopWaiter.wake(items)

    def _guard(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as e:  # keep the writer alive; the rows stay spooled for the next try
            log.exception("request log: %s failed", step.__name__)
            self._mark_down(e)  # retried after the next probe, not in a busy loop

    def _commit(self, items: list[tuple[list[dict[str, Any]], Future]]) -> None:
        rows = [r for batch, _ in items for r in batch]
        error: BaseException | None = None
        if self._store_up and not self.spool.pending:
            try:
                t0 = time.perf_counter()
                self.store.insert_predictions(rows)
                self.on_commit("writer", time.perf_counter() - t0)
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

    async def aclose(self, timeout: float = 10.0) -> None:
        """On the loop: let the fast path finish, then stop the writer (it commits what it holds)."""
        task = self._flush_task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except Exception:  # noqa: BLE001 - what it had went to the writer thread
                pass
        if self._fast:  # queued but not flushed (e.g. the loop is stopping): the writer commits them
            self._to_writer(list(self._fast), asyncio.get_running_loop())
            self._fast.clear()
        await asyncio.to_thread(self.close, timeout)
        if self.appender is not None:
            if self.appender.is_async:
                await self.appender.aclose()
            else:
                self.appender.close()
                try:  # leave the WAL empty behind us
                    await asyncio.to_thread(self.appender.checkpoint)
                except Exception as e:  # noqa: BLE001 - the next writer checkpoints
                    log.warning("request log: final WAL checkpoint failed: %s", e)
                finally:
                    self.appender.close()

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._writer.is_alive():
            self._writer.join(timeout)
        self.spool.close()
