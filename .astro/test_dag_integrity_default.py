"""DAG integrity: every file in the DAG folder imports without errors.

This is the check ``astro dev parse`` (and ``astro deploy``) runs before a deploy, in the place
``astro dev init`` puts it. Written for this project on Airflow 3: it parses the DAG folder
with Airflow's DagBag, with connection and variable look-ups answered by placeholders so a
file that reads them at parse time does not need real credentials, and it needs no metadata
database. Files listed in ``.astro/dag_integrity_exceptions.txt`` (one path per line, relative
to the project root, e.g. ``dags/experimental.py``) may fail to import.

Run it locally with ``.venv/bin/python -m pytest .astro -q`` (``.astro/conftest.py`` points
Airflow at this project); the deeper DAG checks (tags, owners, retries, parse time) live in
``tests/dags``.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXCEPTIONS_FILE = PROJECT_ROOT / ".astro" / "dag_integrity_exceptions.txt"


@contextmanager
def _placeholder_lookups():
    """Connections and Variables read at parse time get placeholders instead of a lookup.

    The originals are restored afterwards, so tests collected in the same pytest session
    (``pytest tests .astro``) still reach the real connections."""
    from airflow.sdk import BaseHook, Connection, Variable

    def get_connection(conn_id: str, *args, **kwargs):
        print(f"parse-time connection look-up of {conn_id!r}: returning an empty Connection")
        return Connection(conn_id=conn_id, conn_type="generic")

    _missing = object()

    def get_variable(key: str, default=_missing, *args, **kwargs):
        print(f"parse-time Variable look-up of {key!r}: returning a placeholder")
        if default is not _missing:
            return default
        return {} if kwargs.get("deserialize_json") else f"PLACEHOLDER_{key.upper()}"

    saved_get_connection = BaseHook.__dict__["get_connection"]
    saved_variable_get = Variable.__dict__["get"]
    BaseHook.get_connection = classmethod(lambda cls, conn_id, *a, **k: get_connection(conn_id))
    Variable.get = staticmethod(get_variable)
    try:
        yield
    finally:
        BaseHook.get_connection = saved_get_connection
        Variable.get = saved_variable_get


@contextmanager
def _quiet(namespace: str):
    logger = logging.getLogger(namespace)
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def _relative(path: str) -> str:
    try:
        return os.path.relpath(path, PROJECT_ROOT)
    except ValueError:  # another drive (Windows)
        return path


def _parse_results() -> list[tuple[str, str]]:
    from airflow.dag_processing.dagbag import DagBag

    with _placeholder_lookups(), _quiet("airflow"):
        bag = DagBag()  # the configured DAG folder; examples follow [core] load_examples
    results = [(_relative(path), message.strip()) for path, message in bag.import_errors.items()]
    failed = set(bag.import_errors)
    for path in sorted({dag.fileloc for dag in bag.dags.values()}):
        if path not in failed:
            results.append((_relative(path), "No import errors"))
    return sorted(results)


def _exceptions() -> set[str]:
    if not EXCEPTIONS_FILE.exists():
        return set()
    lines = (line.strip() for line in EXCEPTIONS_FILE.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


RESULTS = _parse_results()


def test_dag_folder_has_dags():
    assert RESULTS, "the DAG folder holds no DAG and no import error: is AIRFLOW__CORE__DAGS_FOLDER right?"


@pytest.mark.parametrize("rel_path, rv", RESULTS, ids=[path for path, _ in RESULTS])
def test_file_imports(rel_path: str, rv: str):
    """Each DAG file imports without errors, unless it is listed as an exception."""
    if rv != "No import errors" and rel_path not in _exceptions():
        raise AssertionError(f"{rel_path} failed to import with message\n{rv}")
