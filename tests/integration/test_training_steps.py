"""The training steps and the retraining policy against the real PostgreSQL, outside a DAG run:
the policy's decisions by state and trigger, and the drift loop the drift DAG relies on
(after a drift signal, the retrained champion has a lower error on the drifted days)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from include.features.seed import day_list, seed_days
from include.source.simulator import SourceConfig

pytestmark = pytest.mark.integration

START = date(2026, 7, 1)
HGB = [
    {
        "name": "hgb",
        "family": "hist_gradient_boosting",
        "params": {"loss": "poisson", "max_iter": 80, "learning_rate": 0.15},
    }
]


def train(run_id: str, assets=(), force=False, candidates=HGB) -> dict:
    """One training run, step by step as the DAG wires them."""
    from include.training import steps

    plan = steps.plan(run_id, list(assets), force=force)
    if not plan["train"]:
        return {"plan": plan}
    scratch = steps.create_scratch(plan)
    try:
        data = steps.extract_data(plan, scratch)
        results = [
            steps.evaluate_candidate(steps.train_candidate(c, plan, data, scratch), plan, data)
            for c in steps.load_candidates(override=candidates)
        ]
        decision = steps.compare(results, plan, data)
        (steps.promote if decision["promote"] else steps.reject)(decision, plan)
    finally:
        steps.remove_scratch(scratch)
    return {"plan": plan, "decision": decision}


def mae_on(champion: dict, start: date, end: date) -> float:
    from include.features.definitions import feature_columns
    from include.features.store import read_features
    from include.training.registry import load_model

    frame = read_features(start, end, champion["feature_set_version"])
    pred = load_model(champion["artifact_uri"]).predict(frame[feature_columns(champion["feature_set_version"])])
    return float(np.abs(pred - frame["demand"].to_numpy()).mean())


@pytest.fixture
def env(monkeypatch, tmp_storage, fresh_warehouse):
    monkeypatch.setenv("MLOPS_TRAIN_MIN_DAYS", "5")
    monkeypatch.setenv("MLOPS_TRAIN_VALID_DAYS", "3")
    monkeypatch.setenv("MLOPS_RETRAIN_AFTER_DAYS", "4")
    return tmp_storage


def test_policy_decisions(env):
    from include.features.build import build_pending
    from include.training import policy

    cfg = SourceConfig(rows_per_day=240, seed=2)
    seed_days(day_list(START, 6), cfg)
    build_pending()
    d = policy.decide([])
    assert d["train"] is False and "not enough data" in d["reason"]  # 3 training days < 5
    seed_days(day_list(START + timedelta(days=6), 4), cfg)
    build_pending()
    d = policy.decide(["features_demand"])
    assert d["train"] is True and d["reason"].startswith("no champion yet")
    assert (d["train_start"], d["valid_start"], d["train_end"]) == (
        "2026-07-01T00:00:00+00:00",
        "2026-07-08T00:00:00+00:00",
        "2026-07-11T00:00:00+00:00",
    )

    assert train("r1")["decision"]["promote"] is True
    assert policy.decide(["features_demand"])["train"] is False  # 0 new days
    d = policy.decide(["drift_signal"])
    assert d["train"] is False and "no new day" in d["reason"]  # drift, but nothing new to learn from
    seed_days([START + timedelta(days=10)], cfg)
    build_pending()
    d = policy.decide(["features_demand"])
    assert d["train"] is False and "1 new day(s)" in d["reason"]
    d = policy.decide(["drift_signal", "features_demand"])
    assert d["train"] is True and d["reason"].startswith("drift signalled")
    seed_days(day_list(START + timedelta(days=11), 3), cfg)
    build_pending()
    d = policy.decide(["features_demand"])
    assert d["train"] is True and d["reason"].startswith("4 new day(s)")
    assert policy.decide([], force=True)["reason"].startswith("forced")


def test_after_drift_the_retrained_champion_is_better_on_drifted_days(env):
    """Drift from day 16: a drift-triggered run with two drifted days in the window promotes a
    model that beats the old champion on later drifted days (out of sample for both)."""
    from include.features.build import build_pending
    from include.training.registry import get_champion

    drift = START + timedelta(days=16)
    cfg = SourceConfig(rows_per_day=480, seed=9, drift_start=drift)
    seed_days(day_list(START, 16), cfg)
    build_pending()
    train("before-drift")
    old = get_champion()
    assert old["train_end"].date() == drift

    seed_days(day_list(drift, 2), cfg)  # the drift DAG would signal here
    build_pending()
    run = train("after-drift", assets=["drift_signal"])
    assert run["plan"]["reason"].startswith("drift signalled")
    assert run["decision"]["promote"] is True, run["decision"]["reason"]
    new = get_champion()
    assert new["version"] != old["version"]

    later = drift + timedelta(days=2)
    seed_days(day_list(later, 3), cfg)
    build_pending()
    before, after = mae_on(old, later, later + timedelta(days=3)), mae_on(new, later, later + timedelta(days=3))
    assert after < 0.9 * before, (before, after)
