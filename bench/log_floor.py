"""How cheap can a durable request log be? driftwatch with its request log replaced by the bare minimum.

Issue 6 asks for logging on/off >= 0.95x in throughput. This benchmark
measures where the floor lies on this machine: copies of this code whose
``RequestLog.write_many`` (what every model call's rows go through) is
replaced by

    floor-none     nothing: rows are built, then dropped (what the request path costs without a log)
    floor-write    one ``pwrite`` of the call's rows as JSON lines into a preallocated file, no sync:
                   survives a crash of the process, not of the machine (not durable)
    floor-dsync    the same write through ``O_DSYNC`` (on the device when it returns): the cheapest write that
                   is durable the way a 200 promises, with no database, no index, no store at all
    floor-direct   the same with ``O_DIRECT`` too (no page cache: one aligned DMA write per model call)

and runs them with ``bench/serving.py`` next to ``driftwatch`` (the shipped log, SQLite),
``driftwatch-pg`` and ``driftwatch-nolog``, alternating per round. The ratios
``ref-floor-* / driftwatch-nolog`` are the floor a request log could reach here.
The copies log nothing to the store (the rows check leaves them out).

    .venv/bin/python bench/log_floor.py                 # 7 rounds; writes bench/results/log-floor/serving.{md,json}
    .venv/bin/python bench/log_floor.py --rounds 1 --duration 3 --no-pg
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KINDS = ("none", "write", "dsync", "direct")
RING_BYTES = 64 << 20

# Appended to the copy's service/requestlog.py: replaces RequestLog.write_many (same signature and result).
PATCH = '''

# --- bench/log_floor.py: RequestLog.write_many replaced by the "{kind}" floor ---
import os as _floor_os

import orjson as _floor_orjson

_FLOOR_KIND, _FLOOR_RING = "{kind}", {ring}


def _floor_open(self):
    path = str(self.spool.dir / f"floor-{{_floor_os.getpid()}}.bin")
    fd = _floor_os.open(path, _floor_os.O_RDWR | _floor_os.O_CREAT, 0o644)
    chunk = bytes(1 << 20)  # written once, so later writes overwrite allocated blocks (no metadata to sync)
    for off in range(0, _FLOOR_RING, len(chunk)):
        _floor_os.pwrite(fd, chunk, off)
    _floor_os.fsync(fd)
    _floor_os.close(fd)
    flags = _floor_os.O_RDWR | (_floor_os.O_DSYNC if _FLOOR_KIND in ("dsync", "direct") else 0)
    if _FLOOR_KIND == "direct":
        import mmap
        flags |= _floor_os.O_DIRECT
        self._floor_buf = mmap.mmap(-1, 8 << 20)  # page-aligned, as O_DIRECT needs
    self._floor_fd, self._floor_off = _floor_os.open(path, flags), 0


async def _floor_write_many(self, groups):
    if _FLOOR_KIND != "none":
        if getattr(self, "_floor_fd", None) is None:
            _floor_open(self)
        data = b"".join(_floor_orjson.dumps(r, option=_floor_orjson.OPT_NAIVE_UTC) + b"\\n"
                        for rows in groups for r in rows)
        size = (len(data) + 4095) & ~4095
        if self._floor_off + size > _FLOOR_RING:
            self._floor_off = 0
        if _FLOOR_KIND == "direct":  # whole aligned blocks from an aligned buffer
            buf = self._floor_buf
            buf[:len(data)] = data
            buf[len(data):size] = bytes(size - len(data))
            _floor_os.pwrite(self._floor_fd, memoryview(buf)[:size], self._floor_off)
        else:
            _floor_os.pwrite(self._floor_fd, data, self._floor_off)
        self._floor_off += size
    return [None] * len(groups)


RequestLog.write_many = _floor_write_many
'''


def make_copy(kind: str, dest: Path, ring: int = RING_BYTES) -> Path:
    """A copy of driftwatch/, service/, models/ at ``dest`` with the ``kind`` floor patched in."""
    if kind not in KINDS:
        raise ValueError(f"unknown floor {kind!r}: one of {', '.join(KINDS)}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for pkg in ("driftwatch", "service", "models"):
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    target = dest / "service" / "requestlog.py"
    source = target.read_text()
    if "class RequestLog" not in source or "async def write_many(" not in source:
        raise RuntimeError("service/requestlog.py has no RequestLog.write_many any more: update bench/log_floor.py")
    target.write_text(source + PATCH.format(kind=kind, ring=ring))
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run [10]")
    ap.add_argument("--no-pg", action="store_true", help="leave out driftwatch-pg")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "log-floor")
    args = ap.parse_args(argv)

    from bench import serving
    work = Path(tempfile.mkdtemp(prefix="driftwatch-floor-"))
    try:
        refs = [make_copy(k, work / f"floor-{k}") for k in KINDS]
        names = ["driftwatch", "driftwatch-nolog", *([] if args.no_pg else ["driftwatch-pg"]),
                 *(f"ref-{r.name}" for r in refs)]
        cmd = ["--only", ",".join(names), "--rounds", str(args.rounds), "--duration", str(args.duration),
               "--out", str(args.out)]
        for r in refs:
            cmd += ["--ref", str(r)]
        if args.no_pg:
            cmd.append("--no-pg")
        rc = serving.main(cmd)
        md = args.out / "serving.md"
        if md.exists():
            given = " ".join(argv if argv is not None else sys.argv[1:])
            md.write_text(f"Made by `.venv/bin/python bench/log_floor.py {given}`.\nThe `ref-floor-*` variants are copies of this code with `RequestLog.write_many` replaced "
                          "(see `bench/log_floor.py`): they store nothing (left out of the rows check).\n\n"
                          + md.read_text())
        return rc
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
