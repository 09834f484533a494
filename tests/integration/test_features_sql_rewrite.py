"""The feature SQL (moving RANGE frames, include/features/sql/) against the dense-grid SQL it
replaced (kept verbatim in tests/integration/sql/): same values on a sample with a missing day,
so the feature-set versions did not change. Real PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from include.features.seed import day_list, seed_days
from include.source.simulator import SourceConfig

pytestmark = pytest.mark.integration

CFG = SourceConfig(rows_per_day=960, seed=23)  # 40 stations
START = date(2026, 2, 1)
REFERENCE = Path(__file__).parent / "sql"


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def _select(sql: str, start: date, end: date) -> pd.DataFrame:
    from include.warehouse import db

    with db.transaction() as conn:
        conn.execute("set local timezone = 'UTC'")
        cur = conn.execute(f"select * from ({sql}) f order by ts, station_id", {"start": _utc(start), "end": _utc(end)})
        return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_rewritten_sql_gives_the_dense_grid_values(fresh_warehouse, version):
    from include.features.definitions import feature_set

    # 36 days, day 20 never delivered: the windows see a gap, not a shift
    seed_days([d for d in day_list(START, 36) if d != START + timedelta(days=20)], CFG)
    fs = feature_set(version)
    reference = (REFERENCE / f"demand_features_{version}_dense_grid.sql").read_text()
    # a batch from the first day (short history), one across the gap, one with a full lookback
    for start, end in ((0, 5), (18, 25), (31, 36)):
        s, e = START + timedelta(days=start), START + timedelta(days=end)
        new, old = _select(fs.sql, s, e), _select(reference, s, e)
        assert len(new) == len(old) > 0
        assert list(new.columns) == list(old.columns) == ["station_id", "ts", *fs.columns, "demand"]
        for col in new.columns:
            a, b = new[col].to_numpy(), old[col].to_numpy()
            if col == "temperature_anomaly_7d":
                # the old SQL summed temperatures as float8 running sums and took differences;
                # the new one sums them exactly (numeric): equal up to the last bits
                np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=0, atol=1e-12, err_msg=col)
            else:
                same = (a == b) | (pd.isna(a) & pd.isna(b))
                assert same.all(), f"{col} differs on {int((~same).sum())} rows in [{s}, {e})"
