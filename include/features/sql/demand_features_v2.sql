-- Feature set v2 = v1 + four-week windows and per-station aggregates:
--   demand_same_hour_mean_28d  mean demand of the station at this hour over the previous 28 days
--   station_demand_mean_28d    mean hourly demand of the station over the previous 28 days
--   station_demand_std_28d     its sample standard deviation (from sums and sums of squares)
--   temperature_anomaly_7d     temperature of the hour minus the station's mean over the previous 7 days
-- Day-ahead like v1: every feature of day D uses only the days before D, plus D's calendar and weather.
-- Parameters: %(start)s, %(end)s = a range of whole UTC days [start, end). Lookback: 28 days.
-- Reads only the days that passed the quality gate (warehouse.ready_intervals): a failed or
-- unchecked day counts as missing, in the lookback as in the target range.
-- Windows are RANGE frames over time, so a missing day is a gap, never a shift. Sums and counts
-- over a frame are moving aggregates (PostgreSQL adds the row entering the frame and removes the
-- one leaving it: one pass per partition); the lags are the frame's first and last rows when they
-- are exactly 7 days resp. 1 day back. Offsets are in hours (independent of the session time zone).
-- Rows come out in the feature table's key order (ts, station_id): the primary key is appended to.
with ready as (
    -- intervals are whole UTC days, one partition of warehouse.demand_hourly each
    select (interval_start at time zone 'UTC')::date as day
    from warehouse.ready_intervals
    where interval_start < %(end)s::timestamptz and interval_end > %(start)s::timestamptz - interval '672 hours'
),
src as (
    select d.station_id, d.ts, d.demand, d.temperature_c, d.precipitation_mm, d.humidity_pct, d.is_holiday,
           extract(hour from d.ts at time zone 'UTC')::smallint as hour_of_day,
           r.day
    from warehouse.demand_hourly d
    join ready r on r.day = (d.ts at time zone 'UTC')::date
    where d.ts >= %(start)s::timestamptz - interval '672 hours' and d.ts < %(end)s::timestamptz
),
same_hour as (
    -- per station and hour of day: the same hour of the previous days
    select station_id, ts, day, hour_of_day, demand, temperature_c, precipitation_mm, humidity_pct, is_holiday,
           last_value(ts) over f7 as ts_last, last_value(demand) over f7 as demand_last,
           first_value(ts) over f7 as ts_first, first_value(demand) over f7 as demand_first,
           sum(demand) over f7 as s7, count(demand) over f7 as n7,
           sum(demand) over f28 as s28, count(demand) over f28 as n28
    from src
    window w as (partition by station_id, hour_of_day order by ts),
           f7 as (w range between interval '168 hours' preceding and interval '24 hours' preceding),
           f28 as (w range between interval '672 hours' preceding and interval '24 hours' preceding)
),
daily as (
    -- per station: the previous whole days
    select station_id, day,
           case when last_value(day) over f7 = day - 1 then last_value(dsum) over f7 end as s1,
           case when last_value(day) over f7 = day - 1 then last_value(dn) over f7 end as n1,
           sum(dsum) over f7 as s7, sum(dn) over f7 as n7,
           sum(tsum) over f7 as ts7, sum(tn) over f7 as tn7,
           sum(dsum) over f28 as s28, sum(dsq) over f28 as sq28, sum(dn) over f28 as n28
    from (
        select station_id, day,
               sum(demand) as dsum, sum(demand::int8 * demand) as dsq, count(demand) as dn,
               -- numeric: exact, so a frame's sum does not depend on the order rows are added in
               sum(temperature_c::numeric) as tsum, count(temperature_c) as tn
        from src
        group by station_id, day
    ) d
    window w as (partition by station_id order by day),
           f7 as (w range between interval '7 days' preceding and interval '1 day' preceding),
           f28 as (w range between interval '28 days' preceding and interval '1 day' preceding)
)
select s.station_id,
       s.ts,
       s.hour_of_day,
       extract(isodow from s.day)::smallint as day_of_week,
       extract(isodow from s.day) >= 6 as is_weekend,
       s.is_holiday,
       s.temperature_c,
       s.precipitation_mm,
       s.humidity_pct,
       case when s.ts_last = s.ts - interval '24 hours' then s.demand_last::float8 end as demand_lag_24h,
       case when s.ts_first = s.ts - interval '168 hours' then s.demand_first::float8 end as demand_lag_168h,
       d.s1::float8 / nullif(d.n1, 0) as demand_mean_1d,
       d.s7::float8 / nullif(d.n7, 0) as demand_mean_7d,
       s.s7::float8 / nullif(s.n7, 0) as demand_same_hour_mean_7d,
       s.s28::float8 / nullif(s.n28, 0) as demand_same_hour_mean_28d,
       d.s28::float8 / nullif(d.n28, 0) as station_demand_mean_28d,
       case when d.n28 > 1
            then sqrt(greatest(d.sq28::float8 - d.s28::float8 * d.s28::float8 / d.n28::float8, 0)
                      / (d.n28::float8 - 1)) end as station_demand_std_28d,
       s.temperature_c - d.ts7::float8 / nullif(d.tn7, 0) as temperature_anomaly_7d,
       s.demand
from same_hour s
join daily d on d.station_id = s.station_id and d.day = s.day
where s.ts >= %(start)s::timestamptz
order by s.ts, s.station_id
