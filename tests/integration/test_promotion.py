"""Issue 11, item 12: the challenger is promoted without comparison only when the champion cannot be
loaded (artifact missing, or unreadable by this code); any other error while scoring the champion
propagates, so that the ``compare`` task fails and Airflow retries it.

The champion is a real one: the training DAG (``dag.test()``) trains and promotes it on seeded days.
"""

from __future__ import annotations

import pickle
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from include.features.seed import day_list, seed_days
from include.source.simulator import SourceConfig

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
START = date(2026, 7, 1)
RIDGE = [{"name": "ridge", "family": "ridge", "params": {"alpha": 1.0}, "log_target": True}]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real training run for the module: (champion registry row, validation frame, window)."""
    from airflow.dag_processing.dagbag import DagBag

    from include.features.build import build_pending
    from include.features.store import read_features
    from include.training.registry import get_champion
    from include.warehouse import db

    root = tmp_path_factory.mktemp("promotion")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLOPS_TRAIN_MIN_DAYS", "5")
    mp.setenv("MLOPS_TRAIN_VALID_DAYS", "2")
    for key, env in (("artifacts", "MLOPS_ARTIFACTS_URI"), ("landing", "MLOPS_LANDING_URI")):
        (root / key).mkdir()
        mp.setenv(env, f"file://{root / key}")
    mp.setenv("MLOPS_REPORTS_DIR", str(root))
    try:
        with db.transaction() as conn:
            for schema in ("warehouse", "features", "ml"):
                conn.execute(f"drop schema if exists {schema} cascade")
        db.ensure_schema()
        seed_days(day_list(START, 9), SourceConfig(rows_per_day=240, seed=5))
        build_pending()
        dag = DagBag(dag_folder=str(ROOT / "dags" / "training.py")).get_dag("training")
        assert dag.test(logical_date=None, run_conf={"hyperparameters": RIDGE}).state == "success"
        champ = get_champion()
        start, end = champ["valid_start"], champ["train_end"]
        valid = read_features(start, end, "v2")
        valid.attrs["feature_set_version"] = "v2"
        yield champ, valid, start, end
    finally:
        mp.undo()


@pytest.fixture
def champion(trained):
    """The trained champion; its artifact is restored after each test (tests break it on purpose)."""
    artifact = Path(trained[0]["artifact_uri"].removeprefix("file://"))
    saved = artifact.read_bytes()
    yield trained
    artifact.write_bytes(saved)


def challenger(tmp_path: Path, valid, error: float) -> dict:
    """A challenger whose validation predictions are off by ``error`` (a share of the truth)."""
    uri = tmp_path / "challenger.parquet"
    frame = valid[["station_id", "ts"]].assign(y=valid["demand"], y_pred=valid["demand"] * (1 + error))
    frame.to_parquet(uri, index=False)
    return {"version": "challenger-1", "name": "c", "metrics": {"valid_mae": 0.1}, "predictions_uri": f"file://{uri}"}


def compare(best, champ, valid, start, end) -> dict:
    from include.training.promotion import compare_with_champion

    return compare_with_champion(best, champ, valid, start, end, margin=0.02)


def test_a_loadable_champion_is_compared(champion, tmp_path):
    champ, valid, start, end = champion
    decision = compare(challenger(tmp_path, valid, 0.001), champ, valid, start, end)
    assert decision["promote"] is True and decision["champion_mae"] is not None and "compared_rows" in decision
    assert "cannot be loaded" not in decision["reason"]
    decision = compare(challenger(tmp_path, valid, 5.0), champ, valid, start, end)  # far worse: rejected
    assert decision["promote"] is False and "not better" in decision["reason"]


def test_a_missing_artifact_promotes_without_comparison_and_says_so(champion, tmp_path):
    champ, valid, start, end = champion
    Path(champ["artifact_uri"].removeprefix("file://")).unlink()
    decision = compare(challenger(tmp_path, valid, 5.0), champ, valid, start, end)  # even a bad challenger
    assert decision["promote"] is True and decision["champion_mae"] is None
    assert decision["reason"].startswith(f"promoted without comparison: champion {champ['version']} cannot be loaded")
    assert "artifact missing" in decision["reason"] and champ["artifact_uri"] in decision["reason"]


def test_an_artifact_this_code_cannot_read_promotes_without_comparison(champion, tmp_path, monkeypatch):
    champ, valid, start, end = champion
    # a model pickled by another version of the code: its class lives in a module that is gone
    module = tmp_path / "old_model_code.py"
    module.write_text(textwrap.dedent("class OldPipeline:\n    def predict(self, frame):\n        return frame\n"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import old_model_code

    Path(champ["artifact_uri"].removeprefix("file://")).write_bytes(pickle.dumps(old_model_code.OldPipeline()))
    del sys.modules["old_model_code"]
    module.unlink()
    decision = compare(challenger(tmp_path, valid, 5.0), champ, valid, start, end)
    assert decision["promote"] is True and "artifact incompatible with this code" in decision["reason"]
    assert "old_model_code" in decision["reason"]


def test_a_transient_error_fails_instead_of_promoting(champion, tmp_path, monkeypatch):
    import psycopg

    champ, valid, start, end = champion
    # the champion was trained on another feature set, so scoring it reads the warehouse ... which is down
    champ = {**champ, "feature_set_version": "v1"}
    down = f"postgresql://postgres@127.0.0.1:{closed_port()}/warehouse"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", down)
    monkeypatch.setenv("MLOPS_WAREHOUSE_URI", down)
    with pytest.raises(psycopg.OperationalError):
        compare(challenger(tmp_path, valid, 5.0), champ, valid, start, end)
    # ... and the compare task is retried by Airflow (retries from default_args; no AirflowFailException)
    from airflow.dag_processing.dagbag import DagBag

    task = DagBag(dag_folder=str(ROOT / "dags" / "training.py")).get_dag("training").get_task("compare")
    assert task.retries >= 1


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
