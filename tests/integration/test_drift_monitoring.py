"""Drift monitoring on real PostgreSQL with real DAG runs (``dag.test()``).

One scenario, built once for the module (the steps depend on each other):

1. 49 days of the simulator's stable data are loaded and their features built; the real
   ``training`` DAG trains the first champion on the last 21 of them.
2. 30 more stable days arrive. One ``drift_monitoring`` run scores them and evaluates 30 daily
   windows against the champion's reference: zero false alarms, the ``no_drift`` branch, no
   event on the drift asset.
3. Scoring is idempotent: nothing left to score; a rebuilt day is re-scored, never duplicated.
4. The simulator's drift starts (warmer weather, a changed demand response): two drifted days
   arrive. The next run flags drift within 2 days of its start: the alert, then an event on the
   drift asset with the scores in its extra. A run with nothing new re-evaluates but stays quiet.

``dag.test()`` cannot attach asset events to a run; the DAG finds its work from the data anyway.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from include.notify import read_alerts

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROWS_PER_DAY = 1200  # 50 stations
START = date(2026, 5, 1)
TRAIN_DAYS_END = START + timedelta(days=49)  # features of 49 days; the champion's window: last 21
STABLE_END = TRAIN_DAYS_END + timedelta(days=30)  # 30 stable days after the champion's window
DRIFT_START = STABLE_END
HGB = [
    {
        "name": "hgb",
        "family": "hist_gradient_boosting",
        "params": {"loss": "poisson", "max_iter": 120, "learning_rate": 0.1, "min_samples_leaf": 40},
    }
]


def _cfg(drift_start=None):
    from include.source.simulator import SourceConfig

    return SourceConfig(rows_per_day=ROWS_PER_DAY, seed=42, drift_start=drift_start)


def _dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def _tis(dr) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.state for ti in dr.get_task_instances(session=session)}


_EVENTS_SINCE: list = []  # set by the scenario: events of other tests in this session's Airflow do not count


def _drift_events() -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from include.assets import DRIFT_SIGNAL

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra, AssetEvent.source_run_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == DRIFT_SIGNAL.uri, AssetEvent.timestamp >= _EVENTS_SINCE[0])
        ).all()
    return [{"extra": r[0], "run_id": r[1]} for r in rows]


def _load_days(days, cfg) -> None:
    from include.features.build import build_pending
    from include.features.seed import seed_days

    seed_days(days, cfg)
    build_pending()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Stable history, features and a champion trained by the real training DAG."""
    from datetime import datetime, timezone

    from include.features.seed import day_list
    from include.warehouse import db

    _EVENTS_SINCE[:] = [datetime.now(timezone.utc)]
    base = tmp_path_factory.mktemp("drift")
    paths = {k: base / k for k in ("landing", "archive", "artifacts", "reports")}
    with pytest.MonkeyPatch.context() as mp:
        for key, p in paths.items():
            p.mkdir()
            if key != "reports":
                mp.setenv(f"MLOPS_{key.upper()}_URI", "file://" + str(p))
        mp.setenv("MLOPS_REPORTS_DIR", str(paths["reports"]))
        mp.setenv("MLOPS_RETRY_DELAY_S", "0.1")
        with db.transaction() as conn:
            for schema in ("warehouse", "features", "ml", "rag"):
                conn.execute(f"drop schema if exists {schema} cascade")
        db.ensure_schema()

        _load_days(day_list(START, 49), _cfg())
        training = _dag("training")
        dr = training.test(logical_date=None, run_conf={"hyperparameters": HGB})
        assert dr.state == "success", _tis(dr)
        from include.training.registry import get_champion

        champion = get_champion()
        assert champion is not None and champion["train_end"].date() == TRAIN_DAYS_END
        _load_days(day_list(TRAIN_DAYS_END, 30), _cfg())
        yield {"paths": paths, "champion": champion, "dag": _dag("drift_monitoring")}


def test_thirty_stable_days_raise_no_false_alarm(scenario):
    from include.warehouse import db

    dr = scenario["dag"].test(logical_date=None)
    assert dr.state == "success"
    states = _tis(dr)
    assert states["no_drift"] == "success"
    assert states["alert_drift"] == "skipped" and states["signal_drift"] == "skipped"
    assert _drift_events() == []

    champion = scenario["champion"]
    # every day with features was scored by the champion, once
    assert db.fetch_one("select count(*), count(distinct (model_version, ts, station_id)) from ml.predictions") == (
        79 * ROWS_PER_DAY,
        79 * ROWS_PER_DAY,
    )
    assert db.fetch_one("select count(*) from ml.scoring_ledger where model_version = %s", (champion["version"],)) == (
        79,
    )
    # 30 windows, one per day after the champion's training window: no false alarm
    rows = db.fetch_all(
        "select window_day, drift_detected, error_ratio, rows_evaluated from ml.drift_runs "
        "where run_id = %s order by window_day",
        (dr.run_id,),
    )
    assert [r[0] for r in rows] == [TRAIN_DAYS_END + timedelta(days=i) for i in range(30)]
    assert [r for r in rows if r[1]] == []
    assert all(0.5 < r[2] < 1.5 for r in rows), rows
    assert rows[0][3] == ROWS_PER_DAY and rows[1][3] == 2 * ROWS_PER_DAY  # never reaches into training days
    n_features = db.fetch_one(
        "select count(*) from ml.drift_report where run_id = %s and window_day = %s", (dr.run_id, rows[-1][0])
    )[0]
    assert n_features == 16 + 1  # every v2 feature + the predictions
    report = scenario["paths"]["reports"] / "drift"
    (html,) = [p for p in report.iterdir() if p.name.endswith(".html")]
    assert "No drift." in html.read_text() and "data:image/png;base64," in html.read_text()


