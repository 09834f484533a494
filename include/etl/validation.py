"""Vectorised validation of one chunk of a day's raw file (pyarrow compute + NumPy).

Every check is an array expression over the whole chunk: no Python loop per row. A row is good
when every column parses, lies in its range (include/source/rules.py), its timestamp is on the hour
inside the data interval, and its key (station_id, ts) was not seen earlier in the file.
Bad rows come back as a small Arrow table with their 1-based row number in the file, the
reason(s) ("bad_type: demand; out_of_range: humidity_pct") and the raw values as delivered.

Duplicate keys are detected across chunks by ``KeyDeduplicator``: sorted arrays of the keys
loaded so far, 8 bytes per good row (8 MB for a 1,000,000-row day). It is the only state that
grows with the file; everything else is per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.source import rules

_INT_RE = r"^-?[0-9]{1,10}$"  # a subset of what pyarrow casts to int64
_FLOAT_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"  # a subset of what pyarrow casts to float64
_SECONDS_PER_HOUR = 3600


class SourceSchemaError(ValueError):
    """The file itself is unusable (e.g. a required column is missing): no row can be loaded."""


def check_schema(schema: pa.Schema, source: str) -> None:
    missing = [c for c in rules.RAW_COLUMNS if c not in schema.names]
    if missing:
        raise SourceSchemaError(
            f"{source} lacks the required column(s) {missing}; it has {schema.names}. "
            "Fix the export (nothing was loaded for this day)."
        )


@dataclass
class ValidatedChunk:
    """Typed values of the good rows of a chunk (in file order) and the quarantined rows."""

    station_id: np.ndarray  # int32
    ts_s: np.ndarray  # int64, seconds since the Unix epoch, UTC
    temperature_c: np.ndarray  # float64
    precipitation_mm: np.ndarray  # float64
    humidity_pct: np.ndarray  # float64
    is_holiday: np.ndarray  # bool
    demand: np.ndarray  # int32
    bad: pa.Table  # row_number int64, reason string, then the raw columns as strings

    @property
    def n_good(self) -> int:
        return len(self.station_id)

    @property
    def n_bad(self) -> int:
        return self.bad.num_rows


class KeyDeduplicator:
    """Remembers the keys of the rows kept so far; flags a later row with the same key.

    Keys are kept as sorted runs, one per chunk (merged when there are many), so adding a chunk
    never copies what is already stored: 8 bytes per kept row, no transient doubling.
    """

    MAX_RUNS = 64

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def duplicates(self, keys: np.ndarray) -> np.ndarray:
        """Boolean mask over ``keys`` (in file order): True where the key was seen earlier, in a
        previous chunk or earlier in this one. The first occurrence is kept and remembered."""
        uniq, first = np.unique(keys, return_index=True)
        dup = np.ones(len(keys), dtype=bool)
        dup[first] = False
        new = np.ones(len(uniq), dtype=bool)
        for run in self._runs:
            dup |= _member(keys, run)
            new &= ~_member(uniq, run)
        if new.any():
            self._runs.append(uniq[new])
        if len(self._runs) > self.MAX_RUNS:
            merged = np.concatenate(self._runs)
            merged.sort()
            self._runs = [merged]
        return dup


def _member(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(sorted_values, values)
    pos[pos == len(sorted_values)] = 0
    return sorted_values[pos] == values


def _np(arr: pa.Array) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def _as_string(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type):
        return arr
    return pc.cast(arr, pa.string())


class _Column:
    """One column of the chunk, split into the distinct values to check and an index per row.

    Parquet writers dictionary-encode low-cardinality columns and ``read_dictionary`` hands them
    over as DictionaryArrays: parsing the dictionary (tens to thousands of strings) instead of
    every row, then gathering by index, makes validation ~10x cheaper. A plain column is its own
    dictionary (index None).
    """

    def __init__(self, arr: pa.Array):
        self.nulls = _np(pc.is_null(arr))
        if pa.types.is_dictionary(arr.type):
            self.values = arr.dictionary
            self.index = _np(pc.fill_null(arr.indices, 0)).astype(np.int64, copy=False)
        else:
            self.values = arr
            self.index = None

    def gather(self, per_value: np.ndarray) -> np.ndarray:
        return per_value if self.index is None else per_value[self.index]


def _parse_number(values: pa.Array, regex: str, to_type: pa.DataType) -> tuple[np.ndarray, np.ndarray]:
    """(parsed ok mask, values with 0 where not parsed), per value of ``values``."""
    values = _as_string(values)
    ok = pc.fill_null(pc.match_substring_regex(values, regex), False)
    if not pc.all(pc.or_(ok, pc.is_null(values))).as_py():
        values = pc.if_else(ok, values, pa.scalar("0"))  # only when a value would not cast
    return _np(ok), _np(pc.fill_null(pc.cast(values, to_type), 0))


def _parse_ts(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(parsed ok mask, seconds since the epoch UTC with 0 where not parsed), per value."""
    if pa.types.is_timestamp(values.type):  # a typed export: naive timestamps are taken as UTC
        parsed = pc.cast(values, pa.timestamp("s", tz=values.type.tz), safe=False)
    else:
        parsed = pc.strptime(_as_string(values), format=rules.TS_FORMAT, unit="s", error_is_null=True)
    return _np(pc.is_valid(parsed)), _np(pc.fill_null(parsed.cast(pa.int64()), 0))


