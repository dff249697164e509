"""The local spool: per-process fsynced JSON lines, orphans of dead processes shipped by live ones."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pytest

import service.spool as spool_mod
from service.spool import Spool

TS = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.timezone.utc)


def rows(prefix: str, n: int) -> list[dict]:
    return [{"request_id": f"{prefix}{i}", "ts": TS + dt.timedelta(seconds=i), "features": {"x": i, "c": "é"},
             "prediction": i % 2, "probabilities": [0.5, 0.5], "model_name": "m", "model_version": "v",
             "latency_ms": 1.0} for i in range(n)]


def ids(batches) -> list[str]:
    return [r["request_id"] for b in batches for r in b]


def test_append_drain_clear(tmp_path):
    s = Spool(tmp_path)
    assert list(s.drain_batches(10)) == [], "nothing spooled: nothing to drain"
    s.append(rows("a", 3))
    s.append(rows("b", 4))
    assert s.pending == 7
    assert s.backlog() == 7
    batches = list(s.drain_batches(3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert ids(batches) == ["a0", "a1", "a2", "b0", "b1", "b2", "b3"], "in order"
    first = batches[0][1]
    assert first["ts"] == TS + dt.timedelta(seconds=1) and first["ts"].tzinfo is not None
    assert first["features"] == {"x": 1, "c": "é"}
    assert list(s.drain_batches(3)) == batches, "draining does not consume: only clear does"

    s.clear()
    assert s.pending == 0 and s.backlog() == 0
    s.append(rows("c", 2))
    assert ids(s.drain_batches(10)) == ["c0", "c1"], "after clear only new rows"
    s.close()


def test_own_file_is_locked_so_no_other_process_ships_it(tmp_path):
    a, b = Spool(tmp_path), Spool(tmp_path)  # flock: separate open files conflict even in one process
    a.append(rows("a", 2))
    assert b.orphans() == []
    shipped = []
    assert b.ship_orphans(shipped.extend) == 0 and shipped == []
    a.close()
    assert [p.name for p in b.orphans()] == [a._own_path.name], "closed with rows pending: now an orphan"
    b.close()


def test_a_spool_file_is_locked_before_it_is_visible(tmp_path, monkeypatch):
    """Otherwise another process can take a brand-new file for an orphan and delete it."""
    seen_while_locking = []
    real_flock = spool_mod.fcntl.flock

    def flock(f, op):
        seen_while_locking.append(sorted(p.name for p in tmp_path.glob("spool-*.jsonl")))
        return real_flock(f, op)

    monkeypatch.setattr(spool_mod.fcntl, "flock", flock)
    s = Spool(tmp_path)
    s.append(rows("a", 1))
    assert seen_while_locking[0] == [], "the file matched spool-*.jsonl before it was locked"
    assert [p.name for p in tmp_path.glob("spool-*.jsonl")] == [s._own_path.name]
    monkeypatch.undo()
    assert ids(s.drain_batches(5)) == ["a0"]
    s.close()


def test_close_removes_an_empty_file(tmp_path):
    s = Spool(tmp_path)
    s.append(rows("a", 1))
    s.clear()
    s.close()
    assert list(tmp_path.glob("spool-*")) == []


def test_orphans_of_a_killed_process_are_shipped_once_and_in_order(tmp_path):
    code = textwrap.dedent(f"""
        import datetime as dt, os, signal
        from service.spool import Spool
        s = Spool({str(tmp_path)!r})
        ts = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        for i in range(3):
            s.append([{{"request_id": f"dead{{i}}-{{j}}", "ts": ts}} for j in range(400)])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9, proc.stderr
    live = Spool(tmp_path)
    assert live.backlog() == 1200
    assert len(live.orphans()) == 1
    got: list[list[dict]] = []
    assert live.ship_orphans(got.append) == 1200
    assert ids(got) == [f"dead{i}-{j}" for i in range(3) for j in range(400)]
    assert all(len(b) <= 500 for b in got)
    assert got[0][0]["ts"] == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert live.orphans() == [] and live.backlog() == 0, "shipped files are deleted"
    assert live.ship_orphans(got.append) == 0
    live.close()


def test_torn_last_line_is_ignored(tmp_path):
    """A crash in the middle of a write: that request was never acknowledged."""
    good = "".join(spool_mod._encode(r) + "\n" for r in rows("ok", 2))
    (tmp_path / "spool-999999-dead.jsonl").write_text(good + '{"request_id":"torn","ts":"2026-0')
    got: list[list[dict]] = []
    assert Spool(tmp_path).ship_orphans(got.append) == 2
    assert ids(got) == ["ok0", "ok1"]
    assert not (tmp_path / "spool-999999-dead.jsonl").exists()


def test_orphan_file_is_kept_when_the_store_fails(tmp_path):
    (tmp_path / "spool-999999-dead.jsonl").write_text(
        "".join(spool_mod._encode(r) + "\n" for r in rows("x", 3)))
    live = Spool(tmp_path)

    def down(batch):
        raise OSError("store down")

    with pytest.raises(OSError):
        live.ship_orphans(down)
    assert live.backlog() == 3, "nothing lost: the file stays for the next attempt"
    got: list[list[dict]] = []
    assert live.ship_orphans(got.append) == 3
    assert ids(got) == ["x0", "x1", "x2"]


def test_a_failed_append_leaves_nothing_behind(tmp_path, monkeypatch):
    """The request whose rows could not be made durable gets an error; its rows must not be shipped
    later, and a partial line must not corrupt the rows spooled after it."""
    s = Spool(tmp_path)
    s.append(rows("a", 2))
    real_fsync = os.fsync
    calls = {"n": 0}

    def failing_fsync(fd):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(spool_mod.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        s.append(rows("lost", 2))
    assert s.pending == 2
    s.append(rows("b", 1))
    assert s.pending == 3
    assert ids(s.drain_batches(10)) == ["a0", "a1", "b0"]
    s.close()
