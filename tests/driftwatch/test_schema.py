"""Feature schema derivation: what the service validates against and the monitor compares."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from driftwatch.schema import Feature, FeatureSchema
from models.datagen import CATEGORICAL, FEATURES, agrawal


def test_kinds_ranges_and_categories_from_a_frame():
    df = pd.DataFrame({
        "age": [20, 35, 61, 44],                      # int64 → numeric
        "income": [1.5, np.nan, 3.25, 2.0],           # float with a gap → numeric, nullable
        "car": ["b", "a", "b", "c"],                  # strings → categorical, sorted categories
        "colour": ["red", None, "blue", "red"],       # categorical with a gap → nullable
        "member": [True, False, True, True],          # bool → categorical, not numeric
        "zip": pd.Series([3, 1, 2, 3]).astype("category").cat.codes.astype("int8"),
    })
    s = FeatureSchema.from_frame(df)
    assert s.names == ["age", "income", "car", "colour", "member", "zip"], "column order is the model's order"
    assert s.numeric == ["age", "income", "zip"]
    assert s.categorical == ["car", "colour", "member"]

    age = s.feature("age")
    assert (age.kind, age.min, age.max, age.allow_missing, age.dtype) == ("numeric", 20.0, 61.0, False, "int64")
    income = s.feature("income")
    assert (income.min, income.max, income.allow_missing) == (1.5, 3.25, True)
    assert s.feature("car").categories == ["a", "b", "c"] and not s.feature("car").allow_missing
    colour = s.feature("colour")
    assert colour.categories == ["blue", "red"] and colour.allow_missing
    assert s.feature("member").categories == ["False", "True"]
    with pytest.raises(KeyError):
        s.feature("nope")


def test_all_missing_numeric_column_has_no_range():
    s = FeatureSchema.from_frame(pd.DataFrame({"x": [np.nan, np.nan]}))
    f = s.feature("x")
    assert (f.kind, f.min, f.max, f.allow_missing) == ("numeric", None, None, True)


def test_demo_data_schema():
    X, _ = agrawal(2000, seed=5)
    s = FeatureSchema.from_frame(X)
    assert s.names == FEATURES
    assert s.categorical == CATEGORICAL
    assert s.feature("elevel").categories == [f"level_{i}" for i in range(5)]
    assert s.feature("zipcode").categories == [f"zip_{i}" for i in range(9)]
    age = s.feature("age")
    assert 20 <= age.min < age.max <= 80
    assert not any(f.allow_missing for f in s.features)


def test_round_trips_through_json():
    """The registry stores the schema as JSON in package.json and reads it back."""
    X, _ = agrawal(300, seed=1)
    s = FeatureSchema.from_frame(X.assign(extra=[None] * 299 + ["x"]))
    back = FeatureSchema.model_validate_json(s.model_dump_json())
    assert back == s


def test_frame_and_coerce_apply_the_schema():
    s = FeatureSchema(features=[Feature(name="n", kind="numeric", allow_missing=True),
                                Feature(name="c", kind="categorical", categories=["1", "x"], allow_missing=True)])
    df = s.frame([{"c": 1, "n": "2.5"}, {"n": None, "c": None}, {"n": 3, "c": "x"}])
    assert list(df.columns) == ["n", "c"]
    assert df["n"].dtype == np.float64
    assert df["n"].iloc[0] == 2.5 and math.isnan(df["n"].iloc[1]) and df["n"].iloc[2] == 3.0
    assert df["c"].dtype == object
    assert df["c"].iloc[0] == "1" and df["c"].iloc[2] == "x"
    assert pd.isna(df["c"].iloc[1]), "missing stays missing, not the string 'None'"
