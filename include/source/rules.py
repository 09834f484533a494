"""What a valid row of the demand source is: one definition for the loader and the quality gate.

The loader (include/etl/validation.py) quarantines rows that break these rules before they reach
the warehouse; the Soda contract (include/quality/contracts/demand_hourly.yml) checks the loaded
interval against the same bounds. tests/unit/test_etl_rules.py fails if the two drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Columns of the raw export, in file order. All of them are required (no nulls).
RAW_COLUMNS: tuple[str, ...] = (
    "station_id",
    "ts",
    "temperature_c",
    "precipitation_mm",
    "humidity_pct",
    "is_holiday",
    "demand",
)
#: Key of warehouse.demand_hourly: one row per station and hour.
KEY_COLUMNS: tuple[str, ...] = ("station_id", "ts")
#: Timestamp format of the raw export (UTC, whole seconds).
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TRUE_VALUES = ("true", "t", "1", "yes")
FALSE_VALUES = ("false", "f", "0", "no")


@dataclass(frozen=True)
class Range:
    """Closed interval of valid values: min <= value <= max."""

    min: float
    max: float


#: Value ranges, inclusive. station_id and demand are integers (int4 in the warehouse).
RANGES: dict[str, Range] = {
    "station_id": Range(1, 2_147_483_647),
    "temperature_c": Range(-60.0, 60.0),
    "precipitation_mm": Range(0.0, 500.0),
    "humidity_pct": Range(0.0, 100.0),
    "demand": Range(0, 100_000),
}
INTEGER_COLUMNS: tuple[str, ...] = ("station_id", "demand")
FLOAT_COLUMNS: tuple[str, ...] = ("temperature_c", "precipitation_mm", "humidity_pct")

# Reason codes written to warehouse.quarantine.reason as "<code>: <column>" (several joined by "; ").
NULL_REQUIRED = "null_required"
BAD_TYPE = "bad_type"
OUT_OF_RANGE = "out_of_range"
OUTSIDE_INTERVAL = "outside_interval"
NOT_ON_HOUR = "not_on_hour"
DUPLICATE_KEY = "duplicate_key"
REASON_CODES = (NULL_REQUIRED, BAD_TYPE, OUT_OF_RANGE, OUTSIDE_INTERVAL, NOT_ON_HOUR, DUPLICATE_KEY)
