"""Feature definitions and batching: pure functions, no database."""

from __future__ import annotations

import re
from datetime import date

import pytest


def test_batches_are_contiguous_and_bounded():
    from include.features.build import day_range, plan_batches

    ivs = [iv for iv in day_range(date(2026, 1, 1), date(2026, 1, 11)) if iv.start.day != 5]  # a hole
    batches = plan_batches(ivs, batch_days=3)
    assert [[iv.start.day for iv in b] for b in batches] == [[1, 2, 3], [4], [6, 7, 8], [9, 10]]
    assert plan_batches([], 3) == []


def test_interval_json_round_trip():
    from include.features.build import Interval, day_range

    iv = day_range(date(2026, 2, 1), date(2026, 2, 2))[0]
    assert Interval.from_json(iv.to_json()) == iv
    assert iv.start.isoformat() == "2026-02-01T00:00:00+00:00"


def test_every_version_has_sql_and_table_columns_for_its_features():
    from include.features import definitions as d
    from include.warehouse.db import SQL_DIR

    ddl = (SQL_DIR / "002_features.sql").read_text()
    assert d.CURRENT_FEATURE_SET_VERSION in d.FEATURE_SETS
    assert d.TARGET == "demand"
    assert d.feature_columns() == list(d.FEATURE_SETS[d.CURRENT_FEATURE_SET_VERSION].columns)
    for fs in d.FEATURE_SETS.values():
        sql = fs.sql
        assert f"interval '{fs.lookback_days} days'" in sql
        for col in fs.columns:
            assert re.search(rf"^\s+{col}\s", ddl, re.M), f"{col} missing from 002_features.sql"
            assert re.search(rf"\b{col}\b", sql), f"{col} missing from {fs.sql_file}"
    # v2 extends v1: a model trained on v1 can be scored on either
    assert set(d.feature_columns("v1")) < set(d.feature_columns("v2"))
    with pytest.raises(ValueError, match="unknown feature-set version"):
        d.feature_columns("v0")
