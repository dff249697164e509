"""The monitor loop: follow the production model, read new rows, evaluate windows, record them.

One ``Monitor`` watches one model (``settings.model_name``, or whichever is
production). ``step()`` is one iteration:

1. follow production: after a promotion, load the new package, fit a new
   ``WindowEvaluator`` (calibration cached in
   ``calibration_dir/<name>-<version>-w<window>.json``) and window only the
   new version's rows;
2. poll the request log (``monitors.source``);
3. once ``window_min_rows`` new rows arrived and the window is full enough,
   join the latest labels, feed the errors of newly labeled rows to the
   sequential concept-drift detector (each request exactly once), evaluate,
   and record the window in ``monitor_runs`` together with the checkpoint
   (one transaction): a restart resumes with no row skipped or counted twice.

The latest results are published as an immutable ``Snapshot`` that the
exporter and the HTTP app read; the loop runs in a background thread.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from driftwatch.store import Store, as_utc, utcnow
from monitors.source import IdRanges, Source, rows_of_run, to_batch

if TYPE_CHECKING:
    from driftwatch.package import ModelPackage
    from driftwatch.settings import Settings

log = logging.getLogger("driftwatch.monitor")

CHECKPOINT_KEY = "monitor.checkpoint"
LoadPackage = Callable[[str, str], "ModelPackage"]


@dataclass(frozen=True)
class Snapshot:
    """What the monitor knows now; replaced as a whole, never mutated."""

    model: str | None = None
    version: str | None = None
    task: str | None = None
    baseline: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, tuple[str, float]] = field(default_factory=dict)   # feature -> (method, threshold)
    run_id: int | None = None
    results: dict[str, Any] | None = None       # the latest window, as recorded in monitor_runs.results
    last_run_ts: float | None = None
    last_run_duration: float | None = None
    retrains: dict[tuple[str, str], int] = field(default_factory=dict)
    error: str | None = None


def calibration_path(settings: "Settings", name: str, version: str, window_size: int) -> Path:
    return settings.calibration_dir / f"{name}-{version}-w{window_size}.json"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _json_safe(value: Any) -> Any:
    """NaN/inf to None, numpy and dates to Python: monitor_runs.results is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return _json_safe(value.to_dict())
    return str(value)


