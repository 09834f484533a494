"""Quality gate of a loaded data interval: a Soda Core v4 data contract, verified locally.

``run_gate(start, end)`` verifies ``contracts/demand_hourly.yml`` on ``warehouse.demand_hourly``
restricted to [start, end) (the contract's top-level ``filter`` with the interval bounds passed as
contract variables), records the outcome in ``warehouse.load_ledger`` and enforces it:

- every check passed                  -> ``quality_passed = true``; returns the result;
- a ``level: warn`` threshold breached -> ``quality_passed = true``, a warning alert;
- a critical check failed             -> ``quality_passed = false``, an error alert,
  ``AirflowFailException`` (no retry: the data will not change by retrying; fix the source and
  re-run the day);
- the scan itself errored (bad contract, unreachable database, ...) -> ``quality_passed = false``,
  ``QualityScanError`` (retried with backoff like any task talking to the database; the failure
  callback alerts when the retries are exhausted). An errored scan is never taken as a pass.

``quality_report`` holds the status (passed | warned | failed | error) and every check's outcome.
The rows of a failed interval stay in ``demand_hourly`` for inspection; downstream consumers only
take intervals with ``quality_passed`` true (view ``warehouse.ready_intervals``), and the ETL DAG
emits no asset event for them.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from include.notify import send_alert
from include.settings import get_settings
from include.warehouse import db

log = logging.getLogger(__name__)

CONTRACT = Path(__file__).parent / "contracts" / "demand_hourly.yml"
DATA_SOURCE_NAME = "warehouse"
SCHEMA, TABLE = "warehouse", "demand_hourly"


class QualityScanError(AirflowException):
    """The Soda scan could not be evaluated (not the same as checks failing)."""


@dataclass
class CheckOutcome:
    name: str
    type: str
    column: str | None
    outcome: str  # PASSED, WARN, FAILED, NOT_EVALUATED
    value: float | int | None


@dataclass
class GateResult:
    interval_start: str
    interval_end: str
    status: str  # passed | warned | failed | error
    checks: list[CheckOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.outcome == "FAILED"]

    @property
    def warned(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.outcome == "WARN"]

    def summary(self) -> dict[str, Any]:
        return {
            "interval_start": self.interval_start,
            "interval_end": self.interval_end,
            "status": self.status,
            "checks": len(self.checks),
            "failed": [_describe(c) for c in self.failed],
            "warned": [_describe(c) for c in self.warned],
            "errors": self.errors[:10],
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


def _describe(c: CheckOutcome) -> str:
    where = f"{c.column}: " if c.column else ""
    return f"{where}{c.name} ({c.type}) = {c.value}"


def soda_data_source():
    """A Soda postgres data source built from the Airflow connection of the warehouse."""
    from soda_postgres.common.data_sources.postgres_data_source import PostgresDataSourceImpl
    from soda_postgres.common.data_sources.postgres_data_source_connection import PostgresDataSource

    hook = db.get_hook()
    conn = hook.get_connection(hook.postgres_conn_id)
    model = PostgresDataSource.model_validate(
        {
            "type": "postgres",
            "name": DATA_SOURCE_NAME,
            "connection": {
                "host": conn.host or "localhost",
                "port": int(conn.port or 5432),
                "user": conn.login or "postgres",
                "password": conn.password or "",
                "database": conn.schema or "postgres",
            },
        }
    )
    return PostgresDataSourceImpl(data_source_model=model), model.connection_properties.database


def verify_interval(
    start: datetime, end: datetime, *, max_quarantine_share: float | None = None, contract: Path | None = None
) -> GateResult:
    """Run the contract on [start, end). Never raises for failing checks or scan errors: the
    result's ``status`` says what happened."""
    os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")  # no network; telemetry would stall
    max_share = get_settings().etl.max_quarantine_share if max_quarantine_share is None else max_quarantine_share
    result = GateResult(interval_start=start.isoformat(), interval_end=end.isoformat(), status="error")
    try:
        from soda_core.contracts import verify_contract_locally

        data_source, database = soda_data_source()
        session = verify_contract_locally(
            data_sources=[data_source],
            contract_file_path=str(contract or CONTRACT),
            variables={
                "dataset": f"{DATA_SOURCE_NAME}/{database}/{SCHEMA}/{TABLE}",
                "interval_start": start.isoformat(),
                "interval_end": end.isoformat(),
                # numbers, not strings: Soda thresholds only take numeric values
                "max_quarantine_share": float(max_share),
                "warn_quarantine_share": float(max_share) / 2,
            },
        )
    except Exception as exc:  # the scan could not run at all
        log.exception("Soda scan errored")
        result.errors.append(f"{type(exc).__name__}: {exc}")
        return result

    for contract_result in session.results:
        for cr in contract_result.check_results:
            value = cr.threshold_value
            result.checks.append(
                CheckOutcome(
                    name=cr.check.name or cr.check.type,
                    type=cr.check.type,
                    column=cr.check.column_name,
                    outcome=cr.outcome.name,
                    value=float(value) if isinstance(value, (int, float)) else None,
                )
            )
    result.errors = session.get_errors()
    not_evaluated = [c for c in result.checks if c.outcome == "NOT_EVALUATED"]
    if session.has_errors or not result.checks:
        result.status = "error"
        if not result.errors:
            result.errors.append("the scan produced no check results")
    elif session.is_failed:
        result.status = "failed"
    elif not_evaluated:
        # e.g. the quarantine-share query found no ledger row: not a pass
        result.status = "error"
        result.errors.append(f"checks not evaluated: {[_describe(c) for c in not_evaluated]}")
    elif session.is_warned:
        result.status = "warned"
    else:
        result.status = "passed"
    return result


def record_result(result: GateResult) -> None:
    """Write the outcome to the interval's ledger row (passed also with warnings)."""
    passed = result.status in ("passed", "warned")
    with db.transaction() as conn:
        updated = conn.execute(
            "update warehouse.load_ledger set quality_passed = %s, quality_checked_at = clock_timestamp(), "
            "quality_report = %s::jsonb where interval_start = %s::timestamptz",
            (passed, json.dumps(result.to_dict(), default=str), result.interval_start),
        ).rowcount
    if updated != 1:
        raise QualityScanError(f"no load_ledger row for interval {result.interval_start}: was the day loaded?")


def run_gate(start: datetime, end: datetime, context: dict | None = None) -> GateResult:
    """Verify, record and enforce the gate on [start, end). See the module docstring."""
    result = verify_interval(start, end)
    record_result(result)
    summary = result.summary()
    day = start.date().isoformat()
    if result.status == "error":
        raise QualityScanError(f"quality scan for {day} errored (not evaluated): {result.errors[:5]}")
    if result.status == "failed":
        send_alert(f"etl quality gate FAILED for {day}", summary, severity="error", context=context)
        raise AirflowFailException(
            f"quality gate failed for {day}: {[_describe(c) for c in result.failed]}; "
            "warehouse.load_ledger.quality_passed is false for the day and no asset event is emitted"
        )
    if result.status == "warned":
        send_alert(f"etl quality gate warning for {day}", summary, severity="warning", context=context)
    log.info("quality gate %s for %s: %d checks", result.status, day, len(result.checks))
    return result
