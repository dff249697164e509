"""Error analysis by slice: where does a model do worst?

Numeric features are cut into quartiles, categorical ones by value; each
slice with at least ``min_rows`` rows gets its error (misclassification rate,
or mean absolute error for regressors).

>>> import pandas as pd
>>> X = pd.DataFrame({"car": ["a"] * 30 + ["b"] * 30, "age": list(range(60))})
>>> y = pd.Series([1] * 60)
>>> pred = pd.Series([1] * 30 + [0] * 30)
>>> worst_slices(X, y, pred, "classification", top=1)[0]["slice"]
'car = b'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def _errors(y: pd.Series, pred: pd.Series, task: str) -> np.ndarray:
    if task == "classification":
        return (pd.Series(y).astype(str).to_numpy() != pd.Series(pred).astype(str).to_numpy()).astype(float)
    return np.abs(np.asarray(y, float) - np.asarray(pred, float))


def worst_slices(X: pd.DataFrame, y: pd.Series, pred: pd.Series, task: str, *, top: int = 5,
                 min_rows: int = 20) -> list[dict[str, Any]]:
    """The ``top`` slices with the highest error, worst first."""
    err = _errors(y, pred, task)
    X = X.reset_index(drop=True)
    out = []
    for col in X.columns:
        s = X[col]
        if pd.api.types.is_numeric_dtype(s):
            try:
                groups = pd.qcut(s, 4, duplicates="drop")
            except ValueError:
                continue
            keys = groups.astype(str)
            names = {k: f"{col} in {k}" for k in keys.unique()}
        else:
            keys = s.astype(str)
            names = {k: f"{col} = {k}" for k in keys.unique()}
        for k, idx in keys.groupby(keys, observed=True).groups.items():
            if len(idx) < min_rows:
                continue
            out.append({"slice": names[k], "rows": int(len(idx)), "error": float(err[np.asarray(idx)].mean())})
    out.sort(key=lambda r: (-r["error"], -r["rows"]))
    return out[:top]
