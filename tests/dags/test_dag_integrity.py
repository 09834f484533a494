"""Every DAG in dags/: imports cleanly, follows the project's DAG rules, and the folder parses fast.

Rules checked for each DAG: tags, an owner (not Airflow's default), retries >= 2 and an
execution_timeout on every task, a documented DAG (doc_md), a static start_date, ``catchup`` set
explicitly in the file, and no heavy library imported at parse time. The whole
folder must parse in under 1 s once Airflow itself is imported (measured in a fresh process,
best of 3, like ``make bench`` reports it as ``etl.dag_parse_s``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = ROOT / "dags"
PARSE_BUDGET_S = 1.0


def _dag_files() -> list[Path]:
    return sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def _dag_ids() -> list[str]:
    from airflow.dag_processing.dagbag import DagBag

    return sorted(DagBag(dag_folder=str(DAGS_FOLDER)).dag_ids)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{f}: {e.splitlines()[-1]}" for f, e in dagbag.import_errors.items())


def test_every_dag_file_defines_a_dag(dagbag):
    files_with_dags = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert files_with_dags, "no DAG found"
    missing = [p.name for p in _dag_files() if p.name not in files_with_dags and p.name not in dagbag.import_errors]
    assert missing == [], f"files in dags/ that define no DAG: {missing}"


@pytest.mark.parametrize("dag_id", _dag_ids())
def test_dag_follows_the_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]  # get_dag() would ask the metadata database
    source = Path(dag.fileloc).read_text()
    assert dag.tags, f"{dag_id} has no tags"
    assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id} has no doc_md"
    assert "catchup=" in source, f"{dag_id}: set catchup explicitly"
    start = dag.start_date
    assert start is not None and start < datetime.now(timezone.utc) - timedelta(days=1), (
        f"{dag_id}: start_date must be a static date in the past, not now()"
    )
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has the default owner"
        assert task.retries >= 2, f"{dag_id}.{task.task_id} retries={task.retries} (< 2)"
        assert task.execution_timeout is not None, f"{dag_id}.{task.task_id} has no execution_timeout"


def test_dag_folder_parses_under_a_second_without_heavy_imports():
    from scripts.bench_etl import measure_dag_parse

    result = measure_dag_parse(DAGS_FOLDER)
    assert result["import_errors"] == {}
    assert result["heavy_imports"] == [], f"DAG files import heavy libraries at parse time: {result['heavy_imports']}"
    assert result["seconds"] < PARSE_BUDGET_S, f"DAG folder parse {result['seconds']:.2f}s: {result['files']}"


def test_the_parse_check_catches_heavy_imports_and_import_errors(tmp_path):
    """The checks above can fail: a DAG file importing pandas at top level, and a broken one."""
    from scripts.bench_etl import measure_dag_parse

    (tmp_path / "heavy.py").write_text(
        "import pandas\nfrom datetime import datetime\nfrom airflow.sdk import dag\n\n"
        "@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)\ndef heavy():\n    pass\n\nheavy()\n"
    )
    (tmp_path / "broken.py").write_text("from airflow.sdk import dag\n\nraise RuntimeError('boom')\n")
    result = measure_dag_parse(tmp_path, repeats=1)
    assert "pandas" in result["heavy_imports"]
    assert [Path(f).name for f in result["import_errors"]] == ["broken.py"]
    assert result["dags"] == ["heavy"]
