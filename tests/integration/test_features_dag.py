"""Real runs of the ``feature_engineering`` DAG with ``dag.test()``.

``dag.test()`` cannot attach asset events to its run, so these tests drive the DAG the way the
scheduler's asset-triggered runs are meant to work here: by state. Three days loaded and
passed (ledger rows in ``warehouse.ready_intervals``) are what one run must build, whatever
events triggered it (Airflow 3.3.2 can leave queued events unconsumed).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from include.features.seed import day_list, seed_days
from include.source.simulator import SourceConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CFG = SourceConfig(rows_per_day=240, seed=3)
START = date(2026, 4, 1)


@pytest.fixture
def features_dag(monkeypatch, tmp_storage, fresh_warehouse):
    monkeypatch.setenv("MLOPS_RETRY_DELAY_S", "0.1")
    monkeypatch.setenv("MLOPS_FEATURE_BATCH_DAYS", "2")  # 3 days -> 2 mapped batches
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "feature_engineering.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("feature_engineering")


def _tis(dr) -> dict[tuple[str, int], str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {(ti.task_id, ti.map_index): ti.state for ti in dr.get_task_instances(session=session)}


def _events(run_id: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from include.assets import FEATURES_DEMAND

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == FEATURES_DEMAND.uri, AssetEvent.source_run_id == run_id)
        ).all()
    return [r[0] for r in rows]


def _fingerprint():
    from include.warehouse import db

    return db.fetch_all(
        "select feature_set_version, count(*), sum(hashtext(row(station_id, ts, demand_lag_24h, "
        "demand_same_hour_mean_28d, station_demand_std_28d, demand)::text)::numeric) "
        "from features.demand_features group by 1 order by 1"
    )


def test_one_run_builds_every_loaded_interval_and_a_rerun_changes_nothing(features_dag):
    from include.warehouse import db

    seed_days(day_list(START, 3), CFG)
    dr = features_dag.test(logical_date=None)
    assert dr.state == "success"
    tis = _tis(dr)
    assert tis[("find_work", -1)] == "success"
    assert sorted(k[1] for k in tis if k[0] == "build_batch") == [0, 1]  # 3 days in batches of 2
    assert tis[("publish", -1)] == "success"
    (extra,) = _events(dr.run_id)
    assert extra["intervals_built"] == [d.isoformat() for d in day_list(START, 3)]
    assert extra["feature_set_version"] == "v2" and extra["rows_built"] == 3 * 240
    assert db.fetch_one("select count(*) from features.feature_ledger where feature_set_version = 'v2'") == (3,)
    before = _fingerprint()
    from include.features.summary import summary_section

    assert {k: summary_section()[k] for k in ("rows_built", "intervals_built")} == {
        "rows_built": 720,
        "intervals_built": 3,
    }

    again = features_dag.test(logical_date=None)
    assert again.state == "success"
    tis = _tis(again)
    # nothing to build: the mapped task expands to nothing and publish is skipped -> no event
    assert tis[("publish", -1)] == "skipped"
    assert _events(again.run_id) == []
    assert _fingerprint() == before


def test_parameterised_run_rebuilds_a_range_for_another_version(features_dag):
    seed_days(day_list(START, 5), CFG)
    assert features_dag.test(logical_date=None).state == "success"
    conf = {
        "start_date": (START + timedelta(days=1)).isoformat(),
        "end_date": (START + timedelta(days=4)).isoformat(),
        "feature_set_version": "v1",
    }
    dr = features_dag.test(logical_date=None, run_conf=conf)
    assert dr.state == "success"
    (extra,) = _events(dr.run_id)
    assert extra["feature_set_version"] == "v1"
    assert extra["intervals_built"] == [d.isoformat() for d in day_list(START + timedelta(days=1), 3)]
    fp = dict((v, n) for v, n, _ in _fingerprint())
    assert fp == {"v1": 3 * 240, "v2": 5 * 240}  # both versions side by side
