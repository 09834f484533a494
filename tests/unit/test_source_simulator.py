"""The source as a DAG: what one ``source_simulator`` run does (include/source), without a scheduler.

The DAG itself runs in the end-to-end test and ``make run``; here: the source's clock, the per-run
configuration, idempotent and atomic delivery through ObjectStoragePath, missing days.
"""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq

from include.source import landing, rules
from include.source.simulator import SourceConfig, config_for_run, deliver_day, released

DAY = date(2026, 3, 2)
CFG = SourceConfig(rows_per_day=240, malformed_share=0.0)


def test_the_clock_holds_back_the_days_from_its_date_on():
    assert released(DAY, None) and released(DAY, "")
    assert released(DAY, "2026-03-03")
    assert not released(DAY, "2026-03-02") and not released(DAY, "2026-03-01")


def test_run_params_override_the_settings(monkeypatch):
    monkeypatch.setenv("MLOPS_SOURCE_DRIFT_START", "2026-01-01")
    assert config_for_run({}).drift_start == date(2026, 1, 1)
    cfg = config_for_run({"drift_start": "2026-03-01", "missing_days": ["2026-03-05"]})
    assert cfg.drift_start == date(2026, 3, 1) and cfg.missing_days == (date(2026, 3, 5),)
    assert cfg.drifted(DAY) and not cfg.drifted(date(2026, 2, 28))


def test_delivery_is_whole_idempotent_and_readable_by_the_etl(tmp_storage):
    first = deliver_day(DAY, CFG)
    assert first["status"] == "delivered" and first["drifted"] is False
    path = tmp_storage["landing"] / landing.file_name(DAY)
    assert landing.day_of(path.name) == DAY
    assert [p.name for p in tmp_storage["landing"].iterdir()] == [path.name]  # no partial object left
    table = pq.read_table(path)
    assert table.column_names == list(rules.RAW_COLUMNS) and table.num_rows == 240
    before = path.read_bytes()
    again = deliver_day(DAY, SourceConfig(rows_per_day=999))  # a re-run never changes a delivered file
    assert again["status"] == "exists" and path.read_bytes() == before


def test_a_day_archived_by_cold_storage_is_not_delivered_again(tmp_storage):
    (tmp_storage["archive"] / landing.file_name(DAY)).write_bytes(b"archived")
    assert deliver_day(DAY, CFG)["status"] == "exists"
    assert not (tmp_storage["landing"] / landing.file_name(DAY)).exists()


def test_a_missing_day_is_never_written(tmp_storage):
    cfg = SourceConfig(rows_per_day=240, missing_days=(DAY,))
    assert deliver_day(DAY, cfg) == {"day": DAY.isoformat(), "status": "missing", "uri": None}
    assert list(tmp_storage["landing"].iterdir()) == []
