"""The feature schema: what a model accepts, derived from its training data.

>>> import pandas as pd
>>> df = pd.DataFrame({"age": [20, 35.5, 61], "car": ["a", "b", "a"]})
>>> s = FeatureSchema.from_frame(df)
>>> [(f.name, f.kind) for f in s.features]
[('age', 'numeric'), ('car', 'categorical')]
>>> s.feature("age").min, s.feature("age").max, s.feature("car").categories
(20.0, 61.0, ['a', 'b'])
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel

Kind = Literal["numeric", "categorical"]


class Feature(BaseModel):
    """One input column."""

    name: str
    kind: Kind
    dtype: str = "float64"
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    allow_missing: bool = False


class FeatureSchema(BaseModel):
    """Ordered list of features; the model sees columns in this order."""

    features: list[Feature]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "FeatureSchema":
        """Derive the schema from a DataFrame of features (training or reference rows)."""
        out = []
        for name in frame.columns:
            col = frame[name]
            allow_missing = bool(col.isna().any())
            if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
                cats = sorted({str(v) for v in col.dropna().unique()})
                out.append(Feature(name=str(name), kind="categorical", dtype="object",
                                   categories=cats, allow_missing=allow_missing))
            else:
                values = col.dropna()
                out.append(Feature(
                    name=str(name), kind="numeric", dtype=str(col.dtype),
                    min=float(values.min()) if len(values) else None,
                    max=float(values.max()) if len(values) else None,
                    allow_missing=allow_missing,
                ))
        return cls(features=out)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    def frame(self, records: list[dict]) -> pd.DataFrame:
        """Records (already validated) to a DataFrame with the schema's columns and dtypes."""
        df = pd.DataFrame.from_records(records, columns=self.names)
        return self.coerce(df)

    def coerce(self, df: pd.DataFrame) -> pd.DataFrame:
        """Cast columns: numeric to float, categorical to object strings (missing stays NaN/None)."""
        df = df.copy()
        for f in self.features:
            if f.kind == "numeric":
                df[f.name] = pd.to_numeric(df[f.name], errors="coerce").astype("float64")
            else:
                col = df[f.name]
                df[f.name] = col.where(col.isna(), col.astype(str)).astype(object)
        return df
