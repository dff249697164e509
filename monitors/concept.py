"""Concept drift: performance significantly worse than the reference's, or a sequential alarm.

Two signals, either raises the flag:

* a one-sided test on the labeled rows of the window against the reference
  rows: classification error counts with Fisher's exact test (both sample
  sizes enter; exact for small label counts), regression absolute errors with
  Welch's t-test; significant at ``alpha``, given at least ``min_labeled`` rows;
* the CUSUM bank (``monitors.sequential``) fed with every newly labeled
  instance's error, which keeps its state across windows; the flag stays up
  while its last alarm is within the last ``recent`` labeled instances.

>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> mon = ConceptDriftMonitor("classification").fit(rng.random(4000) < 0.1)
>>> mon.evaluate(rng.random(300) < 0.1).drifted
False
>>> bad = rng.random(300) < 0.3
>>> r = mon.evaluate(bad)
>>> r.drifted, r.reasons[0].startswith("performance below baseline")
(True, True)
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import fisher_exact, ttest_ind

from monitors.sequential import CusumBank


@dataclass
class ConceptResult:
    drifted: bool
    reasons: list[str] = field(default_factory=list)
    labeled_rows: int = 0
    window_error: float | None = None
    reference_error: float | None = None
    p_value: float | None = None
    test: str = ""
    sequential_alarms: int = 0
    samples_since_alarm: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def worse_error_rate_p(window_errors: int, window_n: int, ref_errors: int, ref_n: int) -> float:
    """One-sided Fisher exact p-value that the window's error rate exceeds the reference's."""
    table = [[window_errors, window_n - window_errors], [ref_errors, ref_n - ref_errors]]
    return float(fisher_exact(table, alternative="greater")[1])


def worse_mean_error_p(window_errors: np.ndarray, ref_errors: np.ndarray) -> float:
    """One-sided Welch t-test p-value that the window's mean absolute error exceeds the reference's."""
    if window_errors.size < 2 or np.all(window_errors == window_errors[0]) and np.all(ref_errors == ref_errors[0]):
        return 1.0
    with warnings.catch_warnings():  # constant windows: scipy warns about precision, the p-value is fine
        warnings.simplefilter("ignore", RuntimeWarning)
        p = ttest_ind(window_errors, ref_errors, equal_var=False, alternative="greater").pvalue
    return float(p) if np.isfinite(p) else 1.0


class ConceptDriftMonitor:
    """Significance test per window plus a sequential detector across windows."""

    def __init__(self, task: str = "classification", alpha: float = 1e-3, min_labeled: int = 30,
                 recent: int = 1000, arl0: float = 500_000, baseline_margin: float = 1.0):
        self.task = task
        self.alpha = alpha
        self.min_labeled = min_labeled
        self.recent = recent
        self.arl0 = arl0
        self.baseline_margin = baseline_margin

    def fit(self, reference_errors) -> ConceptDriftMonitor:
        """``reference_errors``: per-instance errors of the model on the reference's labeled rows."""
        e = np.asarray(reference_errors, dtype=float)
        self.reference_errors_ = e[np.isfinite(e)]
        self.reference_error_ = float(self.reference_errors_.mean())
        self.detector_ = CusumBank(task=self.task, arl0=self.arl0,
                                   baseline_margin=self.baseline_margin).fit(self.reference_errors_)
        return self

    def update_errors(self, errors) -> bool:
        """Feed errors of newly labeled instances, in arrival order; True if the detector alarmed."""
        return self.detector_.update(errors)

    def state(self) -> dict:
        return self.detector_.state()

    def load_state(self, state: dict) -> ConceptDriftMonitor:
        self.detector_.load_state(state)
        return self

    def evaluate(self, window_errors) -> ConceptResult:
        """Test the window's labeled-row errors; combine with the detector's recent alarms."""
        e = np.asarray(window_errors, dtype=float)
        e = e[np.isfinite(e)]
        det = self.detector_
        since = det.samples_since_alarm
        r = ConceptResult(drifted=False, labeled_rows=int(e.size), reference_error=self.reference_error_,
                          sequential_alarms=det.n_alarms_, samples_since_alarm=since)
        if e.size:
            r.window_error = float(e.mean())
        if e.size >= self.min_labeled:
            ref = self.reference_errors_
            if self.task == "regression":
                r.test, r.p_value = "welch_t", worse_mean_error_p(e, ref)
            else:
                r.test = "fisher_exact"
                r.p_value = worse_error_rate_p(int((e > 0).sum()), int(e.size), int((ref > 0).sum()), int(ref.size))
            if r.p_value < self.alpha:
                r.reasons.append(
                    f"performance below baseline: error {r.window_error:.4g} vs {self.reference_error_:.4g} "
                    f"on {e.size} labeled rows ({r.test} p={r.p_value:.2g} < {self.alpha:g})")
        if since is not None and since < self.recent:
            r.reasons.append(f"sequential detector (CUSUM) alarmed {since} labeled instances ago")
        r.drifted = bool(r.reasons)
        return r
