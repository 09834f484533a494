-- Warehouse layer written by the ETL DAG. Idempotent DDL: applied by include.warehouse.db.ensure_schema().
create extension if not exists vector;
create schema if not exists warehouse;

-- An earlier version of this file created demand_hourly as a plain table: move its rows into the
-- partitioned table below (they land in the default partition; the next ETL run of their day
-- replaces them). Runs once, only on such a database.
do $$
begin
    if exists (
        select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'warehouse' and c.relname = 'demand_hourly' and c.relkind = 'r'
    ) then
        raise notice 'migrating warehouse.demand_hourly to a partitioned table';
        create temp table _demand_hourly_migrate on commit drop as table warehouse.demand_hourly;
        drop table warehouse.demand_hourly cascade;
    end if;
end $$;

-- Hourly demand per station, partitioned by day (range on ts). The ETL loads a day into a new
-- table with COPY and swaps it in as that day's partition in one transaction, together with
-- the day's quarantine rows and its ledger row (include/etl/loading.py). Readers see the old
-- day or the new day, never a mix. Rows inserted by anything else land in the default partition.
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
) partition by range (ts);
create table if not exists warehouse.demand_hourly_default partition of warehouse.demand_hourly default;

do $$
begin
    if to_regclass('pg_temp._demand_hourly_migrate') is not null then
        insert into warehouse.demand_hourly select * from pg_temp._demand_hourly_migrate;
    end if;
end $$;

-- Malformed rows, kept with the reason, the file and row number they came from, and the raw
-- values as delivered; replaced per interval in the same transaction as the interval's rows.
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
-- Downstream DAGs find new work here (not from asset events alone), and only consume intervals
-- whose quality gate passed: quality_passed is true (the view below).
-- quality_passed: null = loaded, gate not run yet; true = the Soda gate passed (possibly with
-- warnings); false = a critical check failed or the scan errored: the rows stay in demand_hourly
-- for inspection, no asset event is emitted. quality_report->>'status' says which
-- (passed | warned | failed | error). Re-loading an interval resets the three columns.
create table if not exists warehouse.load_ledger (
    interval_start   timestamptz primary key,
    interval_end     timestamptz not null,
    rows_loaded      bigint      not null,
    rows_quarantined bigint      not null,
    source_file      text        not null,
    source_checksum  text        not null,
    loaded_at        timestamptz not null default clock_timestamp()
);
alter table warehouse.load_ledger add column if not exists quality_passed boolean;
alter table warehouse.load_ledger add column if not exists quality_checked_at timestamptz;
alter table warehouse.load_ledger add column if not exists quality_report jsonb;

-- The intervals downstream may consume: loaded and passed the quality gate.
create or replace view warehouse.ready_intervals as
select interval_start, interval_end, rows_loaded, rows_quarantined, source_file, source_checksum,
       loaded_at, quality_checked_at
from warehouse.load_ledger
where quality_passed;
