"""Everything the monitor computes about one window, in one object.

``WindowEvaluator.fit(package)`` prepares the reference side (drift statistics,
calibrated thresholds, quality ranges, baseline errors, the confidence
estimator, feature importance); ``evaluate(window)`` returns a
``WindowResult`` whose ``to_dict()`` is what ``/status`` shows and what
``monitor_runs`` stores. The runner feeds the concept detector with the
errors of newly labeled rows through ``update_errors`` (``errors_of`` computes
them) and checkpoints it with ``state`` / ``load_state``. Pure computation:
no clock, no I/O.

Calibration (thresholds per window size, and the importances) is the slow
part of ``fit`` (about a second); ``calibration_`` is JSON-able and passing it
back to ``fit`` skips the work when it was made for the same reference,
window size and seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from driftwatch.package import Batch, ModelPackage
from monitors.concept import ConceptDriftMonitor, ConceptResult
from monitors.drift import ColumnDrift, DriftMonitor, DriftResult, prediction_frame
from monitors.estimate import ConfidenceEstimator
from monitors.performance import PerformanceMonitor, instance_errors, label_text
from monitors.quality import FeatureQuality, QualityMonitor
from monitors.ranking import model_importance, rank_features

CALIBRATION_FORMAT = 1


def json_safe(value: Any) -> Any:
    """Plain JSON types: NaN and infinities become None, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


@dataclass
class WindowResult:
    """One window's drift, quality, performance and concept-drift results."""

    model: str
    version: str
    rows: int
    window_size: int
    budget: float
    drift: DriftResult
    prediction_drift: ColumnDrift
    quality: dict[str, FeatureQuality]
    performance: dict[str, float | None]
    baseline: dict[str, float]
    labeled_rows: int
    labeled_share: float
    estimated_performance: dict[str, float | None]
    concept: ConceptResult | None
    ranking: list[dict] = field(default_factory=list)

    @property
    def features(self) -> list[ColumnDrift]:
        return self.drift.columns

    @property
    def drift_share(self) -> float:
        return self.drift.drift_share

    @property
    def dataset_drift(self) -> bool:
        return self.drift.dataset_drift

    @property
    def concept_drift(self) -> bool:
        return bool(self.concept and self.concept.drifted)

    def to_dict(self) -> dict:
        """JSON-ready (NaN as null)."""
        return json_safe({
            "model": self.model, "version": self.version, "rows": self.rows,
            "window_size": self.window_size, "budget": self.budget,
            "features": [asdict(c) for c in self.drift.columns],
            "drift_share": self.drift.drift_share, "n_drifted": self.drift.n_drifted,
            "dataset_drift": self.drift.dataset_drift,
            "prediction_drift": asdict(self.prediction_drift),
            "quality": {k: v.to_dict() for k, v in self.quality.items()},
            "performance": self.performance, "baseline": self.baseline,
            "labeled_rows": self.labeled_rows, "labeled_share": self.labeled_share,
            "estimated_performance": self.estimated_performance,
            "concept_drift": self.concept_drift,
            "concept_reasons": list(self.concept.reasons) if self.concept else [],
            "concept": self.concept.to_dict() if self.concept else None,
            "ranking": self.ranking,
        })


