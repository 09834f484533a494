-- Test reference (tests/integration/test_features_sql_rewrite.py): the v2 SQL as shipped until the
-- moving-frame rewrite of include/features/sql/demand_features_v2.sql, kept verbatim below.
-- Feature set v2 = v1 + four-week windows and per-station aggregates:
--   demand_same_hour_mean_28d  mean demand of the station at this hour over the previous 28 days
--   station_demand_mean_28d    mean hourly demand of the station over the previous 28 days
--   station_demand_std_28d     its standard deviation (running sums of squares)
--   temperature_anomaly_7d     temperature of the hour minus the station's mean over the previous 7 days
-- Day-ahead like v1: every feature of day D uses only the days before D, plus D's calendar and weather.
-- Parameters: %(start)s, %(end)s = a range of whole UTC days [start, end). Lookback: 28 days.
-- Windows are differences of running sums over a dense calendar (see demand_features_v1.sql).
with stations as (
    select distinct h.station_id
    from warehouse.demand_hourly h
    where h.ts >= %(start)s::timestamptz and h.ts < %(end)s::timestamptz
),
grid as (
    select s.station_id, g.ts
    from stations s
    -- from the lookback start, or from the first loaded day if the history is shorter
    cross join generate_series(
        greatest(%(start)s::timestamptz - interval '28 days',
                 (select min(interval_start) from warehouse.load_ledger
                   where interval_start >= %(start)s::timestamptz - interval '28 days')),
        %(end)s::timestamptz - interval '1 hour',
        interval '1 hour') as g(ts)
),
hourly as (
    select g.station_id, g.ts, h.demand, h.temperature_c, h.precipitation_mm, h.humidity_pct, h.is_holiday,
           extract(hour from g.ts at time zone 'UTC')::smallint as hour_of_day
    from grid g
    left join (
        select d.station_id, d.ts, d.demand, d.temperature_c, d.precipitation_mm, d.humidity_pct, d.is_holiday
        from warehouse.demand_hourly d
        where d.ts >= %(start)s::timestamptz - interval '28 days' and d.ts < %(end)s::timestamptz
    ) h on h.station_id = g.station_id and h.ts = g.ts
),
same_hour_cum as (
    select hourly.*,
           sum(coalesce(demand, 0)) over w as cs,
           count(demand) over w as cn
    from hourly
    window w as (partition by station_id, hour_of_day order by ts rows unbounded preceding)
),
same_hour as (
    select station_id, ts, hour_of_day, demand, temperature_c, precipitation_mm, humidity_pct, is_holiday,
           lag(demand, 1) over w as demand_lag_24h,
           lag(demand, 7) over w as demand_lag_168h,
           (lag(cs, 1, 0::bigint) over w - lag(cs, 8, 0::bigint) over w)::float8
               / nullif(lag(cn, 1, 0::bigint) over w - lag(cn, 8, 0::bigint) over w, 0) as demand_same_hour_mean_7d,
           (lag(cs, 1, 0::bigint) over w - lag(cs, 29, 0::bigint) over w)::float8
               / nullif(lag(cn, 1, 0::bigint) over w - lag(cn, 29, 0::bigint) over w, 0) as demand_same_hour_mean_28d
    from same_hour_cum
    window w as (partition by station_id, hour_of_day order by ts)
),
daily_cum as (
    select station_id, day,
           sum(dsum) over w as cs,
           sum(dsq) over w as csq,
           sum(dn) over w as cn,
           sum(tsum) over w as cts,
           sum(tn) over w as ctn
    from (
        select station_id, date_trunc('day', ts, 'UTC') as day,
               coalesce(sum(demand), 0)::float8 as dsum,
               coalesce(sum(demand::float8 * demand), 0) as dsq,
               count(demand)::float8 as dn,
               coalesce(sum(temperature_c), 0) as tsum,
               count(temperature_c)::float8 as tn
        from hourly
        group by 1, 2
    ) d
    window w as (partition by station_id order by day rows unbounded preceding)
),
daily_windows as (
    select station_id, day,
           lag(cs, 1, 0::float8) over w - lag(cs, 2, 0::float8) over w as s1,
           lag(cn, 1, 0::float8) over w - lag(cn, 2, 0::float8) over w as n1,
           lag(cs, 1, 0::float8) over w - lag(cs, 8, 0::float8) over w as s7,
           lag(cn, 1, 0::float8) over w - lag(cn, 8, 0::float8) over w as n7,
           lag(cs, 1, 0::float8) over w - lag(cs, 29, 0::float8) over w as s28,
           lag(csq, 1, 0::float8) over w - lag(csq, 29, 0::float8) over w as sq28,
           lag(cn, 1, 0::float8) over w - lag(cn, 29, 0::float8) over w as n28,
           lag(cts, 1, 0::float8) over w - lag(cts, 8, 0::float8) over w as ts7,
           lag(ctn, 1, 0::float8) over w - lag(ctn, 8, 0::float8) over w as tn7
    from daily_cum
    window w as (partition by station_id order by day)
),
daily as (
    select station_id, day,
           s1 / nullif(n1, 0) as demand_mean_1d,
           s7 / nullif(n7, 0) as demand_mean_7d,
           s28 / nullif(n28, 0) as station_demand_mean_28d,
           case when n28 > 1
                then sqrt(greatest(sq28 - s28 * s28 / n28, 0) / (n28 - 1)) end as station_demand_std_28d,
           ts7 / nullif(tn7, 0) as temperature_mean_7d
    from daily_windows
)
select s.station_id,
       s.ts,
       s.hour_of_day,
       extract(isodow from s.ts at time zone 'UTC')::smallint as day_of_week,
       extract(isodow from s.ts at time zone 'UTC') >= 6 as is_weekend,
       s.is_holiday,
       s.temperature_c,
       s.precipitation_mm,
       s.humidity_pct,
       s.demand_lag_24h::float8 as demand_lag_24h,
       s.demand_lag_168h::float8 as demand_lag_168h,
       d.demand_mean_1d,
       d.demand_mean_7d,
       s.demand_same_hour_mean_7d,
       s.demand_same_hour_mean_28d,
       d.station_demand_mean_28d,
       d.station_demand_std_28d,
       s.temperature_c - d.temperature_mean_7d as temperature_anomaly_7d,
       s.demand
from same_hour s
join daily d on d.station_id = s.station_id and d.day = date_trunc('day', s.ts, 'UTC')
where s.ts >= %(start)s::timestamptz and s.demand is not null
