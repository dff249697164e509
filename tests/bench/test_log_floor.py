"""bench/log_floor.py: its patched copies import, and their write_many does what each floor says (no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench import log_floor

PROBE = r"""
import asyncio, datetime as dt, json, sys
import service.requestlog as rl
from service.spool import Spool
assert rl.__file__.startswith(sys.argv[1]), rl.__file__
log = rl.RequestLog(None, Spool(sys.argv[2]))
ts = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
row = lambda i: {"request_id": f"r{i}", "ts": ts, "features": {"x": i}, "prediction": 1, "probabilities": [0.5, 0.5]}
out = asyncio.run(log.write_many([[row(1)], [row(2), row(3)]]))
print(json.dumps(out))
"""


@pytest.mark.parametrize("kind", log_floor.KINDS)
def test_floor_copy_replaces_write_many(kind, tmp_path):
    copy = log_floor.make_copy(kind, tmp_path / f"floor-{kind}", ring=1 << 20)
    spool = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": str(copy)}
    res = subprocess.run([sys.executable, "-c", PROBE, str(copy), str(spool)], check=False, env=env, cwd=copy,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [None, None]  # one result per request, all durable as far as callers know
    files = list(spool.glob("floor-*.bin"))
    if kind == "none":
        assert files == []
        return
    assert len(files) == 1 and files[0].stat().st_size == 1 << 20  # the preallocated ring
    lines = files[0].read_bytes().rstrip(b"\0").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["request_id"] for r in rows] == ["r1", "r2", "r3"]
    assert rows[0]["ts"].startswith("2026-01-02T03:04:05") and rows[2]["features"] == {"x": 3}


def test_the_repository_itself_is_not_patched(tmp_path):
    log_floor.make_copy("dsync", tmp_path / "c")
    assert "log_floor" not in (log_floor.ROOT / "service" / "requestlog.py").read_text()
    assert "bench/log_floor.py" in (tmp_path / "c" / "service" / "requestlog.py").read_text()


def test_unknown_floor_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown floor"):
        log_floor.make_copy("fsync-twice", tmp_path / "c")


def test_floor_variants_are_compared_with_no_log_and_left_out_of_the_rows_check():
    from bench.serving_plan import targets_for
    names = {"driftwatch", "driftwatch-nolog", "ref-floor-dsync", "ref-old"}
    targets = targets_for(names)
    ratios = {(t["a"], t["b"], t["metric"]) for t in targets if t["kind"] == "ratio"}
    assert ("ref-floor-dsync", "driftwatch-nolog", "rps") in ratios
    assert ("ref-floor-dsync", "driftwatch-nolog", "p99_ms") in ratios
    assert ("ref-floor-dsync", "driftwatch", "rps") in ratios
    rows = next(t for t in targets if t.get("check") == "rows_match")
    assert rows["variants"] == ["driftwatch", "ref-old"]  # a --ref copy that logs is still checked
