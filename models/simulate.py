"""Traffic with a chosen drift, sent over real HTTP, with labels fed back later."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from models.datagen import DEMO_LABEL_NOISE, agrawal

SCENARIOS = {
    "none": {},
    "covariate": {"covariate_shift": 1.0},
    "prior": {"class_balance": 0.2},
    "concept": {"function": 2},
}


def scenario_rows(scenario: str, n: int, seed: int, drift_after: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """``drift_after`` rows of the training distribution, then the scenario's drift."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {sorted(SCENARIOS)}")
    before = min(drift_after, n)
    parts = []
    if before:
        parts.append(agrawal(before, seed=seed, label_noise=DEMO_LABEL_NOISE))
    if n - before:
        parts.append(agrawal(n - before, seed=seed + 1, label_noise=DEMO_LABEL_NOISE, **SCENARIOS[scenario]))
    X = pd.concat([p[0] for p in parts], ignore_index=True)
    y = pd.concat([p[1] for p in parts], ignore_index=True)
    return X, y


@dataclass
class SimulationReport:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    statuses: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)
    version_changes: list[tuple[int, str]] = field(default_factory=list)
    labels_sent: int = 0
    labels_accepted: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.sent} requests in {self.seconds:.1f} s: {self.ok} ok, {self.failed} failed "
                f"({dict(self.statuses)}); model versions {dict(self.versions)}; "
                f"labels sent {self.labels_sent}, accepted {self.labels_accepted}")


def _jsonable(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in rec.items()}


async def simulate(url: str, scenario: str, *, requests: int, rate: float, label_delay: float,
                   label_share: float = 1.0, batch: int = 1, drift_after: int = 0, seed: int = 1,
                   concurrency: int = 16, progress: bool = True, timeout: float = 30.0) -> SimulationReport:
    """Send ``requests`` POST /predict calls at about ``rate`` per second; label them after ``label_delay`` s."""
    X, y = scenario_rows(scenario, requests * batch, seed, drift_after * batch)
    records = [_jsonable(r) for r in X.to_dict(orient="records")]
    truth = y.tolist()
    rng = np.random.default_rng(seed)
    labelled = rng.random(len(records)) < label_share
    rep = SimulationReport()
    due: deque[tuple[float, str, Any]] = deque()
    sem = asyncio.Semaphore(concurrency)
    bar = tqdm(total=requests, desc=f"simulate {scenario}", unit="req", disable=not progress)
    t0 = time.monotonic()
    last_version: str | None = None

    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(i: int) -> None:
            nonlocal last_version
            lo, hi = i * batch, (i + 1) * batch
            async with sem:
                try:
                    r = await client.post("/predict", json={"instances": records[lo:hi]})
                    status = r.status_code
                except httpx.HTTPError as e:
                    status = type(e).__name__
            rep.statuses[status] += 1
            if status == 200:
                body = r.json()
                rep.ok += 1
                v = body["model"]["version"]
                rep.versions[v] += 1
                if v != last_version:
                    rep.version_changes.append((i, v))
                    last_version = v
                at = time.monotonic() + label_delay
                for j, rid in enumerate(body["request_ids"]):
                    if labelled[lo + j]:
                        due.append((at, rid, truth[lo + j]))
            else:
                rep.failed += 1
            bar.update()

        async def send_labels(final: bool = False) -> None:
            while due and (final or due[0][0] <= time.monotonic()):
                chunk = []
                while due and len(chunk) < 500 and (final or due[0][0] <= time.monotonic()):
                    _, rid, label = due.popleft()
                    chunk.append({"request_id": rid, "label": label})
                try:
                    r = await client.post("/feedback", json={"labels": chunk})
                    rep.labels_sent += len(chunk)
                    if r.status_code == 200:
                        rep.labels_accepted += r.json()["accepted"]
                except httpx.HTTPError:
                    rep.labels_sent += len(chunk)

        async def labeller(stop: asyncio.Event) -> None:
            while not stop.is_set():
                await send_labels()
                try:
                    await asyncio.wait_for(stop.wait(), 0.2)
                except asyncio.TimeoutError:
                    pass

        stop = asyncio.Event()
        lab = asyncio.create_task(labeller(stop))
        tasks = []
        for i in range(requests):
            wait = t0 + i / rate - time.monotonic() if rate > 0 else 0
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(i)))
            rep.sent += 1
        await asyncio.gather(*tasks)
        if due:  # wait out the label delay of the last requests
            await asyncio.sleep(max(0.0, due[-1][0] - time.monotonic()))
        stop.set()
        await lab
        await send_labels(final=True)
    bar.close()
    rep.seconds = time.monotonic() - t0
    return rep
