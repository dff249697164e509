"""Importance of features to the model, and the ranking of drifted features."""

from __future__ import annotations

from monitors.ranking import model_importance, rank_features


def test_importance_finds_the_feature_the_concept_uses(package):
    imp = model_importance(package.estimator, package.reference.features, "classification", seed=0)
    assert set(imp) == set(package.schema.names) and abs(sum(imp.values()) - 1) < 1e-9
    assert max(imp, key=imp.get) == "age"  # Agrawal function 0 depends on age only


def test_drifted_first_then_weight():
    ranking = rank_features({"a": 5.0, "b": 1.2, "c": 0.9, "d": 1.1},
                            {"a", "b", "d"}, {"a": 0.0, "b": 0.5, "c": 0.5, "d": 0.0})
    assert [r["feature"] for r in ranking] == ["b", "a", "d", "c"]
    assert [r["rank"] for r in ranking] == [1, 2, 3, 4]
    assert ranking[0]["weight"] == 1.2 * 0.5