class WindowEvaluator:
    """Drift, quality, performance, estimated performance, concept drift and ranking for windows of a model."""

    def __init__(self, window_size: int = 1000, budget: float = 1e-3, seed: int = 0, *,
                 prediction_budget: float | None = None, n_resamples: int = 2000,
                 concept_alpha: float = 1e-3, min_labeled: int = 30, arl0: float = 500_000,
                 importance: bool = True):
        self.window_size = window_size
        self.budget = budget
        self.seed = seed
        self.prediction_budget = prediction_budget
        self.n_resamples = n_resamples
        self.concept_alpha = concept_alpha
        self.min_labeled = min_labeled
        self.arl0 = arl0
        self.importance = importance

    # -- fit -------------------------------------------------------------
    def fit(self, package: ModelPackage, calibration: dict | None = None) -> WindowEvaluator:
        """Prepare the reference side of ``package``; reuse ``calibration`` (from ``calibration_``) if it fits."""
        self.package_ = package
        self.task_ = package.task
        schema = package.schema
        ref = package.reference
        features = schema.coerce(ref.features[schema.names].reset_index(drop=True))
        kinds = {f.name: f.kind for f in schema.features}
        cached = calibration if calibration and calibration.get("format") == CALIBRATION_FORMAT else {}

        def drift_monitor(budget: float) -> DriftMonitor:
            return DriftMonitor(window_size=self.window_size, budget=budget,
                                n_resamples=self.n_resamples, seed=self.seed)

        self.drift_ = drift_monitor(self.budget).fit(features, kinds, cached.get("features"))
        pred_frame, pred_kind = prediction_frame(ref.predictions, package.task)
        self.prediction_drift_ = drift_monitor(self.prediction_budget or self.budget).fit(
            pred_frame, pred_kind, cached.get("prediction"))
        self.quality_ = QualityMonitor().fit(schema, features)
        self.performance_ = PerformanceMonitor(package.task, package.classes)

        self.concept_ = None
        if ref.target is not None and int(ref.target.notna().sum()) >= 10:
            ref_errors = instance_errors(package.task, ref.predictions, ref.target)
            self.concept_ = ConceptDriftMonitor(package.task, alpha=self.concept_alpha,
                                                min_labeled=self.min_labeled, recent=self.window_size,
                                                arl0=self.arl0).fit(ref_errors)
        self.estimator_ = None
        if package.task == "classification" and ref.probabilities is not None:
            correct = np.full(len(ref), np.nan)
            if ref.target is not None:
                mask = ref.target.notna().to_numpy()
                correct[mask] = 1.0 - instance_errors(package.task, ref.predictions, ref.target)
            self.estimator_ = ConfidenceEstimator().fit(ref.probabilities, correct)

        importance = cached.get("importance")
        if not importance or set(importance) != set(schema.names) or \
                cached.get("features", {}).get("fingerprint") != self.drift_.calibration_.fingerprint:
            importance = (model_importance(package.estimator, features, package.task, seed=self.seed)
                          if self.importance else {n: 1.0 / len(schema.names) for n in schema.names})
        self.importance_ = importance
        self.calibration_ = json_safe({
            "format": CALIBRATION_FORMAT, "model": package.name, "version": package.version,
            "window_size": self.window_size, "budget": self.budget, "seed": self.seed,
            "features": self.drift_.calibration_.to_dict(),
            "prediction": self.prediction_drift_.calibration_.to_dict(),
            "thresholds": dict(self.drift_.thresholds_),
            "prediction_threshold": self.prediction_drift_.thresholds_["prediction"],
            "importance": importance,
        })
        return self

    # -- concept detector, fed by the runner -------------------------------
    def errors_of(self, batch: Batch) -> np.ndarray:
        """Per-instance errors of the labeled rows of ``batch`` (0/1, or absolute error), in row order."""
        if batch.target is None:
            return np.zeros(0)
        return instance_errors(self.task_, batch.predictions, batch.target)

    def update_errors(self, errors: Iterable[float]) -> bool:
        """Feed errors of newly labeled instances to the sequential detector; True if it alarmed."""
        if self.concept_ is None:
            return False
        return self.concept_.update_errors(np.fromiter(errors, dtype=float))

    def state(self) -> dict | None:
        """Checkpoint of the sequential detector (JSON-able)."""
        return None if self.concept_ is None else self.concept_.state()

    def load_state(self, state: dict | None) -> WindowEvaluator:
        if state is not None and self.concept_ is not None:
            self.concept_.load_state(state)
        return self

    # -- evaluate ----------------------------------------------------------
    def evaluate(self, window: Batch) -> WindowResult:
        """All results for ``window`` (features with the schema's columns, predictions, optional labels)."""
        package = self.package_
        names = package.schema.names
        features = window.features[names].reset_index(drop=True)
        drift = self.drift_.evaluate(features)
        pred_frame, _ = prediction_frame(window.predictions, self.task_)
        prediction = self.prediction_drift_.evaluate(pred_frame).columns[0]
        perf = self.performance_.evaluate(window.predictions, window.target, window.probabilities)
        estimated: dict[str, float | None] = {}
        if self.estimator_ is not None and window.probabilities is not None:
            estimated["accuracy"] = self.estimator_.estimate(window.probabilities)
        concept = None
        if self.concept_ is not None:
            concept = self.concept_.evaluate(self.errors_of(window))
        ranking = rank_features({c.feature: c.ratio for c in drift.columns}, set(drift.drifted_features),
                                self.importance_)
        return WindowResult(
            model=package.name, version=package.version, rows=len(window), window_size=self.window_size,
            budget=self.budget, drift=drift, prediction_drift=prediction, quality=self.quality_.evaluate(features),
            performance=perf.metrics, baseline=dict(package.baseline), labeled_rows=perf.labeled_rows,
            labeled_share=perf.labeled_share, estimated_performance=estimated, concept=concept, ranking=ranking)

    def html_report(self, window: Batch) -> str:
        """Evidently HTML report of ``window`` (imports Evidently: slow the first time)."""
        from monitors.evidently_adapter import html_report

        classes = [label_text(c) for c in self.package_.classes] if self.package_.classes else None
        return html_report(self.package_.reference, window, self.package_.schema, task=self.task_,
                           classes=classes, thresholds=dict(self.drift_.thresholds_),
                           title=f"driftwatch: {self.package_.tag}, {len(window)} rows")


__all__ = ["WindowEvaluator", "WindowResult", "json_safe"]