def test_scoring_is_idempotent_and_rescores_a_rebuilt_day(scenario):
    from include.features.build import build_pending
    from include.monitoring.scoring import score_pending
    from include.warehouse import db

    def snapshot():
        return db.fetch_one(
            "select count(*), sum(prediction), count(distinct (model_version, ts, station_id)) from ml.predictions"
        )

    before = snapshot()
    again = score_pending(run_id="again")
    assert again["rows_scored"] == 0 and again["intervals_scored"] == []
    day = TRAIN_DAYS_END + timedelta(days=3)
    scored_at = db.fetch_one("select scored_at from ml.scoring_ledger where interval_start = %s", (day,))[0]
    build_pending(start=day, end=day + timedelta(days=1), rebuild=True)
    rescored = score_pending(run_id="rescore")
    assert rescored["intervals_scored"] == [day.isoformat()] and rescored["rows_scored"] == ROWS_PER_DAY
    after = snapshot()
    assert after[0] == after[2] == before[0] and after[1] == pytest.approx(before[1])
    row = db.fetch_one("select scored_at, run_id from ml.scoring_ledger where interval_start = %s", (day,))
    assert row[0] > scored_at and row[1] == "rescore"


def test_drift_is_flagged_within_two_days_with_an_alert_and_an_asset_event(scenario):
    from include.features.seed import day_list
    from include.monitoring.summary import summary_section
    from include.warehouse import db

    _load_days(day_list(DRIFT_START, 2), _cfg(drift_start=DRIFT_START))
    dr = scenario["dag"].test(logical_date=None)
    assert dr.state == "success"
    states = _tis(dr)
    assert states["alert_drift"] == "success" and states["signal_drift"] == "success"
    assert states["no_drift"] == "skipped"

    rows = db.fetch_all(
        "select window_day, drift_detected, drifted_features, error_ratio from ml.drift_runs "
        "where run_id = %s order by window_day",
        (dr.run_id,),
    )
    # the two new days, and the day rebuilt and re-scored by the previous test (judged again: stable)
    rebuilt = TRAIN_DAYS_END + timedelta(days=3)
    assert [r[0] for r in rows] == [rebuilt, DRIFT_START, DRIFT_START + timedelta(days=1)]
    assert rows[0][1] is False and rows[2][1] is True
    first = min(r[0] for r in rows if r[1])
    assert first <= DRIFT_START + timedelta(days=1)

    (event,) = _drift_events()
    extra = event["extra"]
    assert event["run_id"] == dr.run_id
    assert extra["model_version"] == scenario["champion"]["version"]
    assert extra["first_drift_day"] == first.isoformat()
    assert "temperature_c" in extra["drifted_features"]
    assert extra["scores"]["temperature_c"]["psi"] >= 0.25 and extra["scores"]["temperature_c"]["ks"] >= 0.1
    assert extra["error_ratio"] >= 1.5
    assert "Drift detected" in ObjectStoragePath(extra["report"]).read_text()

    alerts = read_alerts()
    (alert,) = [a for a in alerts if a["subject"].startswith("Drift detected")]
    assert alert["details"]["drifted_features"] == extra["drifted_features"]
    assert alert["details"]["scores"] == extra["scores"] and alert["task_id"] == "alert_drift"

    # nothing new: the latest window is re-evaluated for the report, but no second alert or event
    quiet = scenario["dag"].test(logical_date=None)
    assert quiet.state == "success" and _tis(quiet)["no_drift"] == "success"
    assert db.fetch_all(
        "select window_day, new_window, drift_detected from ml.drift_runs where run_id = %s", (quiet.run_id,)
    ) == [(DRIFT_START + timedelta(days=1), False, True)]
    assert len(_drift_events()) == 1

    summary = summary_section()
    assert summary["days_scored"] == 81 and summary["drift_detected"] is True
    assert summary["first_drift_day"] == first.isoformat()
    assert "temperature_c" in summary["drifted_features"]
    assert summary["retraining_runs_triggered_by_drift"] == 0  # the training DAG did not run here
    assert summary["champion_before"] == scenario["champion"]["version"] and summary["champion_after"] is None
    assert summary["champion_before_error_on_drifted_days"] > 0
