"""New rows of the request log since the checkpoint, and the window of recent predictions.

The checkpoint is exact: a row is *consumed* once, and a restart that loads
the checkpoint state written with the last ``monitor_runs`` row consumes again
exactly the rows read after it.

**Ids can commit out of order.** With PostgreSQL and several writers, a
transaction that took id 104 may commit after the one that took 105; a
reader that moved its checkpoint to 105 would never see 104. So the
checkpoint is two things: ``frontier`` (every id at or below it was consumed,
or declared lost) and ``seen`` (ids above the frontier consumed already, as
ranges). Each poll reads the rows in the gaps between seen ranges and the
rows above the last seen id (never a seen row again), and moves the frontier
only across ids it has seen. A *gap* (a missing id
below a seen one) blocks the frontier until ``grace_seconds`` have passed
since the monitor first observed the row right above it: the gap row took its
id before that row did, so its transaction was already running then, and
unless it ran longer than the grace period it has committed by now (a gap
that stays empty is a rollback, or an id burnt by ``ON CONFLICT DO NOTHING``).
The observation time is the monitor's clock, not the row's ``ts``: ``ts`` is
set by the service before the write and spooled rows are shipped minutes
late with their old ``ts``. SQLite has a single writer and never leaves gaps.

The checkpoint is persisted only together with a ``monitor_runs`` row (see
``monitors.runner``): rows consumed after the last recorded window are read
again, as new, after a restart. ``load`` rebuilds the window from the
checkpoint's ``window_first_id`` on.

>>> r = IdRanges()
>>> for i in (3, 4, 5, 9): r.add(i, 0.0)
>>> r.to_list()
[[3, 5, 0.0], [9, 9, 0.0]]
>>> 4 in r, 6 in r
(True, False)
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from driftwatch.store import Store, as_utc

ModelKey = tuple[str, str]  # (model name, model version)


class IdRanges:
    """Disjoint sorted ranges of integer ids, each with the time its first id was observed."""

    def __init__(self, ranges: Iterable[Iterable[Any]] = ()):
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._seen_at: list[float] = []
        for start, end, *rest in ranges:  # as written by to_list: sorted, disjoint
            if self._ends and int(start) <= self._ends[-1] + 1:
                raise ValueError(f"id ranges must be sorted and disjoint: {list(ranges)!r}")
            self._starts.append(int(start))
            self._ends.append(int(end))
            self._seen_at.append(float(rest[0]) if rest else 0.0)

    def __contains__(self, i: int) -> bool:
        k = bisect.bisect_right(self._starts, i) - 1
        return k >= 0 and i <= self._ends[k]

    def __len__(self) -> int:
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def count(self) -> int:
        return sum(e - s + 1 for s, e in zip(self._starts, self._ends))

    def add(self, i: int, seen_at: float) -> None:
        k = bisect.bisect_right(self._starts, i) - 1
        if k >= 0 and i <= self._ends[k]:
            return
        joins_left = k >= 0 and self._ends[k] == i - 1
        joins_right = k + 1 < len(self._starts) and self._starts[k + 1] == i + 1
        if joins_left and joins_right:
            self._ends[k] = self._ends[k + 1]
            del self._starts[k + 1], self._ends[k + 1], self._seen_at[k + 1]
        elif joins_left:
            self._ends[k] = i
        elif joins_right:
            self._starts[k + 1] = i
            self._seen_at[k + 1] = min(self._seen_at[k + 1], seen_at)
        else:
            self._starts.insert(k + 1, i)
            self._ends.insert(k + 1, i)
            self._seen_at.insert(k + 1, seen_at)

    def first(self) -> tuple[int, int, float] | None:
        return (self._starts[0], self._ends[0], self._seen_at[0]) if self._starts else None

    def last(self) -> int | None:
        return self._ends[-1] if self._ends else None

    def pop_first(self) -> None:
        del self._starts[0], self._ends[0], self._seen_at[0]

    def drop_below(self, i: int) -> None:
        """Forget ids below ``i``."""
        while self._starts and self._ends[0] < i:
            self.pop_first()
        if self._starts and self._starts[0] < i:
            self._starts[0] = i

    def to_list(self) -> list[list[Any]]:
        return [[s, e, t] for s, e, t in zip(self._starts, self._ends, self._seen_at)]


@dataclass
class Checkpoint:
    """What has been consumed: all ids <= frontier, plus the ``seen`` ranges above it."""

    frontier: int = 0
    seen: IdRanges | None = None

    def __post_init__(self) -> None:
        self.seen = self.seen if self.seen is not None else IdRanges()

    def consumed(self, i: int) -> bool:
        return i <= self.frontier or i in self.seen

    def advance(self, now: float, grace_seconds: float) -> list[tuple[int, int]]:
        """Move the frontier over seen ids, and over gaps older than the grace period.

        Returns the gaps given up as lost, as (first, last) id pairs.
        """
        lost = []
        while (head := self.seen.first()) is not None:
            start, end, seen_at = head
            if start > self.frontier + 1:
                if now - seen_at < grace_seconds:
                    break
                lost.append((self.frontier + 1, start - 1))
            self.frontier = max(self.frontier, end)
            self.seen.pop_first()
        return lost

    def to_dict(self) -> dict[str, Any]:
        return {"frontier": self.frontier, "seen": self.seen.to_list()}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Checkpoint":
        d = d or {}
        return cls(frontier=int(d.get("frontier", 0)), seen=IdRanges(d.get("seen", ())))


class Window:
    """The most recent rows of one model version: the last ``size`` rows, or the last ``seconds``."""

    def __init__(self, size: int, seconds: float = 0.0, max_rows: int = 200_000):
        self.size, self.seconds = size, seconds
        self.rows: deque[dict[str, Any]] = deque(maxlen=size if seconds <= 0 else max_rows)
        self.new_rows = 0  # rows consumed into this window since the last evaluation

    def add(self, row: dict[str, Any], new: bool) -> None:
        self.rows.append(row)
        self.new_rows += new

    def current(self, now: dt.datetime) -> list[dict[str, Any]]:
        """The rows of the window at ``now`` (time windows drop rows older than ``seconds``)."""
        if self.seconds <= 0:
            return list(self.rows)
        cutoff = now - dt.timedelta(seconds=self.seconds)
        while self.rows and self.rows[0]["ts"] < cutoff:
            self.rows.popleft()
        return [r for r in self.rows if r["ts"] >= cutoff]

    def first_id(self) -> int | None:
        return min((r["id"] for r in self.rows), default=None)


@dataclass
class PollResult:
    rows: int = 0            # rows read from the store this poll (including seen ones re-read above a gap)
    new: int = 0             # rows consumed for the first time
    lost: list[tuple[int, int]] | None = None  # id gaps given up after the grace period


class Source:
    """Reads the request log from a checkpoint and keeps a window per model version.

    ``clock`` is the monitor's wall clock in epoch seconds (injected in tests).
    """

    def __init__(self, store: Store, *, window_size: int = 1000, window_seconds: float = 0.0,
                 grace_seconds: float = 30.0, page_rows: int = 5000, max_rows_per_poll: int = 200_000,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.window_size, self.window_seconds = window_size, window_seconds
        self.grace_seconds = grace_seconds
        self.page_rows, self.max_rows_per_poll = page_rows, max_rows_per_poll
        self.clock = clock
        self.checkpoint = Checkpoint()
        self.windows: dict[ModelKey, Window] = {}
        self.current: ModelKey | None = None
        self.total_new = 0

    # -- model following ------------------------------------------------------
    def follow(self, key: ModelKey) -> None:
        """Window the rows of ``key`` from now on; other versions' rows are consumed, not windowed.

        Rows of ``key`` already read (logged before the monitor noticed a
        promotion) stay in its window. Windows of other versions are dropped.
        """
        self.current = key
        self.windows = {key: self.windows.get(key) or self._new_window()}

    def _new_window(self) -> Window:
        return Window(self.window_size, self.window_seconds)

    @property
    def window(self) -> Window:
        if self.current is None:
            raise LookupError("Source.follow(model) first")
        return self.windows[self.current]

    # -- reading --------------------------------------------------------------
    def _pages(self, after_id: int, last_id: int | None = None,
               budget: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows with ``after_id < id`` (``<= last_id`` if given), in id order, at most ``budget`` rows."""
        budget = self.max_rows_per_poll if budget is None else budget
        while budget > 0:
            want = min(self.page_rows, budget)
            if last_id is not None:
                if after_id >= last_id:
                    return
                want = min(want, last_id - after_id)  # ids are unique integers: no more rows than ids
            page = self.store.read_predictions(after_id, want)
            if last_id is not None:
                page = [r for r in page if r["id"] <= last_id]
            if not page:
                return
            yield page
            if len(page) < want:
                return
            budget -= len(page)
            after_id = page[-1]["id"]

    def _gaps(self) -> list[tuple[int, int]]:
        """Id ranges above the frontier not seen yet, below the last seen id."""
        out, lo = [], self.checkpoint.frontier + 1
        for start, end, _ in self.checkpoint.seen.to_list():
            if start > lo:
                out.append((lo, start - 1))
            lo = end + 1
        return out

    def poll(self) -> PollResult:
        """Consume the rows that filled id gaps and the rows above the last seen id; move the frontier.

        Gaps are read range by range (a seen row is never re-read), unless
        there are many, then in one scan from the frontier.
        """
        now = self.clock()
        out = PollResult(lost=[])
        cp = self.checkpoint
        top = max(cp.frontier, cp.seen.last() or 0)
        gaps = self._gaps()
        if len(gaps) > 32:
            gaps = [(cp.frontier + 1, top)]
        pages = itertools.chain((page for lo, hi in gaps for page in self._pages(lo - 1, hi, budget=hi - lo + 1)),
                                self._pages(top))
        for page in pages:  # streamed: only the window keeps rows
            out.rows += len(page)
            for row in page:
                if cp.consumed(row["id"]):
                    continue
                cp.seen.add(row["id"], now)
                out.new += 1
                self._window_row(row, new=True)
        out.lost = cp.advance(now, self.grace_seconds)
        self.total_new += out.new
        return out

    def _window_row(self, row: dict[str, Any], new: bool) -> None:
        key = (row["model_name"], row["model_version"])
        w = self.windows.get(key)
        if w is None:
            if self.current is not None and key[0] != self.current[0]:
                return  # another model entirely: not ours to watch
            # a version we do not follow (yet): keep its latest rows in case it is promoted next
            if len(self.windows) >= 3:
                return
            w = self.windows[key] = self._new_window()
        row["ts"] = as_utc(row["ts"])
        w.add(row, new)

    # -- checkpoint -----------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-able checkpoint: what was consumed, and where the current window starts."""
        first = self.window.first_id() if self.current in self.windows else None
        return {**self.checkpoint.to_dict(), "window_first_id": first,
                "model": list(self.current) if self.current else None}

    def load(self, state: dict[str, Any] | None) -> None:
        """Resume from a checkpoint: rebuild the window from the store, consuming nothing twice.

        Rows from the window's first id on are re-read; those the checkpoint
        marks consumed go back into the window as old rows, the rest are new.
        """
        state = state or {}
        self.checkpoint = Checkpoint.from_dict(state)
        if state.get("model"):
            self.follow(tuple(state["model"]))
        start = state.get("window_first_id")
        if start is None or self.current is None:
            return
        cp = self.checkpoint
        last = cp.seen.last() or cp.frontier
        for page in self._pages(int(start) - 1):
            for row in page:
                if row["id"] > last:
                    return
                if not cp.consumed(row["id"]):
                    continue  # not in the checkpoint: the next poll reads it as new
                if (row["model_name"], row["model_version"]) == self.current:
                    self._window_row(row, new=False)

    def mark_evaluated(self) -> None:
        self.window.new_rows = 0

    def window_rows(self) -> list[dict[str, Any]]:
        return self.window.current(dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc))


