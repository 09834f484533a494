"""Configuration per environment: .env.example documents every knob, airflow_settings.yaml the pools.

* every MLOPS_* / AIRFLOW_* environment variable the code reads (include/, dags/, plugins/,
  scripts/) is listed in .env.example, with a safe placeholder;
* every connection and variable of airflow_settings.yaml has its AIRFLOW_CONN_* / AIRFLOW_VAR_*
  line there;
* every pool a task of the parsed DagBag names is defined, once, in airflow_settings.yaml (the
  one definition the local loader, the deploy workflow and the Helm notes read, through
  scripts/load_settings.py); heavy training tasks follow the worker queue named by
  MLOPS_TRAINING_QUEUE.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("include", "dags", "plugins", "scripts")
_NAME = r"((?:MLOPS|AIRFLOW)_[A-Z0-9_]+)"
_PY_READS = [
    re.compile(r"\b_?env(?:_int|_float|_date|_dates|_bool)?\(\s*[\"']" + _NAME),  # settings.env(...)
    re.compile(r"\bos\.environ\.get\(\s*[\"']" + _NAME),
    re.compile(r"\bos\.getenv\(\s*[\"']" + _NAME),
    re.compile(r"\benviron\.setdefault\(\s*[\"']" + _NAME),
    re.compile(r"\bos\.environ\[\s*[\"']" + _NAME + r"[\"']\s*\](?!\s*=[^=])"),
    re.compile(r"[\"']" + _NAME + r"[\"']\s+(?:not\s+)?in\s+os\.environ"),
]
_SH_READS = re.compile(r"\$\{" + _NAME + r":?[-=?+]")


def env_vars_read(root: Path = ROOT) -> dict[str, str]:
    """{variable: first file reading it} for the code under CODE_DIRS."""
    found: dict[str, str] = {}
    for top in CODE_DIRS:
        for path in sorted((root / top).rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix == ".py":
                patterns = _PY_READS
            elif path.suffix == ".sh":
                patterns = [_SH_READS]
            else:
                continue
            text = path.read_text(errors="replace")
            for pattern in patterns:
                for name in pattern.findall(text):
                    found.setdefault(name, str(path.relative_to(root)))
    return found


def documented(root: Path = ROOT) -> dict[str, str]:
    """{variable: value} of every `NAME=value` line of .env.example, commented out or not."""
    out = {}
    for line in (root / ".env.example").read_text().splitlines():
        m = re.match(r"^\s*#?\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), m.group(2))
    return out


def test_scanner_sees_the_known_readers():
    found = env_vars_read()
    assert found.get("MLOPS_WAREHOUSE_URI") == "include/settings.py"
    assert "MLOPS_TRAINING_QUEUE" in found and "MLOPS_PG_PORT" in found
    assert len(found) > 30


def test_env_example_lists_every_variable_the_code_reads():
    missing = {name: where for name, where in env_vars_read().items() if name not in documented()}
    assert not missing, "add these to .env.example (read by): " + json.dumps(missing, indent=1, sort_keys=True)


def test_env_example_covers_connections_and_variables_of_airflow_settings():
    settings = yaml.safe_load((ROOT / "airflow_settings.yaml").read_text())["airflow"]
    names = documented()
    for conn in settings.get("connections") or []:
        assert f"AIRFLOW_CONN_{conn['conn_id'].upper()}" in names, conn["conn_id"]
    for var in settings.get("variables") or []:
        assert f"AIRFLOW_VAR_{var['variable_name'].upper()}" in names, var["variable_name"]


def test_env_example_sets_nothing_secret():
    """Lines that are active (not commented out) carry no credentials; .env.example is mostly comments."""
    for line in (ROOT / ".env.example").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.partition("=")
        assert not re.search(r"PASSWORD|SECRET|TOKEN|KEY", name), f"active secret-like setting: {name}"
        assert "@" not in value or ":" not in value.split("@")[0].split("//")[-1], f"credentials in {name}"


def test_pools_of_airflow_settings_match_the_code():
    from include import dag_defaults
    from scripts.load_settings import pools

    defined = pools()
    for name in (dag_defaults.WAREHOUSE_POOL, dag_defaults.EMBEDDING_POOL):
        assert name in defined, f"pool {name} missing in airflow_settings.yaml"
        assert defined[name]["slots"] > 0 and defined[name]["description"]


def test_a_pool_defined_twice_is_an_error(tmp_path):
    from scripts.load_settings import pools

    entry = {"pool_name": "warehouse", "pool_slot": 2, "pool_description": "x"}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"airflow": {"pools": [entry, entry]}}))
    with pytest.raises(ValueError, match="defined twice"):
        pools(tmp_path / "s.yaml")


_DAG_PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: v[-400:] for k, v in bag.import_errors.items()},
       "tasks": {d.dag_id: {t.task_id: [t.queue, t.pool] for t in d.tasks} for d in bag.dags.values()}}
print(json.dumps(out))
"""


def _dag_tasks(queue: str, dag_folder: Path = ROOT / "dags") -> dict:
    env = dict(os.environ, MLOPS_TRAINING_QUEUE=queue, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", _DAG_PROBE, str(dag_folder)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def undefined_pools(parsed: dict) -> dict[str, str]:
    """{"dag.task": pool} for every task of a parsed DagBag whose pool airflow_settings.yaml lacks."""
    from scripts.load_settings import pools

    defined = set(pools()) | {"default_pool"}
    return {
        f"{dag}.{task}": pool
        for dag, tasks in parsed["tasks"].items()
        for task, (_, pool) in tasks.items()
        if pool not in defined
    }


def test_pool_check_catches_a_task_naming_an_undefined_pool(tmp_path):
    (tmp_path / "uses_pool.py").write_text(
        "from datetime import datetime\nfrom airflow.sdk import dag, task\n\n"
        "@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)\ndef uses_pool():\n"
        "    @task(pool='gpu')\n    def fit():\n        pass\n\n    fit()\n\nuses_pool()\n"
    )
    parsed = _dag_tasks("default", tmp_path)
    assert undefined_pools(parsed) == {"uses_pool.fit": "gpu"}


def test_dags_use_declared_pools_and_training_uses_its_queue():
    parsed = _dag_tasks("training-large")
    assert not parsed["errors"], parsed["errors"]
    missing = undefined_pools(parsed)
    assert not missing, f"tasks name pools that airflow_settings.yaml does not define: {missing}"
    training = parsed["tasks"].get("training")
    assert training, "no `training` DAG parsed"
    on_queue = [task for task, (queue, _) in training.items() if queue == "training-large"]
    assert on_queue, "no training task runs on MLOPS_TRAINING_QUEUE"
    others = [
        dag
        for dag, tasks in parsed["tasks"].items()
        if dag != "training" and any(q == "training-large" for q, _ in tasks.values())
    ]
    assert not others, f"only training work belongs on the training queue: {others}"