class Monitor:
    """The sidecar's state and loop. ``load_package(name, version)`` comes from ``models.registry``."""

    def __init__(self, settings: "Settings", store: Store, load_package: LoadPackage, *,
                 evaluator_factory: Callable[[], Any] | None = None, clock: Callable[[], float] = time.time,
                 grace_seconds: float = 30.0):
        self.settings, self.store, self.load_package = settings, store, load_package
        self.evaluator_factory = evaluator_factory or self._default_evaluator
        self.clock = clock
        self.source = Source(store, window_size=settings.window_size, window_seconds=settings.window_seconds,
                             grace_seconds=grace_seconds, clock=clock)
        self.package: ModelPackage | None = None
        self.evaluator: Any = None
        self.fed = IdRanges()            # prediction ids whose error went to the concept detector
        self.snapshot = Snapshot()
        self._lock = threading.RLock()   # one step at a time (loop thread, tests, reports)
        self._started = False
        self._started_at = clock()

    def _default_evaluator(self):
        from monitors.evaluator import WindowEvaluator
        s = self.settings
        return WindowEvaluator(window_size=s.window_size, budget=s.false_alarm_budget, seed=0,
                               n_resamples=s.calibration_resamples)

    # -- model ------------------------------------------------------------------
    def start(self) -> "Monitor":
        """Load the checkpoint and the production model (if any)."""
        with self._lock:
            state = self.store.get_state(CHECKPOINT_KEY) or {}
            self.source.load(state.get("source"))
            self._saved_detector = state.get("detector") if state.get("source") else None
            self._saved_fed = state.get("fed") or []
            self._saved_model = tuple(state["source"]["model"]) if (state.get("source") or {}).get("model") else None
            self._started = True
            self._follow_production()
        return self

    def _follow_production(self) -> bool:
        dep = self.store.production(self.settings.model_name)
        if dep is None:
            return False
        key = (dep.model_name, dep.model_version)
        if self.package is not None and (self.package.name, self.package.version) == key:
            return False
        package = self.load_package(*key)
        evaluator = self.evaluator_factory()
        path = calibration_path(self.settings, package.name, package.version, self.settings.window_size)
        cached = None
        if path.exists():
            try:
                cached = json.loads(path.read_text())
            except (OSError, ValueError):
                log.warning("ignoring unreadable calibration cache %s", path)
        evaluator.fit(package, calibration=cached)
        if cached is None or not getattr(evaluator.drift_, "calibration_reused_", False):
            _write_atomic(path, json.dumps(_json_safe(evaluator.calibration_)))
        fed = IdRanges()
        if key == getattr(self, "_saved_model", None):
            if self._saved_detector is not None:
                evaluator.load_state(self._saved_detector)
            fed = IdRanges(self._saved_fed)
        self._saved_model = None
        self.package, self.evaluator, self.fed = package, evaluator, fed
        self.source.follow(key)
        log.info("monitoring %s:%s (window %s)", *key, self._window_desc())
        # the latest recorded window of this version (a restart serves it at once); else no window yet
        last = next(iter(self.store.monitor_runs(limit=1)), None)
        prev = self.snapshot
        restored: dict[str, Any] = {}
        if last is not None and (last["model_name"], last["model_version"]) == key:
            restored = dict(run_id=last["id"], results=last["results"], last_run_duration=last["duration_seconds"],
                            last_run_ts=as_utc(last["ts"]).timestamp())
        fields = dict(model=package.name, version=package.version, task=package.task,
                      baseline=dict(package.baseline), thresholds=self._thresholds(), retrains=prev.retrains,
                      last_run_ts=prev.last_run_ts or self._started_at, last_run_duration=prev.last_run_duration)
        self.snapshot = Snapshot(**{**fields, **restored})
        return True

    def _window_desc(self) -> str:
        s = self.settings
        return f"last {s.window_seconds:g} s" if s.window_seconds > 0 else f"last {s.window_size} rows"

    def _thresholds(self) -> dict[str, tuple[str, float]]:
        """Calibrated threshold and method per feature, and for ``prediction`` (known before any window)."""
        out = {}
        for mon in (self.evaluator.drift_, self.evaluator.prediction_drift_):
            for name, t in mon.thresholds_.items():
                out[name] = (mon.references_[name].method, float(t))
        return out

    # -- loop -------------------------------------------------------------------
    def due(self) -> bool:
        """At least ``window_min_rows`` new rows since the last window, and as many in the window.

        A window shorter than the calibrated size (the first ones after a
        start or a promotion, or a time window) is judged by thresholds
        rescaled to its length (``monitors.calibration``).
        """
        need = min(self.settings.window_min_rows, self.settings.window_size)
        w = self.source.window
        return w.new_rows >= need and len(w.rows) >= need

    def step(self, force: bool = False) -> int | None:
        """One iteration; returns the new monitor_runs id if a window was evaluated."""
        with self._lock:
            try:
                if not self._started:
                    self.start()
                self.snapshot = replace(self.snapshot, retrains=self.store.retrain_counts())
                self._follow_production()
                if self.package is None:
                    return None
                while self.source.poll().rows >= self.source.max_rows_per_poll:
                    pass  # catching up with a long backlog: window it all, evaluate once at the head
                if not (self.due() or (force and self.source.window.rows)):
                    return None
                run_id = self.evaluate()
                self.snapshot = replace(self.snapshot, error=None)
                return run_id
            except Exception as e:
                self.snapshot = replace(self.snapshot, error=f"{type(e).__name__}: {e}")
                raise

    def evaluate(self) -> int | None:
        t0 = time.perf_counter()
        package, evaluator = self.package, self.evaluator
        rows = self.source.window_rows()
        if not rows:
            return None
        labels = self.store.latest_labels([r["request_id"] for r in rows])
        batch, delays = to_batch(rows, package.schema, package.classes, labels)
        fed_now = self._feed_detector(rows, batch)
        result = evaluator.evaluate(batch)
        results = _json_safe(result.to_dict())
        ids = [r["id"] for r in rows]
        results["window"] = {
            "rows": len(rows), "new_rows": self.source.window.new_rows,
            "first_prediction_id": min(ids), "last_prediction_id": max(ids),
            "first_ts": min(r["ts"] for r in rows).isoformat(), "last_ts": max(r["ts"] for r in rows).isoformat(),
            "kind": "time" if self.settings.window_seconds > 0 else "count",
            "size": self.settings.window_size, "seconds": self.settings.window_seconds,
        }
        results["labels"] = {"labeled_rows": len(delays), "fed_to_detector": fed_now,
                             "delay_seconds_median": statistics.median(delays) if delays else None}
        duration = time.perf_counter() - t0
        row = {
            "ts": utcnow(), "model_name": package.name, "model_version": package.version,
            "first_prediction_id": min(ids), "last_prediction_id": max(ids), "rows": len(rows),
            "dataset_drift": results["dataset_drift"], "drift_share": results["drift_share"],
            "prediction_drift": results["prediction_drift"]["drifted"], "concept_drift": results["concept_drift"],
            "duration_seconds": duration, "results": results,
        }
        self.fed.drop_below(min(ids))
        state = {"source": self.source.state(), "detector": _json_safe(evaluator.state()), "fed": self.fed.to_list()}
        run_id = self.store.add_monitor_run(row, state={CHECKPOINT_KEY: state})
        self.source.mark_evaluated()
        self.snapshot = replace(self.snapshot, run_id=run_id, results=results, last_run_ts=self.clock(),
                                last_run_duration=duration)
        return run_id

    def _feed_detector(self, rows: list[dict[str, Any]], batch) -> int:
        """Errors of labeled rows not fed before, in id order, to the sequential detector."""
        from monitors.performance import instance_errors
        target = batch.target
        todo = [i for i in sorted(range(len(rows)), key=lambda i: rows[i]["id"])
                if target.iloc[i] is not None and rows[i]["id"] not in self.fed]
        if not todo:
            return 0
        errors = instance_errors(self.package.task, batch.predictions.iloc[todo].reset_index(drop=True),
                                 target.iloc[todo].reset_index(drop=True))
        self.evaluator.update_errors(errors)
        for i in todo:
            self.fed.add(rows[i]["id"], 0.0)
        return len(todo)

    def run(self, stop: threading.Event) -> None:
        """Step every ``monitor_interval_seconds`` until ``stop`` is set; errors are logged, not fatal."""
        while not stop.is_set():
            t = time.monotonic()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - a store outage or a bad model must not kill the sidecar
                log.exception("monitor step failed; retrying in %.0f s", self.settings.monitor_interval_seconds)
            stop.wait(max(0.0, self.settings.monitor_interval_seconds - (time.monotonic() - t)))

    def start_thread(self) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        t = threading.Thread(target=self.run, args=(stop,), name="driftwatch-monitor", daemon=True)
        t.start()
        return t, stop

    # -- reports ----------------------------------------------------------------
    def report_path(self, run_id: int | None = None) -> Path | None:
        """The HTML report of a window (latest if None), generated once and cached in ``reports_dir``."""
        return render_report(self.settings, self.store, self._package_for, run_id)

    def _package_for(self, name: str, version: str) -> "ModelPackage":
        p = self.package
        return p if p is not None and (p.name, p.version) == (name, version) else self.load_package(name, version)