# -- windows as batches ---------------------------------------------------------
def label_value(label: Any, classes: list[Any] | None) -> Any:
    """A feedback label in the type of the model's classes (``"1"`` -> ``1`` when classes are ints)."""
    if classes:
        for c in classes:
            if c == label or str(c) == str(label):
                return c
    return label


def to_batch(rows: list[dict[str, Any]], schema, classes: list[Any] | None,
             labels: dict[str, tuple[Any, dt.datetime]] | None = None):
    """The window's rows as a ``Batch`` (target = latest label, None where unlabeled), and label delays in seconds."""
    import numpy as np
    import pandas as pd

    from driftwatch.package import Batch

    labels = labels or {}
    features = schema.frame([r["features"] for r in rows])
    predictions = pd.Series([r["prediction"] for r in rows], dtype=object if classes else float)
    probas = [r["probabilities"] for r in rows]
    probabilities = np.asarray(probas, dtype=float) if probas and all(p is not None for p in probas) else None
    target, delays = [], []
    for r in rows:
        got = labels.get(r["request_id"])
        if got is None:
            target.append(None)
            continue
        target.append(label_value(got[0], classes))
        delays.append((as_utc(got[1]) - as_utc(r["ts"])).total_seconds())
    return Batch(features=features, predictions=predictions, probabilities=probabilities,
                 target=pd.Series(target, dtype=object)), delays


def rows_of_run(store: Store, run: dict[str, Any], page_rows: int = 5000) -> list[dict[str, Any]]:
    """The rows a recorded window held: its model version's rows between its first and last id, the last ``rows`` of them.

    A row that committed into an id gap after the window was evaluated is
    included; that is the only way the re-read can differ from the window.
    """
    first, last = run.get("first_prediction_id"), run.get("last_prediction_id")
    if first is None or last is None:
        return []
    key = (run["model_name"], run["model_version"])
    out: list[dict[str, Any]] = []
    after = int(first) - 1
    while True:
        page = store.read_predictions(after, page_rows)
        for r in page:
            if r["id"] > last:
                return out[-run["rows"]:] if run.get("rows") else out
            if (r["model_name"], r["model_version"]) == key:
                r["ts"] = as_utc(r["ts"])
                out.append(r)
        if len(page) < page_rows:
            return out[-run["rows"]:] if run.get("rows") else out
        after = page[-1]["id"]
