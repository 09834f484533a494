"""A deterministic simulator of the source system: hourly bike-share demand per station.

Each day is one Parquet file in the landing zone (``demand_YYYY-MM-DD.parquet``), addressed
through Airflow's ``ObjectStoragePath`` (``file://`` by default, ``s3://`` by configuration);
names, roots and the atomic delivery are the landing contract, ``include/source/landing.py``.
The ``source_simulator`` DAG calls :func:`deliver_day` once per data interval.
The raw export is string-typed, as many source exports are: the ETL casts and validates it.

Demand depends on the hour of day, the weekday, holidays, temperature and rain. Knobs
(``include.settings.SourceSettings``): rows per day, share of malformed rows (bad types,
nulls in required columns, out-of-range values, duplicate keys), a date from which the data
drifts (warmer weather, and demand reacting differently to it: a model trained before the
drift gets worse after it), and days whose file is never delivered.

Everything is a vectorised NumPy/pandas expression: no Python loop per row.
"""

from __future__ import annotations

import hashlib
import io
from datetime import date, timedelta

import numpy as np
import pandas as pd

from include.intervals import utc_midnight
from include.settings import SourceSettings, declared_defaults, get_settings
from include.source import rules
from include.source.landing import deliver, file_name, find_day_file, landing_root  # the landing contract

HOURS = 24
HEAT_WAVE_C = 9.0  # temperature shift of the drift (a heat wave), degrees C
RAW_COLUMNS = list(rules.RAW_COLUMNS)  # the export's columns: the ETL's contract (include/source/rules.py)
MALFORMED_KINDS = ("bad_type", "null_required", "out_of_range", "duplicate")

# Fixed public holidays of the simulated city (month, day).
HOLIDAYS = {(1, 1), (1, 6), (5, 1), (8, 15), (11, 1), (12, 8), (12, 25), (12, 26)}


def SourceConfig(**values) -> SourceSettings:
    """The simulator's parameters: ``SourceSettings`` (include/settings.py, the knobs' one home)
    with ``values``; a field not named keeps its declared default, not the environment's value,
    so that a test or a benchmark says all it varies. The environment's: ``get_settings().source``."""
    return SourceSettings(**{**declared_defaults(SourceSettings), **values})


def _day_rng(cfg: SourceSettings, day: date, stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, day.toordinal(), stream])


def _station_profile(cfg: SourceSettings) -> tuple[np.ndarray, np.ndarray]:
    """Per-station base demand and temperature sensitivity: fixed for a seed."""
    rng = np.random.default_rng([cfg.seed, 0])
    base = rng.gamma(shape=4.0, scale=5.0, size=cfg.n_stations)  # mean 20 rides/hour at peak
    temp_sens = rng.normal(0.03, 0.01, size=cfg.n_stations)
    return base, temp_sens


