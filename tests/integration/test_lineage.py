"""OpenLineage: real DAG runs report their real inputs and outputs.

The ETL and the training DAG run with ``dag.test()`` in a subprocess with the OpenLineage
provider on and its *file* transport (the project's default), then the JSON-lines events are
read back: the ETL's load names the source Parquet file and the warehouse table, training names
the feature table it read and the model artifact it wrote. Each task's events carry only its
own datasets (include/lineage/listener.py resets the collector between the in-process tasks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from include import lineage

ROOT = Path(__file__).resolve().parents[2]

_RUNNER = """
import json, sys
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag
dag_file, dag_id, logical_date, conf = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
bag = DagBag(dag_folder=dag_file)
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag(dag_id)
run = dag.test(logical_date=datetime.fromisoformat(logical_date) if logical_date else None, run_conf=conf or None)
print("RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id}))
"""


# --- the helper on its own ----------------------------------------------------------------
def test_uri_of_normalises_what_tasks_hold(tmp_path):
    from airflow.sdk import Asset, ObjectStoragePath

    assert lineage.uri_of(tmp_path / "m.joblib") == f"file://{tmp_path}/m.joblib"
    assert lineage.uri_of(str(tmp_path / "x.parquet")) == f"file://{tmp_path}/x.parquet"
    assert lineage.uri_of(ObjectStoragePath(f"file://{tmp_path}/a.parquet")) == f"file://{tmp_path}/a.parquet"
    assert lineage.uri_of(Asset(name="t", uri="postgres://h:5432/db/s/t")) == "postgres://h:5432/db/s/t"
    assert lineage.uri_of("s3://bucket/key.parquet") == "s3://bucket/key.parquet"
    with pytest.raises(ValueError):
        lineage.uri_of("relative/path.parquet")


def test_table_uses_the_project_asset_uri_form():
    from include.assets import FEATURES_DEMAND, WAREHOUSE_DEMAND

    assert lineage.table("warehouse", "demand_hourly") == WAREHOUSE_DEMAND.uri
    assert lineage.table("features", "demand_features") == FEATURES_DEMAND.uri


def test_report_lineage_outside_a_task_only_returns_the_uris(tmp_path):
    got = lineage.report_lineage(inputs=[tmp_path / "in.parquet"], outputs=[lineage.table("ml", "model_registry")])
    assert got["inputs"] == [f"file://{tmp_path}/in.parquet"]
    assert got["outputs"][0].startswith("postgres://") and got["outputs"][0].endswith("/ml/model_registry")


def test_report_lineage_never_fails_the_task(tmp_path):
    """A missing or relative item is skipped (with a warning), duplicates are reported once."""
    got = lineage.report_lineage(inputs=[None, "relative.parquet", tmp_path / "a", tmp_path / "a"], outputs=[])
    assert got == {"inputs": [f"file://{tmp_path}/a"], "outputs": []}


# --- real DAG runs -------------------------------------------------------------------------
def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _datasets(event: dict, side: str) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in event.get(side) or []}


def _complete(events: list[dict], job: str) -> dict:
    done = [e for e in events if e.get("eventType") == "COMPLETE" and e.get("job", {}).get("name") == job]
    assert done, f"no COMPLETE event for {job}; jobs seen: {sorted({e.get('job', {}).get('name') for e in events})}"
    return done[-1]


def _pg_dataset(schema: str, table: str) -> tuple[str, str]:
    from include.settings import get_settings

    wh = get_settings().warehouse
    return f"postgres://{wh.host}:{wh.port}", f"{wh.database}.{schema}.{table}"


def _file_dataset(path: Path) -> tuple[str, str]:
    return "file", str(path)


@pytest.fixture
def lineage_file(tmp_path) -> Path:
    out = tmp_path / "lineage" / "events.jsonl"
    out.parent.mkdir()
    return out


def run_dag(
    dag_file: str, dag_id: str, logical: datetime | None, events: Path, conf: dict | None = None, timeout: int = 900
) -> dict:
    """``dag.test()`` in a subprocess with the OpenLineage file transport on; returns its result."""
    env = dict(os.environ)
    env.update(
        AIRFLOW__OPENLINEAGE__DISABLED="false",
        AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        AIRFLOW__OPENLINEAGE__NAMESPACE="mlops-test",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _RUNNER,
            str(ROOT / "dags" / dag_file),
            dag_id,
            logical.isoformat() if logical else "",
            json.dumps(conf or {}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    results = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and results, f"dag.test({dag_id}) failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return json.loads(results[-1][len("RESULT ") :])


CANDIDATES = [{"name": "ridge", "family": "ridge", "params": {"alpha": 1.0}, "log_target": True}]


@pytest.mark.integration
def test_etl_features_and_training_runs_name_their_real_datasets(
    fresh_warehouse, tmp_storage, lineage_file, monkeypatch
):
    from include.features.seed import day_list, seed_days
    from include.settings import get_settings
    from include.source.simulator import SourceConfig, write_day

    monkeypatch.setenv("MLOPS_RETRY_DELAY_S", "0.1")
    monkeypatch.setenv("MLOPS_TRAIN_MIN_DAYS", "5")
    monkeypatch.setenv("MLOPS_TRAIN_VALID_DAYS", "3")
    cfg = SourceConfig(rows_per_day=240, malformed_share=0.02, seed=5)
    start = date(2026, 2, 1)
    seed_days(day_list(start, 12), cfg)  # history for features and training, without lineage
    etl_day = start + timedelta(days=12)
    storage = get_settings().storage
    source_file = Path(str(write_day(etl_day, storage.path(storage.landing_uri), cfg)).removeprefix("file://"))

    # 1. the ETL loads the 13th day from its landing file
    midnight_after = datetime.combine(etl_day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    assert run_dag("etl.py", "etl", midnight_after, lineage_file)["state"].endswith("success")
    ledger = fresh_warehouse.fetch_all("select source_file from warehouse.load_ledger where source_checksum <> 'seed'")
    assert [Path(r[0]).name for r in ledger] == [source_file.name]
    # 2. features for every loaded day, 3. training on them
    assert run_dag("feature_engineering.py", "feature_engineering", None, lineage_file)["state"].endswith("success")
    trained = run_dag("training.py", "training", None, lineage_file, conf={"hyperparameters": CANDIDATES})
    assert trained["state"].endswith("success"), trained
    from include.training.registry import list_models

    models = list_models()
    assert len(models) == 1
    artifact = Path(models[0]["artifact_uri"].removeprefix("file://"))
    assert artifact.exists() and str(artifact).startswith(str(tmp_storage["artifacts"]))

    events = _events(lineage_file)
    warehouse_table = _pg_dataset("warehouse", "demand_hourly")
    feature_table = _pg_dataset("features", "demand_features")

    load = _complete(events, "etl.load")
    assert _file_dataset(source_file) in _datasets(load, "inputs"), "the ETL names its source file"
    assert warehouse_table in _datasets(load, "outputs"), "the ETL names the warehouse table"

    built = [
        e for e in events if e.get("eventType") == "COMPLETE" and e["job"]["name"] == "feature_engineering.build_batch"
    ]
    assert built, "no feature build ran"
    for event in built:  # every mapped build names the table it read and the feature table it wrote
        assert warehouse_table in _datasets(event, "inputs") and feature_table in _datasets(event, "outputs")

    training = [e for e in events if e.get("eventType") == "COMPLETE" and e["job"]["name"].startswith("training.")]
    assert any(feature_table in _datasets(e, "inputs") for e in training), "training names the feature table"
    assert any(_file_dataset(artifact) in _datasets(e, "outputs") for e in training), "training names the model"

    # each task's events carry only its own datasets: the publish step of the ETL, run in the same
    # process right after the load, does not repeat the load's source file
    publish = _complete(events, "etl.publish")
    assert _file_dataset(source_file) not in _datasets(publish, "inputs")
    assert warehouse_table in _datasets(publish, "outputs")  # its declared outlet
    for done in ("etl", "feature_engineering", "training"):  # DAG-level run events too
        assert any(e.get("eventType") == "COMPLETE" and e["job"]["name"] == done for e in events), done

    # the run summary's lineage section reads the same file
    from include.lineage.summary import summary_section

    monkeypatch.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps({"type": "file", "log_file_path": str(lineage_file)})
    )
    section = summary_section()
    assert section["events"] == len(events) and "etl.load" in section["jobs_with_datasets"]
    assert f"file/{source_file}" in section["datasets_read"]
