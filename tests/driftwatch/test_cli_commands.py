"""The CLI as a user runs it: train on a CSV, import an estimator, promote, roll back, status, help."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

COMMANDS = ["up", "train", "import", "serve", "monitor", "simulate", "retrain", "promote", "rollback", "report", "status"]


def cli(tmp_path, *args, ok=True):
    env = {**os.environ, "DRIFTWATCH_DATA_DIR": str(tmp_path / "data")}
    env.pop("BENTOML_HOME", None)
    env.pop("DRIFTWATCH_DATABASE_URL", None)
    r = subprocess.run([sys.executable, "-m", "driftwatch.cli", *args], env=env, capture_output=True, text=True, timeout=300)
    if ok:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_help_lists_every_command_and_each_explains_itself(tmp_path):
    out = cli(tmp_path, "--help").stdout
    for c in COMMANDS:
        assert c in out
        assert "Usage:" in cli(tmp_path, c, "--help").stdout


@pytest.fixture
def csv_data(tmp_path):
    rng = np.random.default_rng(0)
    n = 1200
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.uniform(0, 10, n), "colour": rng.choice(["red", "blue"], n)})
    df["y"] = 3 * df.x1 + df.x2 + (df.colour == "red") * 2 + rng.normal(scale=0.1, size=n)
    df["cls"] = (df.y > df.y.median()).map({True: "high", False: "low"})
    return df


def test_train_from_csv_regression_then_status(tmp_path, csv_data):
    path = tmp_path / "train.csv"
    csv_data.drop(columns=["cls"]).to_csv(path, index=False)
    out = cli(tmp_path, "train", "--data", str(path), "--target", "y", "--name", "prices", "--estimator", "logreg").stdout
    assert "(regression)" in out and "mae=" in out and "rmse=" in out and "r2=" in out
    assert "is now production" in out
    st = json.loads(cli(tmp_path, "status", "--json").stdout)
    assert st["production"].startswith("prices:")
    assert st["deployments"][0]["actor"] == "driftwatch train"


def test_import_promote_rollback(tmp_path, csv_data):
    X, y = csv_data[["x1", "x2", "colour"]], csv_data["cls"]
    pipe = Pipeline([("pre", ColumnTransformer([("c", OneHotEncoder(), ["colour"])], remainder="passthrough")),
                     ("m", LogisticRegression(max_iter=500))]).fit(X.iloc[:800], y.iloc[:800])
    joblib.dump(pipe, tmp_path / "model.joblib")
    csv_data.iloc[800:][["x1", "x2", "colour", "cls"]].to_csv(tmp_path / "ref.csv", index=False)
    out = cli(tmp_path, "import", "--model", str(tmp_path / "model.joblib"), "--reference", str(tmp_path / "ref.csv"),
              "--target", "cls", "--name", "mine").stdout
    assert "(classification)" in out and "accuracy=" in out and "reference 400 held-out rows" in out
    first = json.loads(cli(tmp_path, "status", "--json").stdout)["production"].split(":")[1]
    out = cli(tmp_path, "import", "--model", str(tmp_path / "model.joblib"), "--reference", str(tmp_path / "ref.csv"),
              "--target", "cls", "--name", "mine").stdout
    assert "production stays" in out
    second = out.split("driftwatch promote ")[1].split()[0]
    bad = cli(tmp_path, "promote", "nosuchversion", ok=False)
    assert bad.returncode != 0 and "not in the model store" in bad.stderr and first in bad.stderr
    assert f"production: mine:{second} (was {first})" in cli(tmp_path, "promote", second).stdout
    assert f"production: mine:{first} (was {second})" in cli(tmp_path, "rollback").stdout
    actors = [d["actor"] for d in json.loads(cli(tmp_path, "status", "--json").stdout)["deployments"]]
    assert actors == ["driftwatch rollback", "driftwatch promote", "driftwatch import"]


def test_import_rejects_what_is_not_an_estimator(tmp_path, csv_data):
    joblib.dump({"not": "a model"}, tmp_path / "junk.joblib")
    csv_data.to_csv(tmp_path / "ref.csv", index=False)
    r = cli(tmp_path, "import", "--model", str(tmp_path / "junk.joblib"), "--reference", str(tmp_path / "ref.csv"),
            "--target", "cls", "--name", "x", ok=False)
    assert r.returncode == 1 and "has no predict()" in r.stderr


def test_serve_without_a_model_says_what_to_do(tmp_path):
    r = cli(tmp_path, "serve", ok=False)
    assert r.returncode == 1 and "driftwatch train --demo" in r.stderr


def test_train_needs_a_target(tmp_path, csv_data):
    path = tmp_path / "t.csv"
    csv_data.to_csv(path, index=False)
    r = cli(tmp_path, "train", "--data", str(path), "--target", "nope", ok=False)
    assert r.returncode == 1 and "target column 'nope' not in the data" in r.stderr
