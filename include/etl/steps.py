"""The ETL DAG's steps that are more than one call (dags/etl.py wires them)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk.exceptions import AirflowFailException

from include.etl.loading import load_day
from include.etl.sensor import run_day
from include.etl.validation import SourceSchemaError
from include.lineage import report_lineage, table
from include.settings import get_settings
from include.source.landing import find_day_file
from include.warehouse import db


def load(data_interval_start: datetime | None, source_uri: str) -> dict:
    """Load the run's day from the file the sensor found (or, if it moved since, where it is now)."""
    db.ensure_schema()  # idempotent: a fresh warehouse (the Docker path) gets its tables
    day = run_day(data_interval_start)
    source = get_settings().storage.path(source_uri)
    if not source.exists():  # moved to the archive since the sensor saw it
        source = find_day_file(day)
    report_lineage(  # OpenLineage: the file read, the tables written
        inputs=[source],
        outputs=[table("warehouse", t) for t in ("demand_hourly", "quarantine", "load_ledger")],
    )
    try:
        return load_day(day, source).to_dict()
    except SourceSchemaError as exc:  # the file itself is unusable: retrying cannot help
        raise AirflowFailException(str(exc)) from exc


def asset_extra(loaded: dict, gate: dict) -> dict:
    """The ``warehouse_demand`` asset event's extra: the interval, the counts, the gate's status."""
    return {
        "interval_start": loaded["interval_start"],
        "interval_end": loaded["interval_end"],
        "rows_loaded": loaded["rows_loaded"],
        "rows_quarantined": loaded["rows_quarantined"],
        "quality_gate": gate["status"],
    }
