-- Drift monitoring (include/monitoring, dags/drift_monitoring.py). Idempotent DDL: applied by
-- include.warehouse.db.ensure_schema().
create schema if not exists ml;

-- Batch predictions, one row per (station, hour, model version). Predictions of every model
-- version are kept side by side (the old and the new champion can be compared on the same
-- days). Rows of one time range and version are replaced in one transaction.
-- Primary key order (version, ts, station) serves both access paths: replace/read a time range
-- of one version.
create table if not exists ml.predictions (
    model_version text             not null,
    ts            timestamptz      not null,
    station_id    integer          not null,
    prediction    double precision not null,
    primary key (model_version, ts, station_id)
);

-- One row per scored (interval, model version), written in the same transaction as the rows.
-- features_built_at is features.feature_ledger.built_at as seen when scoring: when the features
-- of an interval are rebuilt later, the interval is scored again.
create table if not exists ml.scoring_ledger (
    interval_start      timestamptz not null,
    model_version       text        not null,
    interval_end        timestamptz not null,
    feature_set_version text        not null,
    rows_scored         bigint      not null,
    features_built_at   timestamptz not null,
    scored_at           timestamptz not null default clock_timestamp(),
    run_id              text,
    primary key (interval_start, model_version)
);

-- One row per evaluated window and run: the window ends with day window_day (inclusive) and
-- covers [window_start, window_end). new_window = false marks a re-evaluation of an already
-- evaluated window (the run had no new day): it never alerts or signals.
create table if not exists ml.drift_runs (
    run_id              text             not null,
    window_day          date             not null,
    window_start        timestamptz      not null,
    window_end          timestamptz      not null,
    model_version       text             not null,
    feature_set_version text             not null,
    new_window          boolean          not null,
    rows_evaluated      bigint           not null,
    rows_with_truth     bigint           not null,
    mae                 double precision,
    reference_mae       double precision,
    error_ratio         double precision,
    prediction_psi      double precision,
    prediction_ks       double precision,
    drift_detected      boolean          not null,
    drifted_features    text[]           not null default '{}',
    reasons             text[]           not null default '{}',
    thresholds          jsonb            not null default '{}'::jsonb,
    report_path         text,
    evaluated_at        timestamptz      not null default clock_timestamp(),
    primary key (run_id, window_day)
);
create index if not exists drift_runs_model_day_idx on ml.drift_runs (model_version, window_day);

-- The drift report: one row per feature (and one for the predictions, feature = '__prediction__')
-- per evaluated window and run. Replaced with the run's ml.drift_runs rows in one transaction.
create table if not exists ml.drift_report (
    run_id        text             not null,
    window_day    date             not null,
    feature       text             not null,
    model_version text             not null,
    monitored     boolean          not null,
    psi           double precision,
    ks_stat       double precision,
    ks_pvalue     double precision,
    ref_mean      double precision,
    cur_mean      double precision,
    ref_std       double precision,
    cur_std       double precision,
    ref_rows      bigint           not null,
    cur_rows      bigint           not null,
    drifted       boolean          not null,
    primary key (run_id, window_day, feature)
);
