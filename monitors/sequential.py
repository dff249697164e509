"""Sequential change detector on the per-instance error stream: a bank of one-sided CUSUMs.

The baseline error comes from the reference (held-out rows), which ADWIN
does not use: ADWIN must learn the pre-change level from the stream itself and
tests both directions at every cut point. Knowing the baseline, a CUSUM is
the optimal detector (Lorden) of a rise to a given level; a small bank of
them (rises of 0.05, 0.15 and 0.35 in error rate by default) covers slow and
sudden degradations, with each threshold set so the whole bank's average run
length between false alarms is ``arl0`` instances (Siegmund's approximation
ARL ~ exp(h) / KL(p0 || p1), spent evenly across the bank).

Classification errors are 0/1 and each CUSUM adds the log-likelihood ratio
of Bernoulli(p1) to Bernoulli(p0). The baseline p0 is the reference error
rate plus ``baseline_margin`` standard errors, so that the uncertainty of a
finite reference does not turn into false alarms. Regression errors (absolute
errors) are first mapped to normal scores through the reference errors'
empirical distribution, then Gaussian mean-shift CUSUMs (0.25, 0.5 and 1 sd).

After an alarm every CUSUM restarts from zero. Updates take batches and are
vectorised; ``state`` / ``load_state`` checkpoint the detector as JSON.

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> det = CusumBank().fit(rng.random(5000) < 0.1)
>>> det.update(rng.random(10000) < 0.1)      # no change: silent
False
>>> det.update(rng.random(2000) < 0.3)       # error rate triples
True
>>> det.alarms_[0] - 10000 < 300              # instances after the change
True
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri

DEFAULT_SHIFTS = {"classification": (0.05, 0.15, 0.35), "regression": (0.25, 0.5, 1.0)}
STATE_VERSION = 1


def _bernoulli_kl(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


class CusumBank:
    """One-sided CUSUMs for a rise of the error level above the reference's."""

    def __init__(self, task: str = "classification", arl0: float = 500_000,
                 shifts: tuple[float, ...] | None = None, baseline_margin: float = 1.0):
        self.task = task
        self.arl0 = arl0
        self.shifts = shifts
        self.baseline_margin = baseline_margin

    def fit(self, reference_errors) -> CusumBank:
        """Learn the baseline from the reference's per-instance errors; reset the statistics."""
        e = np.asarray(reference_errors, dtype=float)
        e = e[np.isfinite(e)]
        if e.size < 10:
            raise ValueError("need at least 10 reference errors")
        shifts = tuple(self.shifts or DEFAULT_SHIFTS[self.task])
        k = len(shifts)
        self.up_: list[float] = []
        self.down_: list[float] = []
        self.thresholds_: list[float] = []
        if self.task == "classification":
            n = e.size
            p_hat = float((e > 0).mean())
            se = math.sqrt(max(p_hat * (1 - p_hat), 1.0 / n) / n)
            p0 = min(max(p_hat + self.baseline_margin * se, 0.5 / n), 0.9)
            self.baseline_ = p0
            for d in shifts:
                p1 = min(p0 + d, 0.999)
                self.up_.append(math.log(p1 / p0))
                self.down_.append(math.log((1 - p1) / (1 - p0)))
                self.thresholds_.append(max(math.log(k * self.arl0 * _bernoulli_kl(p0, p1)), 1.0))
            self.reference_sorted_ = None
        else:
            self.baseline_ = float(np.mean(e))
            self.reference_sorted_ = np.sort(e)
            for d in shifts:
                self.up_.append(d)
                self.down_.append(d * d / 2)
                # Siegmund: ARL0 ~ (exp(h + 1.166 d) - h - 1.166 d - 1) / (d^2 / 2)
                self.thresholds_.append(max(math.log(k * self.arl0 * d * d / 2) - 1.166 * d, 1.0))
        self.shifts_ = list(shifts)
        self.statistics_ = [0.0] * k
        self.n_seen_ = 0
        self.alarms_: list[int] = []
        self.n_alarms_ = 0
        self.drift_detected = False
        return self

    def _increments(self, errors: np.ndarray) -> np.ndarray:
        """(k, n) log-likelihood-ratio increments of each CUSUM."""
        if self.task == "classification":
            hit = errors > 0
            return np.where(hit[None, :], np.array(self.up_)[:, None], np.array(self.down_)[:, None])
        ref = self.reference_sorted_
        n = ref.size
        lo = np.searchsorted(ref, errors, "left")
        hi = np.searchsorted(ref, errors, "right")
        z = ndtri(np.clip((lo + hi) / 2.0 + 0.5, 0.5, n + 0.5) / (n + 1.0))
        return np.array(self.up_)[:, None] * z[None, :] - np.array(self.down_)[:, None]

    def update(self, errors) -> bool:
        """Feed per-instance errors in stream order; True if any alarm fired in this batch.

        ``alarms_`` keeps the stream positions (0-based) of the last 100 alarms.
        """
        x = np.asarray(errors, dtype=float).ravel()
        x = x[np.isfinite(x)]
        if x.size == 0:
            self.drift_detected = False
            return False
        inc = self._increments(x)
        h = np.array(self.thresholds_)[:, None]
        s0 = np.array(self.statistics_)
        start, fired = 0, False
        while start < x.size:
            c = np.cumsum(inc[:, start:], axis=1)
            # Lindley recursion solved in closed form: S_t = C_t - min(-S_0, min_{j<=t} C_j)
            s = c - np.minimum(-s0[:, None], np.minimum.accumulate(c, axis=1))
            over = np.flatnonzero((s >= h).any(axis=0))
            if over.size == 0:
                s0 = s[:, -1]
                break
            at = start + int(over[0])
            self.alarms_.append(self.n_seen_ + at)
            self.n_alarms_ += 1
            fired = True
            s0 = np.zeros(len(self.thresholds_))
            start = at + 1
        self.statistics_ = [float(v) for v in s0]
        self.alarms_ = self.alarms_[-100:]
        self.n_seen_ += int(x.size)
        self.drift_detected = fired
        return fired

    @property
    def samples_since_alarm(self) -> int | None:
        """Instances fed since the last alarm (None if it never fired)."""
        return None if not self.alarms_ else self.n_seen_ - 1 - self.alarms_[-1]

    def state(self) -> dict:
        """JSON-able checkpoint: parameters, baseline and running statistics."""
        return {
            "version": STATE_VERSION, "task": self.task, "arl0": self.arl0,
            "baseline_margin": self.baseline_margin, "shifts": self.shifts_, "baseline": self.baseline_,
            "up": self.up_, "down": self.down_, "thresholds": self.thresholds_,
            "reference_sorted": None if self.reference_sorted_ is None else self.reference_sorted_.tolist(),
            "statistics": self.statistics_, "n_seen": self.n_seen_, "alarms": self.alarms_,
            "n_alarms": self.n_alarms_,
        }

    def load_state(self, state: dict) -> CusumBank:
        """Restore a checkpoint taken with ``state`` (overrides parameters and baseline)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported detector state version {state.get('version')!r}")
        self.task, self.arl0 = state["task"], state["arl0"]
        self.baseline_margin = state["baseline_margin"]
        self.shifts = self.shifts_ = list(state["shifts"])
        self.baseline_ = state["baseline"]
        self.up_, self.down_ = list(state["up"]), list(state["down"])
        self.thresholds_ = list(state["thresholds"])
        ref = state.get("reference_sorted")
        self.reference_sorted_ = None if ref is None else np.asarray(ref, dtype=float)
        self.statistics_ = [float(v) for v in state["statistics"]]
        self.n_seen_ = int(state["n_seen"])
        self.alarms_ = [int(a) for a in state["alarms"]]
        self.n_alarms_ = int(state["n_alarms"])
        self.drift_detected = False
        return self
