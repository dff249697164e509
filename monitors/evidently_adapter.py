"""The one module that imports Evidently (0.7 API: ``Report``, ``Dataset``, ``DataDefinition``).

* ``evidently_score``: Evidently's own stattest on one column, used to check
  that ``monitors.stattests`` (which caches the reference side) scores the same.
* ``drift_report`` / ``report_drift_scores``: a bare ``Report`` with the data
  drift preset, the baseline of ``bench/monitor_cost.py``.
* ``html_report``: the HTML report of a window: data drift (our methods and
  calibrated thresholds), data summary, and classification or regression
  quality on the labeled rows.

Evidently takes a few seconds to import, so the rest of ``monitors`` does not
import this module on the hot path.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, MulticlassClassification, Regression, Report
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType
from evidently.presets import ClassificationPreset, DataDriftPreset, DataSummaryPreset, RegressionPreset

from monitors.performance import label_text
from monitors.stattests import JENSENSHANNON, WASSERSTEIN

if TYPE_CHECKING:
    from driftwatch.package import Batch
    from driftwatch.schema import FeatureSchema

METHODS = {"numeric": WASSERSTEIN, "categorical": JENSENSHANNON}
_COLUMN_TYPES = {"numeric": ColumnType.Numerical, "categorical": ColumnType.Categorical}
TARGET, PREDICTION = "target", "prediction"


def _clean(values: pd.Series) -> pd.Series:
    """What Evidently's column drift does before testing: +-inf to NaN, NaN dropped."""
    return values.replace([-np.inf, np.inf], np.nan).dropna()


def evidently_score(reference: pd.Series, current: pd.Series, kind: str, method: str | None = None) -> float:
    """Drift score of Evidently's stattest (default: our method for ``kind``) on one column."""
    column_type = _COLUMN_TYPES[kind]
    ref, cur = _clean(pd.Series(reference)), _clean(pd.Series(current))
    test = get_stattest(ref, cur, column_type, method or METHODS[kind])
    return float(test(ref, cur, column_type, None).drift_score)


def data_definition(schema: FeatureSchema, **extra) -> DataDefinition:
    return DataDefinition(numerical_columns=schema.numeric, categorical_columns=schema.categorical, **extra)


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, schema: FeatureSchema, **preset):
    """Run a ``Report`` with ``DataDriftPreset(**preset)`` (Evidently's defaults if none) and return its snapshot."""
    definition = data_definition(schema)
    report = Report([DataDriftPreset(**preset)])
    return report.run(Dataset.from_pandas(current[schema.names], data_definition=definition),
                      Dataset.from_pandas(reference[schema.names], data_definition=definition))


def report_drift_scores(snapshot) -> dict[str, float]:
    """Per-column drift scores (``ValueDrift`` values) from a drift report snapshot."""
    out = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            out[config["column"]] = float(metric["value"])
    return out


def _quality_part(reference: Batch, window: Batch, schema: FeatureSchema, task: str,
                  classes: list[str] | None):
    """(definition extras, preset, reference frame, current frame) for the labeled rows, or None."""
    if window.target is None:
        return None
    labeled = window.target.notna().to_numpy()
    ref_labeled = reference.target.notna().to_numpy() if reference.target is not None else None
    if labeled.sum() < 2 or ref_labeled is None or ref_labeled.sum() < 2:
        return None

    def frame(batch: Batch, mask: np.ndarray) -> pd.DataFrame:
        df = batch.features.loc[mask, schema.names].reset_index(drop=True)
        if task == "regression":
            df[TARGET] = pd.to_numeric(batch.target[mask], errors="coerce").to_numpy()
            df[PREDICTION] = pd.to_numeric(batch.predictions[mask], errors="coerce").to_numpy()
            return df
        df[TARGET] = [label_text(v) for v in batch.target[mask]]
        df[PREDICTION] = [label_text(v) for v in batch.predictions[mask]]
        if batch.probabilities is not None and classes:
            for i, c in enumerate(classes):
                df[f"proba_{c}"] = np.asarray(batch.probabilities)[mask, i]
        return df

    cur, ref = frame(window, labeled), frame(reference, ref_labeled)
    if task == "regression":
        return {"regression": [Regression(target=TARGET, prediction=PREDICTION)]}, RegressionPreset(), ref, cur
    has_proba = window.probabilities is not None and reference.probabilities is not None and bool(classes)
    if classes and len(classes) == 2:
        pos = str(classes[1])
        if has_proba:
            for df in (cur, ref):
                df[PREDICTION + "_proba"] = df[f"proba_{pos}"]
        task_def = BinaryClassification(target=TARGET, prediction_labels=PREDICTION, pos_label=pos,
                                        prediction_probas=PREDICTION + "_proba" if has_proba else None)
    else:
        task_def = MulticlassClassification(
            target=TARGET, prediction_labels=PREDICTION,
            prediction_probas=[f"proba_{c}" for c in classes] if has_proba else None)
    return {"classification": [task_def]}, ClassificationPreset(), ref, cur


def html_report(reference: Batch, window: Batch, schema: FeatureSchema, *, task: str,
                classes: list[str] | None = None, thresholds: dict[str, float] | None = None,
                title: str = "driftwatch window report") -> str:
    """HTML text of a window's report: drift + data summary, plus model quality where labels exist.

    ``thresholds`` (per feature, e.g. the calibrated ones) replace Evidently's defaults in the drift part.
    """
    definition = data_definition(schema)
    drift = DataDriftPreset(columns=schema.names, num_method=WASSERSTEIN, cat_method=JENSENSHANNON,
                            per_column_threshold=dict(thresholds) if thresholds else None)
    data = Report([drift, DataSummaryPreset()]).run(
        Dataset.from_pandas(window.features[schema.names].reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(reference.features[schema.names].reset_index(drop=True), data_definition=definition))
    parts = [("Data drift and data quality", data.get_html_str(as_iframe=False))]
    quality = _quality_part(reference, window, schema, task, classes)
    if quality is not None:
        extras, preset, ref, cur = quality
        labeled_def = data_definition(schema, **extras)
        snap = Report([preset]).run(Dataset.from_pandas(cur, data_definition=labeled_def),
                                    Dataset.from_pandas(ref, data_definition=labeled_def))
        name = "Regression" if task == "regression" else "Classification"
        parts.append((f"{name} quality on the {len(cur)} labeled rows", snap.get_html_str(as_iframe=False)))
    body = "\n".join(
        f"<section><h2>{html.escape(h)}</h2><iframe style=\"width:100%;height:90vh;border:0\" "
        f"srcdoc=\"{html.escape(doc, quote=True)}\"></iframe></section>" for h, doc in parts)
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
