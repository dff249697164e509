"""Service metrics, defined once. Multiprocess-safe: BentoML sets
PROMETHEUS_MULTIPROC_DIR for its workers and merges every worker's values
on ``/metrics``. Labels are bounded: model names, versions, classes, reasons.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREDICTIONS = Counter("driftwatch_predictions", "Predicted instances, by model version and predicted class.",
                      ["model", "version", "predicted"])
REJECTED = Counter("driftwatch_requests_rejected", "Requests rejected as client mistakes (4xx), by first reason.",
                   ["reason"])
LOG_ROWS = Counter("driftwatch_request_log_rows", "Request-log rows committed to the store (direct or shipped from the spool).")
LOG_COMMIT = Histogram("driftwatch_request_log_commit_seconds",
                       "Request-log commits: seconds from the start of a commit until its rows are durable.",
                       ["path"], buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
SPOOLED = Gauge("driftwatch_request_log_spooled_rows", "Request-log rows waiting in the local spool for the store.",
                multiprocess_mode="livesum")
FEEDBACK_CONFLICTS = Counter("driftwatch_feedback_conflicts", "Labels that disagree with an earlier label for the same request id.")
FEEDBACK_LABELS = Counter("driftwatch_feedback_labels", "Labels accepted through /feedback.")
MODEL_INFO = Gauge("driftwatch_model_info", "1 for the model version this service is serving.", ["model", "version"],
                   multiprocess_mode="livemax")
BATCH_SIZE = Histogram("driftwatch_batch_size", "Instances per model call (adaptive batching joins concurrent requests).",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
MODEL_SWAPS = Counter("driftwatch_model_swaps", "Hot swaps to a newly promoted model version.", ["model", "version"])

# Predicted-class label values are capped so a regressor or a many-class model cannot explode the series.
MAX_CLASS_LABELS = 50


def predicted_label(value, classes) -> str:
    """Bounded label value for ``driftwatch_predictions_total{predicted}``."""
    if classes is None:
        return "value"
    return str(value) if len(classes) <= MAX_CLASS_LABELS else "other"