def validate_chunk(
    batch: pa.RecordBatch,
    first_row: int,
    interval_start_s: int,
    interval_end_s: int,
    dedup: KeyDeduplicator,
) -> ValidatedChunk:
    """Validate ``batch`` whose first row is row ``first_row`` (1-based) of the file."""
    n = batch.num_rows
    cols = {c: _Column(batch.column(c)) for c in rules.RAW_COLUMNS}
    fails: list[tuple[str, np.ndarray]] = []  # (reason, row mask) in reporting order
    ok = np.ones(n, dtype=bool)

    def fail(reason: str, mask: np.ndarray) -> None:
        nonlocal ok
        if mask.any():
            fails.append((reason, mask))
            ok &= ~mask

    for c in rules.RAW_COLUMNS:
        fail(f"{rules.NULL_REQUIRED}: {c}", cols[c].nulls)

    values: dict[str, np.ndarray] = {}
    for c in rules.INTEGER_COLUMNS + rules.FLOAT_COLUMNS:
        col, r = cols[c], rules.RANGES[c]
        is_int = c in rules.INTEGER_COLUMNS
        parsed, v = _parse_number(col.values, _INT_RE if is_int else _FLOAT_RE, pa.int64() if is_int else pa.float64())
        in_range = (v >= r.min) & (v <= r.max)
        parsed, in_range, v = col.gather(parsed), col.gather(in_range), col.gather(v)
        fail(f"{rules.BAD_TYPE}: {c}", ~parsed & ~col.nulls)
        fail(f"{rules.OUT_OF_RANGE}: {c}", parsed & ~in_range & ~col.nulls)
        values[c] = v

    ts = cols["ts"]
    ts_ok, ts_s = (ts.gather(x) for x in _parse_ts(ts.values))
    fail(f"{rules.BAD_TYPE}: ts", ~ts_ok & ~ts.nulls)
    fail(f"{rules.OUTSIDE_INTERVAL}: ts", ts_ok & ((ts_s < interval_start_s) | (ts_s >= interval_end_s)))
    fail(f"{rules.NOT_ON_HOUR}: ts", ts_ok & (ts_s % _SECONDS_PER_HOUR != 0))

    hol = cols["is_holiday"]
    lowered = pc.utf8_lower(_as_string(hol.values))
    is_true = hol.gather(_np(pc.fill_null(pc.is_in(lowered, pa.array(rules.TRUE_VALUES)), False)))
    is_false = hol.gather(_np(pc.fill_null(pc.is_in(lowered, pa.array(rules.FALSE_VALUES)), False)))
    fail(f"{rules.BAD_TYPE}: is_holiday", ~(is_true | is_false) & ~hol.nulls)

    # Duplicate keys among the rows that are otherwise good (first occurrence in the file wins).
    good_idx = np.flatnonzero(ok)
    hours = (interval_end_s - interval_start_s) // _SECONDS_PER_HOUR
    keys = values["station_id"][good_idx] * hours + (ts_s[good_idx] - interval_start_s) // _SECONDS_PER_HOUR
    dup_of_good = dedup.duplicates(keys)
    if dup_of_good.any():
        dup = np.zeros(n, dtype=bool)
        dup[good_idx[dup_of_good]] = True
        fail(f"{rules.DUPLICATE_KEY}: (station_id, ts) seen earlier in the file", dup)
        good_idx = good_idx[~dup_of_good]

    bad_idx = np.flatnonzero(~ok)
    return ValidatedChunk(
        station_id=values["station_id"][good_idx].astype(np.int32),
        ts_s=ts_s[good_idx],
        temperature_c=values["temperature_c"][good_idx],
        precipitation_mm=values["precipitation_mm"][good_idx],
        humidity_pct=values["humidity_pct"][good_idx],
        is_holiday=is_true[good_idx],
        demand=values["demand"][good_idx].astype(np.int32),
        bad=_bad_rows(batch, bad_idx, first_row, fails),
    )


def _bad_rows(batch: pa.RecordBatch, bad_idx: np.ndarray, first_row: int, fails) -> pa.Table:
    """The quarantined rows: row number, every reason that applies, raw values as strings."""
    take = pa.array(bad_idx, type=pa.int64())
    none = pa.scalar(None, pa.string())
    parts = [pc.if_else(pa.array(mask[bad_idx]), pa.scalar(reason), none) for reason, mask in fails]
    if parts:
        reason = pc.binary_join_element_wise(*parts, "; ", null_handling="skip")
    else:
        reason = pa.array([], pa.string())
    columns = {
        "row_number": pa.array(bad_idx + first_row, type=pa.int64()),
        "reason": reason,
    }
    for c in rules.RAW_COLUMNS:
        columns[c] = _raw_strings(batch.column(c).take(take))
    return pa.table(columns)


def _raw_strings(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_timestamp(arr.type):
        return pc.strftime(arr, format=rules.TS_FORMAT)
    return _as_string(arr)


QUARANTINE_SCHEMA = pa.schema(
    [("row_number", pa.int64()), ("reason", pa.string())] + [(c, pa.string()) for c in rules.RAW_COLUMNS]
)
