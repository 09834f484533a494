"""Make it yours (README): another scikit-learn estimator, named in a hyperparameter file, trained
by the real training steps on a few simulated days, registered and promoted like the default models.

The project trains HistGradientBoosting, Ridge and ElasticNet; these tests ask for families it
does not use: a RandomForestRegressor (fitted with the recency weights) and a KNeighborsRegressor
(its ``fit`` takes no ``sample_weight``: fitted unweighted), both through family ``sklearn``.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from include.features.seed import day_list, seed_days
from include.source.simulator import SourceConfig

pytestmark = pytest.mark.integration

START = date(2026, 9, 1)
RANDOM_FOREST = """\
candidates:
  - name: random_forest
    family: sklearn
    estimator: RandomForestRegressor
    params:
      n_estimators: 30
      max_depth: 8
      min_samples_leaf: 5
      n_jobs: 1
"""
K_NEIGHBORS = """\
candidates:
  - name: k_neighbors
    family: sklearn
    estimator: KNeighborsRegressor
    log_target: true
    params:
      n_neighbors: 15
      weights: distance
"""


@pytest.mark.parametrize(
    ("hyperparams", "estimator"),
    [(RANDOM_FOREST, "RandomForestRegressor"), (K_NEIGHBORS, "KNeighborsRegressor")],
    ids=["random_forest", "k_neighbors"],
)
def test_a_new_estimator_family_trains_through_the_hyperparameter_file(
    hyperparams, estimator, tmp_path, monkeypatch, tmp_storage, fresh_warehouse
):
    from include.features.build import build_pending
    from include.training import steps
    from include.training.registry import get_champion, load_model

    path = tmp_path / "hyperparams.yaml"
    path.write_text(hyperparams)
    monkeypatch.setenv("MLOPS_HYPERPARAMS_FILE", str(path))
    monkeypatch.setenv("MLOPS_TRAIN_WINDOW_DAYS", "8")
    monkeypatch.setenv("MLOPS_TRAIN_VALID_DAYS", "2")
    monkeypatch.setenv("MLOPS_TRAIN_MIN_DAYS", "5")

    candidates = steps.load_candidates()  # the file named by MLOPS_HYPERPARAMS_FILE, as the DAG reads it
    assert [c["estimator"] for c in candidates] == [estimator]

    seed_days(day_list(START, 8), SourceConfig(rows_per_day=240, seed=5))
    build_pending()
    plan = steps.plan("make-it-yours", [], force=True)
    assert plan["train"], plan["reason"]
    scratch = steps.create_scratch(plan)
    try:
        data = steps.extract_data(plan, scratch)
        trained = steps.train_candidate(candidates[0], plan, data, scratch)
        result = steps.evaluate_candidate(trained, plan, data)
        decision = steps.compare([result], plan, data)
        assert decision["promote"], decision["reason"]  # the first model ever becomes champion
        steps.promote(decision, plan)
    finally:
        steps.remove_scratch(scratch)

    champion = get_champion()
    assert champion["version"] == trained["version"]
    model = load_model(champion["artifact_uri"])
    assert champion["model_family"] == f"sklearn:{estimator}"
    fitted = model.named_steps["model"]
    assert type(getattr(fitted, "regressor_", fitted)).__name__ == estimator
    assert np.isfinite(champion["metric_value"]) and champion["metric_value"] > 0
