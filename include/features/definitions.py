"""Feature-set versions: what each version computes, as SQL, and which columns it yields.

A feature set is frozen once released: changing a definition means adding a new version here
(a new ``sql/demand_features_vN.sql``), adding its new columns to
``include/warehouse/sql/002_features.sql``, moving ``CURRENT_FEATURE_SET_VERSION``, and
rebuilding the history with a parameterised run of the ``feature_engineering`` DAG (see its
docstring). Rows of every version live side by side in ``features.demand_features`` (key
``feature_set_version, ts, station_id``), so models trained on an older version keep working
while the new one is backfilled.

Light module (no pandas, no database): the DAG files import it at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"

#: the label the models predict
TARGET = "demand"
#: entity and time keys of every feature row
KEYS = ("station_id", "ts")

_CALENDAR = ["hour_of_day", "day_of_week", "is_weekend", "is_holiday"]
_WEATHER = ["temperature_c", "precipitation_mm", "humidity_pct"]
_V1_HISTORY = [
    "demand_lag_24h",
    "demand_lag_168h",
    "demand_mean_1d",
    "demand_mean_7d",
    "demand_same_hour_mean_7d",
]
_V2_EXTRA = [
    "demand_same_hour_mean_28d",
    "station_demand_mean_28d",
    "station_demand_std_28d",
    "temperature_anomaly_7d",
]


@dataclass(frozen=True)
class FeatureSet:
    version: str
    columns: tuple[str, ...]
    #: days before an interval that its features read (lags and windows)
    lookback_days: int
    sql_file: str
    description: str

    @property
    def sql(self) -> str:
        return (SQL_DIR / self.sql_file).read_text()

    #: columns treated as categories by the models (one-hot for linear models)
    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(c for c in ("hour_of_day", "day_of_week") if c in self.columns)


FEATURE_SETS: dict[str, FeatureSet] = {
    "v1": FeatureSet(
        version="v1",
        columns=tuple(_CALENDAR + _WEATHER + _V1_HISTORY),
        lookback_days=7,
        sql_file="demand_features_v1.sql",
        description="calendar, weather, same-hour lags (1 d, 7 d), means over the previous day and week",
    ),
    "v2": FeatureSet(
        version="v2",
        columns=tuple(_CALENDAR + _WEATHER + _V1_HISTORY + _V2_EXTRA),
        lookback_days=28,
        sql_file="demand_features_v2.sql",
        description="v1 + four-week same-hour mean, per-station 28-day mean and std, temperature anomaly",
    ),
}

#: the version the DAGs build and the models train on
CURRENT_FEATURE_SET_VERSION = "v2"


def feature_set(version: str | None = None) -> FeatureSet:
    version = version or CURRENT_FEATURE_SET_VERSION
    try:
        return FEATURE_SETS[version]
    except KeyError:
        raise ValueError(f"unknown feature-set version {version!r}; known: {sorted(FEATURE_SETS)}") from None


def feature_columns(version: str | None = None) -> list[str]:
    """The model input columns of a feature-set version (default: the current one)."""
    return list(feature_set(version).columns)


def all_feature_columns() -> list[str]:
    """Union of every version's columns, in table order."""
    seen: dict[str, None] = {}
    for fs in FEATURE_SETS.values():
        seen.update(dict.fromkeys(fs.columns))
    return list(seen)
