"""Alert-driven retraining: one at a time, with a cool-down that survives restarts."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from driftwatch.package import ModelPackage
from driftwatch.store import Store, as_utc, utcnow
from models import retrain

log = logging.getLogger("driftwatch.retrain")


class RetrainTrigger:
    """``trigger(alert_labels)`` starts a retrain in the background unless one is
    running or the last one started less than ``cooldown_seconds`` ago."""

    def __init__(self, store: Store, load_production: Callable[[], ModelPackage], policy: retrain.RetrainPolicy,
                 cooldown_seconds: float, on_done: Callable[[retrain.RetrainResult], None] = lambda r: None,
                 *, wait_seconds: float = 3600.0, poll_seconds: float = 30.0):
        self.store, self.load_production, self.policy = store, load_production, policy
        self.cooldown_seconds = cooldown_seconds
        self.wait_seconds, self.poll_seconds = wait_seconds, poll_seconds
        self.on_done = on_done
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cooldown_left(self) -> float:
        last = self.store.retrains(limit=1)
        if not last:
            return 0.0
        age = (utcnow() - as_utc(last[0]["started_at"])).total_seconds()
        return max(0.0, self.cooldown_seconds - age)

    def __call__(self, labels: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self.busy():
                return {"retrain": "already running"}
            left = self.cooldown_left()
            if left > 0:
                return {"retrain": "cooldown", "seconds_left": round(left, 1)}
            trigger = f"alert {labels.get('alertname', '?')}"
            self._thread = threading.Thread(target=self._run, args=(trigger,), name="retrain", daemon=True)
            self._thread.start()
            return {"retrain": "started", "trigger": trigger}

    def _wait_for_labels(self) -> ModelPackage:
        """An alert often fires before enough labels of the new concept exist: wait for them (bounded)."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            package = self.load_production()
            n = len(retrain.recent_labeled(self.store, package, self.policy)[0])
            if n >= self.policy.min_labeled_rows or time.monotonic() >= deadline:
                return package
            log.warning("retrain waits for labels: %d of %d labeled rows of the current concept", n,
                        self.policy.min_labeled_rows)
            time.sleep(self.poll_seconds)

    def _run(self, trigger: str) -> None:
        t0 = time.monotonic()
        try:
            result = retrain.run(self.store, self._wait_for_labels(), self.policy, trigger=trigger)
            self.on_done(result)
        except Exception:  # noqa: BLE001 - recorded in `retrains` by retrain.run
            log.exception("retrain failed")
        log.warning("retrain finished in %.1f s", time.monotonic() - t0)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
