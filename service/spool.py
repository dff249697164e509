"""A local spool for request-log rows while the store is unreachable.

Each process appends JSON lines to its own file and holds an exclusive
``flock`` on it, so files of a crashed process (no lock) are claimed and
shipped by any live process. Rows are fsynced before the request is answered.

>>> import tempfile, datetime as dt
>>> s = Spool(tempfile.mkdtemp())
>>> s.append([{"request_id": "r1", "ts": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}])
>>> s.pending
1
>>> [r["request_id"] for r in s.drain_batches(10).__next__()]
['r1']
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator


def _encode(row: dict[str, Any]) -> str:
    return json.dumps({**row, "ts": row["ts"].isoformat()}, separators=(",", ":"))


def _decode(line: str) -> dict[str, Any]:
    row = json.loads(line)
    row["ts"] = dt.datetime.fromisoformat(row["ts"])
    return row


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except FileNotFoundError:  # shipped by another process meanwhile
        return 0.0


class Spool:
    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._own_path = self.dir / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._own = None  # opened lazily: most processes never spool
        self.pending = 0

    def _open_own(self):
        if self._own is None:
            # lock under a name the orphan scan ignores, then rename: a live process's file is
            # never seen unlocked (another process would take it for an orphan and delete it)
            tmp = self._own_path.with_suffix(".tmp")
            f = open(tmp, "ab+", buffering=0)  # unbuffered: a failed write leaves nothing queued
            fcntl.flock(f, fcntl.LOCK_EX)
            os.rename(tmp, self._own_path)
            self._own = f
        return self._own

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Append and fsync: after this returns the rows survive a crash."""
        f = self._open_own()
        data = "".join(_encode(r) + "\n" for r in rows).encode("utf-8")
        start = f.seek(0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[f.write(view):]
            os.fsync(f.fileno())
        except BaseException:
            # not durable, so not acknowledged: leave no (partial) line behind
            try:
                f.truncate(start)
            except OSError:
                pass
            raise
        self.pending += len(rows)

    def orphans(self) -> list[Path]:
        """Spool files of other processes that no longer hold their lock."""
        out = []
        for p in sorted(self.dir.glob("spool-*.jsonl"), key=_mtime):
            if p == self._own_path:
                continue
            try:
                fd = os.open(p, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                out.append(p)
            except BlockingIOError:
                pass
            finally:
                os.close(fd)
        return out

    def drain_batches(self, size: int) -> Iterator[list[dict[str, Any]]]:
        """Yield this process's spooled rows in order; call ``clear`` once all are stored."""
        if self._own is None or self.pending == 0:
            return
        batch: list[dict[str, Any]] = []
        with open(self._own_path, "r", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    batch.append(_decode(line))
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def clear(self) -> None:
        """Forget shipped rows (every row must already be committed in the store)."""
        if self._own is not None:
            self._own.truncate(0)
            os.fsync(self._own.fileno())
        self.pending = 0

    def ship_orphans(self, store_rows) -> int:
        """Store the rows of unlocked files left by dead processes, then delete them.

        ``store_rows(rows)`` must be idempotent (rows already stored are skipped),
        because a process may have died between committing and deleting.
        """
        shipped = 0
        for path in self.orphans():
            try:
                f = open(path, "r+", encoding="utf-8")
            except FileNotFoundError:
                continue
            with f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                rows = []
                for line in f:
                    try:
                        rows.append(_decode(line))
                    except ValueError:
                        pass  # a torn last line: its request was never acknowledged
                for i in range(0, len(rows), 500):
                    store_rows(rows[i:i + 500])
                path.unlink(missing_ok=True)
                shipped += len(rows)
        return shipped

    def backlog(self) -> int:
        """Rows waiting in every spool file of this directory (all processes)."""
        n = 0
        for p in self.dir.glob("spool-*.jsonl"):
            try:
                with open(p, "rb") as f:
                    n += sum(1 for _ in f)
            except FileNotFoundError:
                pass
        return n

    def close(self) -> None:
        if self._own is not None:
            empty = self.pending == 0
            self._own.close()
            self._own = None
            if empty:
                self._own_path.unlink(missing_ok=True)
