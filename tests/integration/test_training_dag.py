"""Real runs of the ``training`` DAG with ``dag.test()`` on features built from seeded days.

Hyperparameter sets come through the DAG's ``hyperparameters`` param (small models keep the
suite fast); "better" and "worse" are forced by the candidates themselves: a heavily
regularised ridge (close to a constant) against gradient boosting.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from include.features.seed import day_list, seed_days
from include.notify import read_alerts
from include.source.simulator import SourceConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CFG = SourceConfig(rows_per_day=480, seed=21)  # 20 stations
START = date(2026, 6, 1)

GOOD = [
    {
        "name": "hgb",
        "family": "hist_gradient_boosting",
        "params": {"loss": "poisson", "max_iter": 60, "learning_rate": 0.15},
    },
    {"name": "ridge", "family": "ridge", "params": {"alpha": 1.0}, "log_target": True},
    {"name": "enet", "family": "elastic_net", "params": {"alpha": 0.05, "l1_ratio": 0.5}},
]
FLAT = [{"name": "flat", "family": "ridge", "params": {"alpha": 1.0e7}}]
FLATTER = [{"name": "flatter", "family": "ridge", "params": {"alpha": 1.0e8}}]


@pytest.fixture
def training_dag(monkeypatch, tmp_storage, fresh_warehouse):
    """The training DAG on 12 days of features (9 training + 3 validation days)."""
    monkeypatch.setenv("MLOPS_RETRY_DELAY_S", "0.1")
    monkeypatch.setenv("MLOPS_TRAIN_MIN_DAYS", "5")
    monkeypatch.setenv("MLOPS_TRAIN_VALID_DAYS", "3")
    from airflow.dag_processing.dagbag import DagBag

    from include.features.build import build_pending

    seed_days(day_list(START, 12), CFG)
    build_pending()
    bag = DagBag(dag_folder=str(ROOT / "dags" / "training.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("training")


def run(dag, **conf):
    return dag.test(logical_date=None, run_conf=conf)


def tis(dr) -> dict[tuple[str, int], str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {(ti.task_id, ti.map_index): ti.state for ti in dr.get_task_instances(session=session)}


def registry_rows(run_id: str | None = None) -> list[dict]:
    from include.training.registry import list_models

    return list_models(run_id)


def scratch_dirs(tmp_storage) -> list[Path]:
    root = tmp_storage["artifacts"] / "scratch"
    return list(root.iterdir()) if root.exists() else []


def test_k_sets_map_k_candidates_first_model_becomes_champion_and_reruns_add_nothing(training_dag, tmp_storage):
    from include.features.definitions import feature_columns
    from include.features.store import read_features
    from include.training.registry import get_champion, load_model, load_reference
    from include.warehouse import db

    dr = run(training_dag, hyperparameters=GOOD)
    assert dr.state == "success"
    states = tis(dr)
    for task_id in ("candidate.train_candidate", "candidate.evaluate_candidate"):
        assert sorted(m for (t, m), s in states.items() if t == task_id and s == "success") == [0, 1, 2]
    assert states[("review", -1)] == "success" and states[("promote", -1)] == "success"
    assert states[("reject", -1)] == "skipped"
    assert states[("archive_cold_storage", -1)] == "success"
    assert states[("remove_scratch", -1)] == "success" and scratch_dirs(tmp_storage) == []

    rows = registry_rows(dr.run_id)
    assert len(rows) == 3 and {r["model_family"] for r in rows} == {"hist_gradient_boosting", "ridge", "elastic_net"}
    champion = get_champion()
    assert [r["version"] for r in rows if r["status"] == "champion"] == [champion["version"]]
    assert {r["status"] for r in rows if r["version"] != champion["version"]} == {"rejected"}
    assert champion["metric_value"] == min(r["metric_value"] for r in rows)
    assert champion["feature_set_version"] == "v2"
    assert champion["train_end"].date() == START + timedelta(days=12)
    assert champion["valid_start"].date() == START + timedelta(days=9)

    # the champion's artifact is a fitted pipeline with its preprocessing; the reference is there
    model = load_model(champion["artifact_uri"])
    day = read_features(START + timedelta(days=11), START + timedelta(days=12))
    pred = model.predict(day[feature_columns()])
    assert pred.shape == (480,) and (abs(pred - day["demand"]).mean()) < day["demand"].mean()
    ref = load_reference(champion["reference_uri"])
    assert list(ref["features"].columns) == feature_columns() and len(ref["features"]) > 1000
    assert ref["predictions"].shape == (12 * 480,)
    assert 0 < ref["train_mae"] and 0 < ref["valid_mae"] == pytest.approx(champion["metric_value"])

    (outcome,) = db.fetch_all(
        "select outcome, champion_after, reason from ml.training_runs where run_id = %s", (dr.run_id,)
    )
    assert outcome[:2] == ("promoted", champion["version"]) and outcome[2].startswith("no champion yet")
    alerts = read_alerts()
    assert any(a["subject"] == f"New champion model {champion['version']}" for a in alerts)

    from include.training.summary import summary_section

    summary = summary_section()
    assert summary["candidates_trained"] == 3 and summary["champion_version"] == champion["version"]
    assert summary["champion_metric"] == pytest.approx(champion["metric_value"])

    # re-running the same training (same window, data and hyperparameters): no duplicates
    again = run(training_dag, hyperparameters=GOOD, force=True)
    assert again.state == "success"
    assert len(registry_rows()) == 3
    assert get_champion()["version"] == champion["version"]
    assert db.fetch_one("select count(*) from ml.model_registry where status = 'champion'") == (1,)


def test_better_candidate_is_promoted_worse_is_rejected(training_dag, tmp_storage):
    from include.training.registry import get_champion

    first = run(training_dag, hyperparameters=FLAT)
    assert first.state == "success"
    flat = get_champion()
    assert flat["candidate_name"] == "flat"

    better = run(training_dag, hyperparameters=GOOD, force=True)
    assert better.state == "success" and tis(better)[("promote", -1)] == "success"
    champion = get_champion()
    assert champion["candidate_name"] in {"hgb", "ridge", "enet"}
    assert champion["metrics"]["valid_mae"] < flat["metrics"]["valid_mae"]
    statuses = {r["version"]: r["status"] for r in registry_rows()}
    assert statuses[flat["version"]] == "retired"

    worse = run(training_dag, hyperparameters=FLATTER, force=True)
    assert worse.state == "success"
    states = tis(worse)
    assert states[("reject", -1)] == "success" and states[("promote", -1)] == "skipped"
    assert states[("archive_cold_storage", -1)] == "success"
    (rejected,) = registry_rows(worse.run_id)
    assert rejected["status"] == "rejected" and "not better" in rejected["decision_reason"]
    assert get_champion()["version"] == champion["version"]


def test_policy_short_circuits_without_a_reason_to_train(training_dag, tmp_storage):
    from include.warehouse import db

    assert run(training_dag, hyperparameters=FLAT).state == "success"
    dr = run(training_dag, hyperparameters=FLAT)  # champion exists, no new day, no drift
    assert dr.state == "success"
    states = tis(dr)
    assert states[("plan", -1)] == "success"
    assert {s for (t, _), s in states.items() if t != "plan"} == {"skipped"}
    (row,) = db.fetch_all("select train, reason from ml.training_runs where run_id = %s", (dr.run_id,))
    assert row[0] is False and "no drift signal" in row[1]
    assert len(registry_rows()) == 1


def test_teardown_removes_scratch_after_a_failed_candidate(training_dag, tmp_storage):
    bad = [GOOD[1], {"name": "broken", "family": "hist_gradient_boosting", "params": {"learning_rate": -1.0}}]
    dr = run(training_dag, hyperparameters=bad)
    assert dr.state == "failed"
    states = tis(dr)
    assert states[("candidate.train_candidate", 1)] == "failed"
    assert states[("compare", -1)] == "upstream_failed"
    assert states[("remove_scratch", -1)] == "success"
    assert scratch_dirs(tmp_storage) == []
    assert any(a["subject"] == "training.candidate.train_candidate failed" for a in read_alerts())
