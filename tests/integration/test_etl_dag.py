"""Real runs of the ``etl`` DAG with ``dag.test()`` against the real PostgreSQL.

``dag.test(logical_date=X)`` gives a run the data interval ``timetable.infer_manual_data_interval(X)``,
which for the DAG's ``CronDataIntervalTimetable("0 0 * * *")`` is the last complete day before X:
the run for day D uses X = D + 1 day (``run_day`` asserts the interval). The
backfill test takes its intervals from Airflow's own backfill planner (``_get_info_list``, what
``airflow backfill create`` uses) and checks each run got exactly that interval.

Env read at parse time (retry delay, sensor timeout) is set before the DAG file is parsed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from include.source.simulator import SourceConfig, write_day

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CFG = SourceConfig(rows_per_day=2400, malformed_share=0.02, seed=5)


@pytest.fixture
def etl_dag(monkeypatch, tmp_storage, fresh_warehouse):
    """The etl DAG parsed under a fast test configuration, on an empty warehouse."""
    monkeypatch.setenv("MLOPS_RETRY_DELAY_S", "0.1")
    monkeypatch.setenv("MLOPS_FILE_WAIT_TIMEOUT_S", "3")
    monkeypatch.setenv("MLOPS_FILE_POKE_INTERVAL_S", "1")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "etl.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("etl")


def landing():
    from include.settings import get_settings

    s = get_settings().storage
    return s.path(s.landing_uri)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def run_day(dag, day: date):
    """One dag.test run whose data interval is exactly ``day``."""
    dr = dag.test(logical_date=midnight(day + timedelta(days=1)))
    assert (dr.data_interval_start, dr.data_interval_end) == (midnight(day), midnight(day + timedelta(days=1)))
    return dr


def states(dr) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: ti.state for ti in dr.get_task_instances(session=session)}


def asset_events(run_id: str | None = None) -> list:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from include.assets import WAREHOUSE_DEMAND

    with create_session() as session:
        q = (
            select(AssetEvent.extra, AssetEvent.source_run_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == WAREHOUSE_DEMAND.uri, AssetEvent.source_dag_id == "etl")
        )
        if run_id:
            q = q.where(AssetEvent.source_run_id == run_id)
        return [row[0] for row in session.execute(q).all()]


def warehouse_snapshot(db) -> tuple:
    return (
        db.fetch_all(
            "select md5(string_agg(d::text, ',' order by station_id, ts)), count(*) from warehouse.demand_hourly d"
        ),
        db.fetch_all(
            "select md5(string_agg(concat_ws('|', interval_start, row_number, reason, raw), ',' "
            "order by interval_start, row_number)), count(*) from warehouse.quarantine"
        ),
        db.fetch_all(
            "select interval_start, interval_end, rows_loaded, rows_quarantined, source_checksum, quality_passed "
            "from warehouse.load_ledger order by 1"
        ),
    )


def alerts(tmp_storage) -> list[dict]:
    from include.notify import read_alerts

    return read_alerts()


def test_one_day_loads_gates_and_publishes_then_rerun_changes_nothing(etl_dag, fresh_warehouse):
    from tests.integration.test_etl_load import expected_rows, warehouse_rows

    day = date(2026, 1, 5)
    write_day(day, landing(), CFG)
    dr = run_day(etl_dag, day)
    assert dr.state == "success", states(dr)
    assert set(states(dr).values()) == {"success"}

    got = warehouse_rows(fresh_warehouse, day)
    assert len(got) == len(expected_rows(day, CFG))
    ledger = fresh_warehouse.fetch_one(
        "select rows_loaded, rows_quarantined, quality_passed, quality_report->>'status' from warehouse.load_ledger"
    )
    assert ledger[0] == len(got) and ledger[1] > 0 and ledger[2] is True and ledger[3] == "passed"
    assert fresh_warehouse.fetch_one("select count(*) from warehouse.quarantine") == (ledger[1],)
    events = asset_events(dr.run_id)
    assert events == [
        {
            "interval_start": "2026-01-05T00:00:00+00:00",
            "interval_end": "2026-01-06T00:00:00+00:00",
            "rows_loaded": ledger[0],
            "rows_quarantined": ledger[1],
            "quality_gate": "passed",
        }
    ]

    before = warehouse_snapshot(fresh_warehouse)
    dr2 = run_day(etl_dag, day)
    assert dr2.state == "success"
    assert warehouse_snapshot(fresh_warehouse) == before


def test_backfill_of_three_days_equals_three_single_day_runs(etl_dag, fresh_warehouse):
    from airflow.models.backfill import _get_info_list
    from airflow.serialization.serialized_objects import DagSerialization

    days = [date(2026, 1, 2) + timedelta(days=i) for i in range(3)]
    for day in days:
        write_day(day, landing(), CFG)

    # three single-day runs, each on an otherwise empty warehouse
    singles = []
    for day in days:
        fresh_warehouse.ensure_schema()
        with fresh_warehouse.transaction() as conn:
            conn.execute("truncate warehouse.load_ledger, warehouse.quarantine, warehouse.demand_hourly")
        assert run_day(etl_dag, day).state == "success"
        singles.append(warehouse_snapshot(fresh_warehouse))

    # the backfill: the intervals airflow backfill create would make, run into one warehouse, twice
    serialized = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(etl_dag))
    infos = _get_info_list(from_date=midnight(days[0]), to_date=midnight(days[-1]), reverse=False, dag=serialized)
    assert [info.data_interval.start for info in infos] == [midnight(d) for d in days]
    with fresh_warehouse.transaction() as conn:
        conn.execute("truncate warehouse.load_ledger, warehouse.quarantine, warehouse.demand_hourly")
    for info in infos:
        assert run_day(etl_dag, info.data_interval.start.date()).state == "success"
    backfilled = warehouse_snapshot(fresh_warehouse)
    for info in reversed(infos):  # a second backfill, in reverse order
        assert run_day(etl_dag, info.data_interval.start.date()).state == "success"
    assert warehouse_snapshot(fresh_warehouse) == backfilled

    # every day's rows, quarantine and ledger equal its single-day run
    for day, single in zip(days, singles, strict=True):
        start, end = midnight(day), midnight(day + timedelta(days=1))
        assert (
            fresh_warehouse.fetch_all(
                "select md5(string_agg(d::text, ',' order by station_id, ts)), count(*) from warehouse.demand_hourly d "
                "where ts >= %s and ts < %s",
                (start, end),
            )
            == single[0]
        )
        assert [r for r in backfilled[2] if r[0] == start] == single[2]
    assert backfilled[0][0][1] == sum(s[0][0][1] for s in singles)
    assert backfilled[1][0][1] == sum(s[1][0][1] for s in singles)


def test_a_day_failing_critical_checks_fails_the_run_without_asset_event(etl_dag, fresh_warehouse, tmp_storage):
    day = date(2026, 1, 9)
    # 30% malformed rows: the quarantined share breaks the critical threshold (5%)
    write_day(day, landing(), SourceConfig(rows_per_day=2400, malformed_share=0.3, seed=5))
    dr = run_day(etl_dag, day)
    s = states(dr)
    assert dr.state == "failed"
    assert s["load"] == "success" and s["quality_gate"] == "failed" and s["publish"] == "upstream_failed"
    assert asset_events(dr.run_id) == []
    passed, report = fresh_warehouse.fetch_one(
        "select quality_passed, quality_report from warehouse.load_ledger where interval_start = %s", (midnight(day),)
    )
    assert passed is False and report["status"] == "failed"
    assert any("quarantined" in f for f in report["summary"]["failed"])
    assert fresh_warehouse.fetch_all("select * from warehouse.ready_intervals") == []
    gate_alerts = [a for a in alerts(tmp_storage) if "quality gate FAILED" in a["subject"]]
    assert len(gate_alerts) == 1 and gate_alerts[0]["details"]["status"] == "failed"
    # not retried: a failed gate is final
    from airflow.utils.session import create_session

    with create_session() as session:
        gate_ti = next(ti for ti in dr.get_task_instances(session=session) if ti.task_id == "quality_gate")
        assert gate_ti.try_number == 1


def test_a_warning_alerts_but_publishes(etl_dag, fresh_warehouse, tmp_storage):
    day = date(2026, 1, 10)
    # 3% malformed: above the warning level (half of 5%), below the critical one
    write_day(day, landing(), SourceConfig(rows_per_day=2400, malformed_share=0.03, seed=5))
    dr = run_day(etl_dag, day)
    assert dr.state == "success"
    assert asset_events(dr.run_id)[0]["quality_gate"] == "warned"
    assert fresh_warehouse.fetch_one("select quality_passed from warehouse.load_ledger") == (True,)
    assert [a["severity"] for a in alerts(tmp_storage) if "warning" in a["subject"]] == ["warning"]


def test_a_scan_error_fails_the_task(etl_dag, fresh_warehouse, tmp_storage, monkeypatch):
    """A scan that errors (its query fails in the database) fails the task: never taken as a pass."""
    from include.quality import gate

    broken = tmp_storage["reports"] / "broken_contract.yml"
    broken.write_text(
        gate.CONTRACT.read_text().replace(
            "checks:\n  - schema:\n",
            "checks:\n  - schema:\n  - metric:\n      name: refers to a column that does not exist\n"
            "      qualifier: broken\n"
            "      query: select max(no_such_column) from warehouse.demand_hourly\n"
            "      threshold:\n        must_be: 1\n",
        )
    )
    monkeypatch.setattr(gate, "CONTRACT", broken)  # dag.test runs tasks in this process
    day = date(2026, 1, 11)
    write_day(day, landing(), CFG)
    dr = run_day(etl_dag, day)
    s = states(dr)
    assert dr.state == "failed" and s["quality_gate"] == "failed" and s["publish"] == "upstream_failed"
    assert asset_events(dr.run_id) == []
    passed, report = fresh_warehouse.fetch_one("select quality_passed, quality_report from warehouse.load_ledger")
    assert passed is False and report["status"] == "error"
    assert any("no_such_column" in e for e in report["errors"]), report["errors"]
    from airflow.utils.session import create_session

    with create_session() as session:  # a scan error is retried (it may be transient), then fails
        gate_ti = next(ti for ti in dr.get_task_instances(session=session) if ti.task_id == "quality_gate")
        assert gate_ti.try_number == 3


def test_a_missing_file_times_out_with_a_clear_error(etl_dag, fresh_warehouse, tmp_storage):
    day = date(2026, 1, 12)
    dr = run_day(etl_dag, day)
    s = states(dr)
    assert dr.state == "failed" and s["wait_for_file"] == "failed" and s["load"] == "upstream_failed"
    failure = [a for a in alerts(tmp_storage) if a.get("task_id") == "wait_for_file"]
    assert len(failure) == 1
    message = failure[0]["details"]["exception"]
    assert "AirflowSensorTimeout" in message and "2026-01-12" in message and "demand_2026-01-12.parquet" in message
    assert str(tmp_storage["landing"]) in message and str(tmp_storage["archive"]) in message
    assert fresh_warehouse.fetch_all("select * from warehouse.load_ledger") == []


def test_an_unusable_file_fails_the_load_at_once(etl_dag, fresh_warehouse, tmp_storage):
    """A file without a required column: no retry (it cannot fix itself), nothing loaded, clear error."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.source.simulator import file_name, raw_day

    day = date(2026, 1, 13)
    raw, _ = raw_day(day, CFG)
    with (landing() / file_name(day)).open("wb") as fh:
        pq.write_table(pa.Table.from_pandas(raw.drop(columns=["humidity_pct"]), preserve_index=False), fh)
    dr = run_day(etl_dag, day)
    s = states(dr)
    assert dr.state == "failed" and s["load"] == "failed" and s["quality_gate"] == "upstream_failed"
    from airflow.utils.session import create_session

    with create_session() as session:
        load_ti = next(ti for ti in dr.get_task_instances(session=session) if ti.task_id == "load")
        assert load_ti.try_number == 1
    failure = [a for a in alerts(tmp_storage) if a.get("task_id") == "load"]
    assert "AirflowFailException" in failure[0]["details"]["exception"]
    assert "humidity_pct" in failure[0]["details"]["exception"]
    assert fresh_warehouse.fetch_all("select * from warehouse.load_ledger") == []
    assert fresh_warehouse.fetch_one("select count(*) from warehouse.demand_hourly") == (0,)
