"""Retraining: candidate on reference + recent labeled traffic, validated, maybe promoted.

Data split (no row is both trained on and judged on):

* recent labeled production rows, in time order: the oldest 70 % join the
  training data, the newest 30 % are the *recent hold-out*;
* the current model's reference (held out from its own training) is split in
  half: one half joins the training data, the other is the *original hold-out*.

The candidate (a fresh copy of the production pipeline) is promoted only if it
beats production on the recent hold-out by ``margin`` and is not worse than
production by more than ``max_original_drop`` on the original hold-out.
Exception: when production itself is worse on recent rows than on its own
hold-out by more than that, the concept has changed and the original labels
are stale: the reference rows then get a small weight and the original
hold-out is reported but cannot veto.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from tqdm.auto import tqdm

from driftwatch.package import Batch, ModelPackage
from driftwatch.store import Store, utcnow
from models import registry
from models.changepoint import change_point
from models.metrics import score
from models.slices import worst_slices
from models.train import Trained, outputs, reference_batch

log = logging.getLogger("driftwatch.retrain")


@dataclass
class RetrainPolicy:
    min_labeled_rows: int = 500
    margin: float = 0.01
    max_original_drop: float = 0.05
    recent_rows: int = 20000
    recent_holdout_share: float = 0.3
    min_reference_rows: int = 2000
    seed: int = 0


@dataclass
class RetrainResult:
    outcome: str  # promoted | rejected | skipped | failed
    reason: str
    candidate_version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    error_analysis: dict[str, Any] = field(default_factory=dict)


def primary_metric(task: str) -> tuple[str, int]:
    """The metric that decides, and its direction (+1 higher is better)."""
    return ("accuracy", 1) if task == "classification" else ("rmse", -1)


def _frame(rows: list[dict[str, Any]], package: ModelPackage) -> tuple[pd.DataFrame, pd.Series]:
    X = package.schema.frame([r["features"] for r in rows])
    labels = [r["label"] for r in rows]
    if package.classes is not None:
        by_str = {str(c): c for c in package.classes}
        labels = [by_str.get(str(v), v) for v in labels]
    else:
        labels = [float(v) for v in labels]
    return X, pd.Series(labels, name="target")


def _errors(task: str, y: pd.Series, pred: pd.Series) -> np.ndarray:
    """Per-row error: misclassification, or absolute error above its median for regressors."""
    if task == "classification":
        return (y.astype(str).to_numpy() != pd.Series(pred).astype(str).to_numpy()).astype(float)
    err = np.abs(np.asarray(y, float) - np.asarray(pred, float))
    return (err > np.median(err)).astype(float)


def _fit(estimator: Any, X: pd.DataFrame, y: pd.Series, weights: np.ndarray) -> Any:
    est = clone(estimator)
    key = f"{est.steps[-1][0]}__sample_weight" if isinstance(est, Pipeline) else "sample_weight"
    try:
        return est.fit(X, y, **{key: weights})
    except TypeError:  # an estimator without sample weights
        return clone(estimator).fit(X, y)


def _evaluate(package: ModelPackage, est: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    pred, proba = outputs(est, X)
    return score(package.task, y, pred, proba, package.classes)


def recent_labeled(store: Store, package: ModelPackage, policy: RetrainPolicy) -> tuple[pd.DataFrame, pd.Series, dict]:
    """Recent labeled production rows, oldest first; after a concept change only the rows after it."""
    rows = store.labeled_rows(limit=policy.recent_rows, model_name=package.name)
    data: dict[str, Any] = {"labeled_rows": len(rows)}
    if not rows:
        return package.schema.frame([]), pd.Series([], dtype=object), data
    X, y = _frame(rows, package)
    pred, _ = outputs(package.estimator, X)
    cp = change_point(_errors(package.task, y, pred))
    if cp is not None:
        data["change_point_dropped_rows"] = cp
        X, y = X.iloc[cp:].reset_index(drop=True), y.iloc[cp:].reset_index(drop=True)
    return X, y, data


def retrain(store: Store, package: ModelPackage, policy: RetrainPolicy, *, progress: bool = False) -> tuple[RetrainResult, Trained | None]:
    """Train and judge a candidate. Stores nothing; see ``run`` for the full step."""
    X_recent, y_recent, data = recent_labeled(store, package, policy)
    rows = len(X_recent)
    if rows < policy.min_labeled_rows:
        return RetrainResult("skipped", f"{rows} labeled production rows of the current concept, need "
                             f"{policy.min_labeled_rows}", data=data), None
    bar = tqdm(total=4, desc="retrain", unit="step", disable=not progress)
    cut = int(rows * (1 - policy.recent_holdout_share))
    X_rt, y_rt, X_rh, y_rh = X_recent.iloc[:cut], y_recent.iloc[:cut], X_recent.iloc[cut:], y_recent.iloc[cut:]
    ref = package.reference
    rng = np.random.default_rng(policy.seed)
    order = rng.permutation(len(ref))
    half = len(ref) // 2
    X_ref, y_ref = ref.features.reset_index(drop=True), ref.target.reset_index(drop=True)
    X_ot, y_ot = X_ref.iloc[order[:half]], y_ref.iloc[order[:half]]
    X_oh, y_oh = X_ref.iloc[order[half:]], y_ref.iloc[order[half:]]
    name, sign = primary_metric(package.task)
    prod_recent = _evaluate(package, package.estimator, X_rh, y_rh)
    prod_original = _evaluate(package, package.estimator, X_oh, y_oh)
    # If production itself is much worse on recent rows than on its own hold-out, the
    # concept changed: the old labels are stale, so they get little weight and cannot veto.
    prod_loss = sign * (prod_original[name] - prod_recent[name])
    stale = prod_loss > policy.max_original_drop
    X_train = pd.concat([X_ot, X_rt], ignore_index=True)
    y_train = pd.concat([y_ot, y_rt], ignore_index=True)
    if stale:
        w_ref, w_recent = 0.05, 1.0
    else:  # recent rows weigh at least twice as much as the old reference in total
        w_ref, w_recent = 1.0, max(1.0, 2.0 * len(X_ot) / max(len(X_rt), 1))
    weights = np.concatenate([np.full(len(X_ot), w_ref), np.full(len(X_rt), w_recent)])
    data.update(train_rows=len(X_train), train_reference_rows=len(X_ot), train_recent_rows=len(X_rt),
                reference_weight=w_ref, recent_weight=w_recent, recent_holdout_rows=len(X_rh),
                original_holdout_rows=len(X_oh), concept_changed=bool(stale))
    bar.update()
    candidate = _fit(package.estimator, X_train, y_train, weights)
    bar.update()
    metrics = {
        "production": {"recent": prod_recent, "original": prod_original},
        "candidate": {"recent": _evaluate(package, candidate, X_rh, y_rh),
                      "original": _evaluate(package, candidate, X_oh, y_oh)},
    }
    bar.update()
    gain = sign * (metrics["candidate"]["recent"][name] - metrics["production"]["recent"][name])
    drop = sign * (metrics["production"]["original"][name] - metrics["candidate"]["original"][name])
    metrics["decision"] = {"metric": name, "recent_gain": gain, "original_drop": drop, "production_recent_loss": prod_loss,
                           "original_guard": not stale, "margin": policy.margin,
                           "max_original_drop": policy.max_original_drop}
    analysis = {
        "production": worst_slices(X_rh, y_rh, outputs(package.estimator, X_rh)[0], package.task),
        "candidate": worst_slices(X_rh, y_rh, outputs(candidate, X_rh)[0], package.task),
    }
    if gain < policy.margin:
        outcome, reason = "rejected", f"{name} on recent data {gain:+.4f} vs production, needs ≥ {policy.margin:+.4f}"
    elif drop > policy.max_original_drop and not stale:
        outcome, reason = "rejected", f"{name} on original hold-out drops by {drop:.4f} > {policy.max_original_drop}"
    else:
        outcome, reason = "promoted", f"{name} {gain:+.4f} on recent data, original hold-out change {-drop:+.4f}"
        if stale:
            reason += f" (concept changed: production lost {prod_loss:.4f} on recent data, original labels are stale)"
    # The candidate's reference: rows it never saw, preferring the recent distribution. After a
    # concept change the original hold-out's labels are stale: its rows only lend their features.
    X_new_ref, y_new_ref = X_rh, y_rh
    if len(X_rh) < policy.min_reference_rows:
        y_old = pd.Series([None] * len(y_oh), dtype=object) if stale else y_oh
        X_new_ref = pd.concat([X_rh, X_oh], ignore_index=True)
        y_new_ref = pd.concat([y_rh.astype(object), y_old.astype(object)], ignore_index=True)
    new_ref: Batch = reference_batch(candidate, X_new_ref.reset_index(drop=True), y_new_ref.reset_index(drop=True))
    labeled = new_ref.target.notna().to_numpy()
    baseline = score(package.task, new_ref.target[labeled], new_ref.predictions[labeled],
                     new_ref.probabilities[labeled] if new_ref.probabilities is not None else None, package.classes)
    trained = Trained(estimator=candidate, task=package.task, schema=package.schema, reference=new_ref,
                      baseline=baseline,
                      classes=package.classes, trained_at=utcnow().isoformat(timespec="seconds"),
                      trained_from=f"retrain of {package.tag}: {len(X_ot)} reference + {len(X_rt)} recent labeled rows",
                      train_rows=len(X_train))
    bar.update()
    bar.close()
    return RetrainResult(outcome, reason, metrics=metrics, data=data, error_analysis=analysis), trained


def run(store: Store, package: ModelPackage, policy: RetrainPolicy, *, trigger: str, progress: bool = False,
        promote: bool = True) -> RetrainResult:
    """Retrain, store the candidate, promote it if it wins; one ``retrains`` row either way."""
    started = utcnow()
    rid = store.add_retrain({"started_at": started, "trigger": trigger, "model_name": package.name,
                             "base_version": package.version, "outcome": "running"})
    try:
        result, trained = retrain(store, package, policy, progress=progress)
        if trained is not None:
            cand = registry.save(package.name, trained, extra={"retrain_id": rid, "base_version": package.version})
            result.candidate_version = cand.version
            if result.outcome == "promoted" and promote:
                store.deploy(package.name, cand.version, reason=f"retrain #{rid}: {result.reason}", actor=f"retrain ({trigger})")
            elif result.outcome == "promoted":
                result.outcome, result.reason = "candidate", result.reason + " (not promoted: --no-promote)"
    except Exception as e:  # noqa: BLE001 - recorded, then re-raised for the caller's log
        store.update_retrain(rid, finished_at=utcnow(), outcome="failed", reason=f"{type(e).__name__}: {e}")
        raise
    store.update_retrain(rid, finished_at=utcnow(), outcome=result.outcome, reason=result.reason,
                         candidate_version=result.candidate_version, data=result.data,
                         metrics=_jsonable(result.metrics), error_analysis=_jsonable(result.error_analysis))
    log.warning("retrain #%d of %s: %s — %s", rid, package.tag, result.outcome, result.reason)
    return result


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    return obj
