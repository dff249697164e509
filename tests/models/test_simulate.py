"""Scenario streams: each drift is what it says, and reproducible."""

import pytest

from models.simulate import scenario_rows


def test_scenarios_are_seeded():
    a, _ = scenario_rows("covariate", 500, seed=4)
    b, _ = scenario_rows("covariate", 500, seed=4)
    assert a.equals(b)


def test_each_scenario_changes_what_it_names():
    base_X, base_y = scenario_rows("none", 20000, seed=1)
    cov_X, cov_y = scenario_rows("covariate", 20000, seed=1)
    prior_X, prior_y = scenario_rows("prior", 20000, seed=1)
    con_X, con_y = scenario_rows("concept", 20000, seed=1)
    assert cov_X.age.mean() > base_X.age.mean() + 3 and cov_X.salary.mean() > base_X.salary.mean() + 10000
    # 20% approvals before the 5% label noise flips some: 0.2 * 0.95 + 0.8 * 0.05 = 0.23
    assert abs(prior_y.mean() - 0.23) < 0.015 and base_y.mean() > 0.5
    # concept: same feature distribution, different labels
    assert abs(con_X.age.mean() - base_X.age.mean()) < 1 and abs(con_X.salary.mean() - base_X.salary.mean()) < 2000
    assert abs(con_y.mean() - base_y.mean()) > 0.05


def test_drift_after_keeps_the_first_rows_undrifted():
    X, _ = scenario_rows("covariate", 4000, seed=2, drift_after=2000)
    assert X.age.iloc[2000:].mean() > X.age.iloc[:2000].mean() + 3


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="unknown scenario"):
        scenario_rows("sideways", 10, seed=0)
