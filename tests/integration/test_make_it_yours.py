"""Make it yours (README): another scikit-learn estimator, named in a hyperparameter file, trained
by the real training steps on a few simulated days, registered and promoted like the default models.

The project trains HistGradientBoosting, Ridge and ElasticNet; this test asks for a
RandomForestRegressor. Until include/training/candidates.py accepts an estimator named in the file
(README "Make it yours" gives the change), validation rejects the file with a clear error and the
test is an expected failure; ``strict`` turns it into a failure the day the change lands, so the
marker is removed and the test then guards the forker's path for real.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from include.features.seed import day_list, seed_days
from include.source.simulator import SourceConfig
from include.training.candidates import HyperparameterConfigError

pytestmark = pytest.mark.integration

START = date(2026, 9, 1)
HYPERPARAMS = """\
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


@pytest.mark.xfail(
    strict=True,
    raises=HyperparameterConfigError,
    reason="include/training/candidates.py knows three families only (README: Make it yours)",
)
def test_a_new_estimator_family_trains_through_the_hyperparameter_file(
    tmp_path, monkeypatch, tmp_storage, fresh_warehouse
):
    from include.features.build import build_pending
    from include.training import steps
    from include.training.registry import get_champion, load_model

    path = tmp_path / "hyperparams.yaml"
    path.write_text(HYPERPARAMS)
    monkeypatch.setenv("MLOPS_HYPERPARAMS_FILE", str(path))
    monkeypatch.setenv("MLOPS_TRAIN_WINDOW_DAYS", "8")
    monkeypatch.setenv("MLOPS_TRAIN_VALID_DAYS", "2")
    monkeypatch.setenv("MLOPS_TRAIN_MIN_DAYS", "5")

    candidates = steps.load_candidates()  # the file named by MLOPS_HYPERPARAMS_FILE, as the DAG reads it
    assert [c["name"] for c in candidates] == ["random_forest"]

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
    assert type(model.named_steps["model"]).__name__ == "RandomForestRegressor"
    assert np.isfinite(champion["metric_value"]) and champion["metric_value"] > 0
