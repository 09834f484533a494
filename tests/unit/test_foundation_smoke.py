from __future__ import annotations

from datetime import date


def test_warehouse_schema_applies_twice(fresh_warehouse):
    fresh_warehouse.ensure_schema()
    assert fresh_warehouse.fetch_one("select count(*) from warehouse.load_ledger") == (0,)
    ext = fresh_warehouse.fetch_one("select extversion from pg_extension where extname = 'vector'")
    assert ext is not None


def test_simulator_is_deterministic_and_marks_malformed_rows():
    from include.source.simulator import SourceConfig, raw_day

    cfg = SourceConfig(rows_per_day=480, malformed_share=0.05, seed=7)
    a, kinds_a = raw_day(date(2026, 1, 5), cfg)
    b, _ = raw_day(date(2026, 1, 5), cfg)
    assert a.equals(b)
    assert (kinds_a != "").sum() == round(0.05 * 480)
    assert len(a) == 480 + (kinds_a == "duplicate").sum()
