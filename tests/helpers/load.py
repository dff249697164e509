"""Concurrent ``POST /predict`` load from threads, with a record of every response."""

from __future__ import annotations

import functools
import json
import random
import threading
import time
from dataclasses import dataclass, field

import httpx


@functools.lru_cache(maxsize=4)
def demo_instances(n: int = 300, seed: int = 3) -> tuple[dict, ...]:
    """Valid demo instances (plain JSON values), from the same generator as the demo model."""
    from models.datagen import agrawal

    X, _ = agrawal(n, seed=seed)
    return tuple(json.loads(X.to_json(orient="records")))


@dataclass
class Result:
    t_send: float
    t_recv: float
    status: int | None  # None: no HTTP response (connection refused / reset)
    sent: int  # instances in the request
    request_ids: list[str] = field(default_factory=list)
    version: str | None = None
    error: str | None = None


class Load:
    """``threads`` clients POSTing batches of 1..``max_batch`` instances until ``stop``."""

    def __init__(self, url: str, *, threads: int = 12, max_batch: int = 3, keepalive: bool = True,
                 pause: float = 0.0, seed: int = 0):
        self.url = url
        self.threads = threads
        self.max_batch = max_batch
        self.keepalive = keepalive
        self.pause = pause
        self.seed = seed
        self.results: list[Result] = []
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def start(self) -> "Load":
        demo_instances()  # once, before the threads race for it
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def _run(self, i: int) -> None:
        rng = random.Random(self.seed * 1000 + i)
        pool = demo_instances()
        limits = httpx.Limits(max_keepalive_connections=1 if self.keepalive else 0)
        with httpx.Client(base_url=self.url, timeout=httpx.Timeout(30.0, connect=5.0), limits=limits) as c:
            while not self._stop.is_set():
                k = rng.randint(1, self.max_batch)
                body = {"instances": [pool[rng.randrange(len(pool))] for _ in range(k)]}
                t0 = time.monotonic()
                try:
                    r = c.post("/predict", json=body)
                except httpx.HTTPError as e:
                    self.results.append(Result(t0, time.monotonic(), None, k, error=f"{type(e).__name__}: {e}"))
                    self._stop.wait(0.05)  # the server is gone or restarting: do not spin
                    continue
                res = Result(t0, time.monotonic(), r.status_code, k)
                if r.status_code == 200:
                    b = r.json()
                    res.request_ids, res.version = b["request_ids"], b["model"]["version"]
                else:
                    res.error = r.text[:300]
                self.results.append(res)
                if self.pause:
                    self._stop.wait(self.pause)

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; {self.summary()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 60.0) -> list[Result]:
        self._stop.set()
        for t in self._workers:
            t.join(timeout)
            if t.is_alive():
                raise AssertionError(f"load thread {t.name} did not stop within {timeout:.0f}s")
        return self.results

    # -- views ---------------------------------------------------------------
    @property
    def ok(self) -> list[Result]:
        return [r for r in list(self.results) if r.status == 200]

    def ok_ids(self) -> list[str]:
        return [rid for r in self.ok for rid in r.request_ids]

    def statuses(self) -> dict:
        out: dict = {}
        for r in list(self.results):
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def summary(self) -> str:
        errors = [r.error for r in list(self.results) if r.status != 200][:3]
        return f"{len(self.results)} requests, statuses {self.statuses()}, first errors {errors}"