_report_lock = threading.Lock()


def render_report(settings: "Settings", store: Store, load_package: LoadPackage,
                  run_id: int | None = None) -> Path | None:
    """Write (once) and return the HTML report of a recorded window; None if there is no such window."""
    run = store.monitor_run(run_id) if run_id is not None else next(iter(store.monitor_runs(limit=1)), None)
    if run is None:
        return None
    path = settings.reports_dir / f"run-{run['id']}.html"
    with _report_lock:
        if path.exists():
            return path
        from monitors.evidently_adapter import html_report
        package = load_package(run["model_name"], run["model_version"])
        rows = rows_of_run(store, run)
        labels = store.latest_labels([r["request_id"] for r in rows])
        window, _ = to_batch(rows, package.schema, package.classes, labels)
        from monitors.performance import label_text
        features = run["results"].get("features") or []
        thresholds = {f["feature"]: f["threshold"] for f in features if f.get("threshold") is not None}
        classes = [label_text(c) for c in package.classes] if package.classes else None
        html = html_report(package.reference, window, package.schema, task=package.task, classes=classes,
                           thresholds=thresholds or None,
                           title=f"driftwatch window {run['id']}: {package.tag}, {len(rows)} rows, "
                                 f"ids {run['first_prediction_id']}..{run['last_prediction_id']}")
        _write_atomic(path, html)
        store.update_monitor_run(run["id"], report_path=str(path))
    return path
