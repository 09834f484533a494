-- Warehouse layer written by the ETL DAG. Idempotent DDL: applied by include.warehouse.db.ensure_schema().
create extension if not exists vector;
create schema if not exists warehouse;

-- Hourly demand per station. One day's rows are replaced in one transaction per data interval.
create table if not exists warehouse.demand_hourly (
    station_id       integer          not null,
    ts               timestamptz      not null,
    temperature_c    double precision not null,
    precipitation_mm double precision not null,
    humidity_pct     double precision not null,
    is_holiday       boolean          not null,
    demand           integer          not null,
    source_file      text             not null,
    primary key (station_id, ts)
);
create index if not exists demand_hourly_ts_idx on warehouse.demand_hourly (ts);

-- Malformed rows, kept with the reason and the file they came from; replaced per interval too.
create table if not exists warehouse.quarantine (
    interval_start timestamptz not null,
    source_file    text        not null,
    row_number     bigint      not null,
    reason         text        not null,
    raw            jsonb       not null,
    quarantined_at timestamptz not null default now(),
    primary key (interval_start, row_number)
);

-- One row per loaded data interval, written in the same transaction as the rows.
-- Downstream DAGs find new work here (not from asset events alone).
create table if not exists warehouse.load_ledger (
    interval_start   timestamptz primary key,
    interval_end     timestamptz not null,
    rows_loaded      bigint      not null,
    rows_quarantined bigint      not null,
    source_file      text        not null,
    source_checksum  text        not null,
    loaded_at        timestamptz not null default clock_timestamp()
);