def clean_day(day: date, cfg: SourceSettings) -> pd.DataFrame:
    """The true (typed, valid) rows of a day, before any corruption."""
    n_st = cfg.n_stations
    rng = _day_rng(cfg, day, 1)
    base, temp_sens = _station_profile(cfg)
    drifted = cfg.drifted(day)

    hours = np.arange(HOURS)
    # Weather: one city-wide daily curve plus station noise.
    season = 8.0 + 10.0 * np.sin(2 * np.pi * (day.timetuple().tm_yday - 110) / 365.25)
    if drifted:
        season += HEAT_WAVE_C  # heat wave: shifted temperature distribution
    daily = season + 5.0 * np.sin(2 * np.pi * (hours - 9) / 24.0) + rng.normal(0, 1.5)
    temp = daily[None, :] + rng.normal(0, 0.8, size=(n_st, HOURS))
    rain_hour = np.where(rng.random(HOURS) < (0.15 if not drifted else 0.05), rng.gamma(1.5, 1.2, HOURS), 0.0)
    rain = np.clip(rain_hour[None, :] + rng.normal(0, 0.1, size=(n_st, HOURS)), 0, None)
    humidity = np.clip(60 + 3 * rain - 0.8 * (temp - 10) + rng.normal(0, 5, size=(n_st, HOURS)), 5, 100)

    holiday = (day.month, day.day) in HOLIDAYS
    weekend = day.weekday() >= 5
    commute = np.exp(-((hours - 8) ** 2) / 4.0) + np.exp(-((hours - 18) ** 2) / 5.0)
    leisure = np.exp(-((hours - 14) ** 2) / 12.0)
    hourly = 0.15 + (0.4 * commute + 1.0 * leisure if (weekend or holiday) else 1.0 * commute + 0.35 * leisure)
    lam = base[:, None] * hourly[None, :] * np.exp(temp_sens[:, None] * (temp - 15.0)) * np.exp(-0.35 * rain)
    if drifted:
        # behaviour change: demand reacts to the heat wave itself (the anomaly against the usual
        # weather, so the effect is the same in any season), and leisure trips grow
        anomaly = temp - (daily - HEAT_WAVE_C)[None, :]
        lam = lam * np.exp(2.0 * temp_sens[:, None] * anomaly) * (1.0 + 0.5 * leisure / hourly)[None, :]
    demand = rng.poisson(np.clip(lam, 0.01, None))

    ts = pd.date_range(utc_midnight(day), periods=HOURS, freq="h")
    frame = pd.DataFrame(
        {
            "station_id": np.repeat(np.arange(1, n_st + 1, dtype=np.int64), HOURS),
            "ts": np.tile(ts.values, n_st),
            "temperature_c": temp.ravel().round(2),
            "precipitation_mm": rain.ravel().round(2),
            "humidity_pct": humidity.ravel().round(1),
            "is_holiday": np.full(n_st * HOURS, holiday),
            "demand": demand.ravel().astype(np.int64),
        }
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.iloc[: cfg.rows_per_day].reset_index(drop=True)


def raw_day(day: date, cfg: SourceSettings) -> tuple[pd.DataFrame, pd.Series]:
    """The day's raw export (all strings) and, for tests, the corruption applied to each row
    (``""`` for a clean row, else one of MALFORMED_KINDS)."""
    clean = clean_day(day, cfg)
    raw = pd.DataFrame(
        {
            "station_id": clean["station_id"].astype(str),
            "ts": clean["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "temperature_c": clean["temperature_c"].map("{:.2f}".format),
            "precipitation_mm": clean["precipitation_mm"].map("{:.2f}".format),
            "humidity_pct": clean["humidity_pct"].map("{:.1f}".format),
            "is_holiday": np.where(clean["is_holiday"], "true", "false"),
            "demand": clean["demand"].astype(str),
        }
    ).astype(object)
    kinds = pd.Series("", index=raw.index, dtype=object)
    n_bad = int(round(cfg.malformed_share * len(raw)))
    if n_bad:
        rng = _day_rng(cfg, day, 2)
        rows = rng.choice(len(raw), size=n_bad, replace=False)
        assigned = rng.integers(0, len(MALFORMED_KINDS), size=n_bad)
        for k, kind in enumerate(MALFORMED_KINDS):
            idx = rows[assigned == k]
            if not len(idx):
                continue
            kinds.iloc[idx] = kind
            if kind == "bad_type":
                for j, col in enumerate(("temperature_c", "demand", "ts")):
                    raw.loc[raw.index[idx[j::3]], col] = "n/a"
            elif kind == "null_required":
                raw.loc[raw.index[idx], "station_id"] = None
            elif kind == "out_of_range":
                raw.loc[raw.index[idx], "humidity_pct"] = "140.0"
        dups = rows[assigned == MALFORMED_KINDS.index("duplicate")]
        if len(dups):
            # the duplicates are extra copies of existing rows, appended at the end
            extra = raw.iloc[dups].copy()
            raw = pd.concat([raw, extra], ignore_index=True)
            kinds.iloc[dups] = ""  # the original row stays valid
            kinds = pd.concat([kinds, pd.Series("duplicate", index=range(len(kinds), len(raw)))], ignore_index=True)
    return raw, kinds


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False, engine="pyarrow", compression="zstd", row_group_size=100_000)
    return buf.getvalue()


def write_day(day: date, landing, cfg: SourceSettings | None = None):
    """Write one day's file under ``landing`` (an ObjectStoragePath). Returns its path, or
    None for a day configured as missing. Deterministic: same bytes for the same config."""
    cfg = cfg or get_settings().source
    if day in cfg.missing_days:
        return None
    raw, _ = raw_day(day, cfg)
    return deliver(day, parquet_bytes(raw), landing)


def write_range(start: date, end: date, landing, cfg: SourceSettings | None = None) -> list:
    """Write every day in [start, end). Skips days whose file already exists."""
    cfg = cfg or get_settings().source
    written = []
    day = start
    while day < end:
        target = landing / file_name(day)
        if not target.exists():
            path = write_day(day, landing, cfg)
            if path is not None:
                written.append(path)
        day += timedelta(days=1)
    return written


def deliver_day(day: date, cfg: SourceSettings | None = None, landing=None) -> dict:
    """What the ``source_simulator`` DAG does for one interval: deliver ``day``'s file into the
    landing zone unless it is configured as missing or already there (a re-run never changes a
    delivered file). Returns JSON-able facts for the task's XCom."""
    cfg = cfg or get_settings().source
    landing = landing if landing is not None else landing_root()
    if day in cfg.missing_days:
        return {"day": day.isoformat(), "status": "missing", "uri": None}
    found = (landing / file_name(day)) if (landing / file_name(day)).exists() else find_day_file(day)
    if found is not None:
        return {"day": day.isoformat(), "status": "exists", "uri": str(found)}
    path = write_day(day, landing, cfg)
    return {"day": day.isoformat(), "status": "delivered", "uri": str(path), "drifted": cfg.drifted(day)}


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: Airflow Variable holding the source's clock: days on or after this date are held back.
RELEASE_VARIABLE = "source_simulator_release_until"


def released(day: date, release_until: str | None) -> bool:
    """Whether the source's clock lets ``day`` be delivered (no clock: every day)."""
    return not release_until or day < date.fromisoformat(release_until)


def config_for_run(params: dict | None) -> SourceSettings:
    """The source's settings with a run's ``drift_start`` / ``missing_days`` params applied."""
    from dataclasses import replace

    cfg = get_settings().source
    params = params or {}
    if params.get("drift_start"):
        cfg = replace(cfg, drift_start=date.fromisoformat(params["drift_start"]))
    if params.get("missing_days"):
        cfg = replace(cfg, missing_days=tuple(date.fromisoformat(d) for d in params["missing_days"]))
    return cfg


def deliver_scheduled(day: date, params: dict | None = None) -> dict | None:
    """One poke of the ``source_simulator`` DAG: None while the clock holds ``day`` back, else
    :func:`deliver_day` with the run's configuration."""
    from airflow.sdk import Variable

    if not released(day, Variable.get(RELEASE_VARIABLE, default=None)):
        return None
    return deliver_day(day, config_for_run(params))
