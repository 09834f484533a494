-- Feature store (include/features). Idempotent DDL: applied by include.warehouse.db.ensure_schema().
create schema if not exists features;

-- One row per (station, hour, feature-set version). Wide table: the union of the columns of every
-- feature-set version (include/features/definitions.py); a version leaves the others' columns null,
-- so several versions coexist. Rows of one interval and version are replaced in one transaction.
-- Primary key order (version, ts, station) serves the two access paths: delete/read a time range
-- of one version.
create table if not exists features.demand_features (
    feature_set_version       text             not null,
    ts                        timestamptz      not null,
    station_id                integer          not null,
    -- calendar
    hour_of_day               smallint         not null,
    day_of_week               smallint         not null,   -- ISO: 1 = Monday
    is_weekend                boolean          not null,
    is_holiday                boolean          not null,
    -- weather of the hour (known at forecast time)
    temperature_c             double precision not null,
    precipitation_mm          double precision not null,
    humidity_pct              double precision not null,
    -- lags of the target (same hour 1 and 7 days before)
    demand_lag_24h            double precision,
    demand_lag_168h           double precision,
    -- rolling windows over previous whole days (v1)
    demand_mean_1d            double precision,
    demand_mean_7d            double precision,
    demand_same_hour_mean_7d  double precision,
    -- v2: longer windows and per-station aggregates
    demand_same_hour_mean_28d double precision,
    station_demand_mean_28d   double precision,
    station_demand_std_28d    double precision,
    temperature_anomaly_7d    double precision,
    -- target
    demand                    integer          not null,
    built_at                  timestamptz      not null default now(),
    primary key (feature_set_version, ts, station_id)
);

-- One row per built (interval, feature-set version). source_loaded_at is the newest load
-- (warehouse.load_ledger.loaded_at) among the interval and the days of its lookback window:
-- when any of them is reloaded, the interval is stale and is rebuilt.
create table if not exists features.feature_ledger (
    interval_start      timestamptz not null,
    feature_set_version text        not null,
    interval_end        timestamptz not null,
    rows_built          bigint      not null,
    source_loaded_at    timestamptz not null,
    built_at            timestamptz not null default clock_timestamp(),
    run_id              text,
    primary key (interval_start, feature_set_version)
);
