"""Predictions go into ml.predictions by binary COPY: what is read back is what was predicted."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.integration


def test_binary_copy_of_predictions_round_trips_and_replaces_the_range(fresh_warehouse):
    import numpy as np
    import pandas as pd

    from include.monitoring.scoring import store_predictions
    from include.warehouse import db

    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    ts = pd.Series(pd.date_range(start, periods=24, freq="h", tz="UTC").repeat(3))
    frame = pd.DataFrame({"ts": ts, "station_id": np.tile(np.array([7, 11, 2**31 - 1], dtype=np.int64), 24)})
    pred = np.random.default_rng(3).gamma(2.0, 10.0, len(frame))
    pred[0] = 0.1 + 0.2  # not representable exactly in text with few digits
    version = "20260301-hgb_poisson-0123456789"

    with db.transaction() as conn:
        assert store_predictions(conn, version, start, end, frame, pred) == 72
    rows = db.fetch_all(
        "select ts, station_id, prediction from ml.predictions where model_version = %s order by ts, station_id",
        (version,),
    )
    expected = sorted(zip(ts.dt.to_pydatetime(), frame["station_id"], pred, strict=True), key=lambda r: (r[0], r[1]))
    assert [(r[0], r[1]) for r in rows] == [(t, int(s)) for t, s, _ in expected]
    assert [r[2] for r in rows] == [float(p) for _, _, p in expected]  # bit for bit

    # a second store of the range replaces it (a re-score), never duplicates
    with db.transaction() as conn:
        store_predictions(conn, version, start, end, frame.iloc[:10], pred[:10])
    assert db.fetch_one("select count(*) from ml.predictions where model_version = %s", (version,)) == (10,)
