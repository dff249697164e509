"""Prometheus metrics of the monitor: a custom ``Collector`` reading the latest ``Snapshot`` at scrape time.

No global metric objects: the app registers one ``MonitorCollector`` in its
own ``CollectorRegistry``. Labels are bounded (model, feature, metric and
method names). Before the first window, what is already known is exported:
``driftwatch_model_info``, baselines, calibrated thresholds, the retrain
counter, and ``driftwatch_monitor_last_run_timestamp_seconds`` set to the last
recorded window (or the monitor's start), so that "stale monitor" alerts fire
for a monitor that never completes a window.

>>> from prometheus_client import CollectorRegistry
>>> from monitors.runner import Snapshot
>>> reg = CollectorRegistry()
>>> reg.register(MonitorCollector(lambda: Snapshot(model="m", version="v1", baseline={"accuracy": 0.9})))
>>> reg.get_sample_value("driftwatch_model_info", {"model": "m", "version": "v1"})
1.0
>>> reg.get_sample_value("driftwatch_model_performance_baseline", {"model": "m", "metric": "accuracy"})
0.9
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from monitors.runner import Snapshot

# name -> (help, labels); the names are DESIGN.md's contract
GAUGES: dict[str, tuple[str, list[str]]] = {
    "driftwatch_model_info": ("Model version the monitor follows (1).", ["model", "version"]),
    "driftwatch_feature_drift_score": ("Drift score of a feature in the latest window (normed Wasserstein or Jensen-Shannon distance).", ["model", "feature", "method"]),
    "driftwatch_feature_drift_threshold": ("Drift threshold of a feature, calibrated for the window size and false-alarm budget.", ["model", "feature", "method"]),
    "driftwatch_feature_drifted": ("1 if the feature's drift score is above its threshold in the latest window.", ["model", "feature"]),
    "driftwatch_dataset_drift_share": ("Share of features drifted in the latest window.", ["model"]),
    "driftwatch_dataset_drift": ("1 if any feature drifted in the latest window (budgeted false-alarm rate).", ["model"]),
    "driftwatch_prediction_drift_score": ("Drift score of the predictions against the reference predictions.", ["model"]),
    "driftwatch_prediction_drift_threshold": ("Calibrated threshold of the prediction drift score.", ["model"]),
    "driftwatch_prediction_drifted": ("1 if the predictions drifted in the latest window.", ["model"]),
    "driftwatch_missing_share": ("Share of missing values of a feature in the latest window.", ["model", "feature"]),
    "driftwatch_out_of_range_share": ("Share of values outside the reference range (or unseen categories).", ["model", "feature"]),
    "driftwatch_unseen_category_share": ("Share of categories of a categorical feature unseen in the reference.", ["model", "feature"]),
    "driftwatch_model_performance": ("Model performance on the labeled rows of the latest window.", ["model", "metric"]),
    "driftwatch_model_performance_baseline": ("Model performance on the reference (held-out) data.", ["model", "metric"]),
    "driftwatch_estimated_performance": ("Label-free performance estimate from the model's confidence.", ["model", "metric"]),
    "driftwatch_concept_drift": ("1 if concept drift was detected (significance test or sequential detector).", ["model"]),
    "driftwatch_labeled_share": ("Share of the latest window's rows that have a label.", ["model"]),
    "driftwatch_window_rows": ("Rows in the latest window.", ["model"]),
    "driftwatch_label_delay_seconds": ("Median delay between a prediction and its label, labeled rows of the latest window.", ["model"]),
    "driftwatch_monitor_last_run_timestamp_seconds": ("Unix time of the last evaluated window (the monitor's start before any).", []),
    "driftwatch_monitor_run_duration_seconds": ("Seconds the last window evaluation took.", []),
}
COUNTERS = {"driftwatch_retrains": ("Retrains by model and outcome (from the retrains table).", ["model", "outcome"])}

RETRAIN_OUTCOMES = ("promoted", "rejected", "skipped", "failed", "candidate")
MONITOR_METRIC_NAMES = sorted([*GAUGES, "driftwatch_retrains_total"])


def _num(v: Any) -> float | None:
    if v is None or isinstance(v, str):
        return None
    return float(v)


class MonitorCollector(Collector):
    """Yields every monitor metric family from ``snapshot()`` at scrape time."""

    def __init__(self, snapshot: Callable[[], "Snapshot"]):
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot()
        g = {name: GaugeMetricFamily(name, help_, labels=labels) for name, (help_, labels) in GAUGES.items()}
        retrains = CounterMetricFamily("driftwatch_retrains", COUNTERS["driftwatch_retrains"][0],
                                       labels=COUNTERS["driftwatch_retrains"][1])
        counts = dict(s.retrains)
        if s.model is not None:  # every outcome from 0, so increase() sees the first retrain
            for outcome in RETRAIN_OUTCOMES:
                counts.setdefault((s.model, outcome), 0)
        for (model, outcome), n in sorted(counts.items()):
            retrains.add_metric([model, outcome], float(n))
        m = s.model
        if m is not None:
            self._known(g, s)
            if s.results is not None:
                self._window(g, m, s.results)
        ts = s.last_run_ts
        if ts is not None:
            g["driftwatch_monitor_last_run_timestamp_seconds"].add_metric([], ts)
        if s.last_run_duration is not None:
            g["driftwatch_monitor_run_duration_seconds"].add_metric([], s.last_run_duration)
        yield from g.values()
        yield retrains

    @staticmethod
    def _known(g: dict[str, GaugeMetricFamily], s: "Snapshot") -> None:
        m = s.model
        g["driftwatch_model_info"].add_metric([m, s.version], 1.0)
        for metric, v in sorted(s.baseline.items()):
            if _num(v) is not None:
                g["driftwatch_model_performance_baseline"].add_metric([m, metric], v)
        thresholds = dict(s.thresholds)
        if s.results is not None:   # the thresholds the latest window was judged by (rescaled if it was short)
            for f in s.results.get("features", []):
                if _num(f.get("threshold")) is not None:
                    thresholds[f["feature"]] = (f["method"], f["threshold"])
            p = s.results.get("prediction_drift") or {}
            if _num(p.get("threshold")) is not None:
                thresholds["prediction"] = (p.get("method", ""), p["threshold"])
        for feature, (method, t) in sorted(thresholds.items()):
            if feature == "prediction":
                g["driftwatch_prediction_drift_threshold"].add_metric([m], t)
            else:
                g["driftwatch_feature_drift_threshold"].add_metric([m, feature, method], t)

    @staticmethod
    def _window(g: dict[str, GaugeMetricFamily], m: str, r: dict[str, Any]) -> None:
        for f in r.get("features", []):
            if _num(f.get("score")) is not None:
                g["driftwatch_feature_drift_score"].add_metric([m, f["feature"], f["method"]], f["score"])
            g["driftwatch_feature_drifted"].add_metric([m, f["feature"]], float(bool(f.get("drifted"))))
        g["driftwatch_dataset_drift_share"].add_metric([m], r.get("drift_share") or 0.0)
        g["driftwatch_dataset_drift"].add_metric([m], float(bool(r.get("dataset_drift"))))
        p = r.get("prediction_drift") or {}
        if _num(p.get("score")) is not None:
            g["driftwatch_prediction_drift_score"].add_metric([m], p["score"])
        g["driftwatch_prediction_drifted"].add_metric([m], float(bool(p.get("drifted"))))
        for feature, q in sorted((r.get("quality") or {}).items()):
            g["driftwatch_missing_share"].add_metric([m, feature], q["missing_share"])
            g["driftwatch_out_of_range_share"].add_metric([m, feature], q["out_of_range_share"])
            if q.get("kind") == "categorical":
                g["driftwatch_unseen_category_share"].add_metric([m, feature], q["unseen_category_share"])
        for metric, v in sorted((r.get("performance") or {}).items()):
            if _num(v) is not None:
                g["driftwatch_model_performance"].add_metric([m, metric], v)
        for metric, v in sorted((r.get("estimated_performance") or {}).items()):
            if _num(v) is not None:
                g["driftwatch_estimated_performance"].add_metric([m, metric], v)
        g["driftwatch_concept_drift"].add_metric([m], float(bool(r.get("concept_drift"))))
        g["driftwatch_labeled_share"].add_metric([m], r.get("labeled_share") or 0.0)
        g["driftwatch_window_rows"].add_metric([m], float(r.get("rows") or 0))
        delay = (r.get("labels") or {}).get("delay_seconds_median")
        if _num(delay) is not None:
            g["driftwatch_label_delay_seconds"].add_metric([m], delay)
