-- Model registry and training runs (include/training). Idempotent DDL: applied by
-- include.warehouse.db.ensure_schema().
create schema if not exists ml;

-- One row per trained candidate. The version is derived from what was trained (feature-set
-- version, window, data checksum, model family, hyperparameters): re-running a training run
-- upserts the same rows instead of registering duplicates.
create table if not exists ml.model_registry (
    version             text        primary key,
    candidate_name      text        not null,
    model_family        text        not null,
    hyperparameters     jsonb       not null,
    metrics             jsonb       not null default '{}'::jsonb,
    metric_name         text        not null default 'valid_mae',
    metric_value        double precision,
    train_start         timestamptz not null,   -- training window [train_start, train_end),
    train_end           timestamptz not null,   -- validation days included (final refit)
    valid_start         timestamptz not null,   -- walk-forward validation [valid_start, train_end)
    feature_set_version text        not null,
    data_checksum       text        not null,
    rows_trained        bigint      not null,
    artifact_uri        text        not null,
    reference_uri       text        not null,
    status              text        not null default 'candidate'
                        check (status in ('candidate', 'champion', 'retired', 'rejected')),
    decision_reason     text,
    run_id              text,
    created_at          timestamptz not null default clock_timestamp(),
    updated_at          timestamptz not null default clock_timestamp(),
    promoted_at         timestamptz,
    retired_at          timestamptz
);
-- Exactly one champion at any time: promotion retires the old one and promotes the new one
-- in one transaction (include/training/registry.py).
create unique index if not exists model_registry_one_champion
    on ml.model_registry (status) where status = 'champion';
create index if not exists model_registry_run_idx on ml.model_registry (run_id);

-- One row per run of the training DAG: what the retraining policy decided and why, what
-- triggered it, and the outcome. Re-running a DAG run updates its row.
create table if not exists ml.training_runs (
    run_id              text        primary key,
    decided_at          timestamptz not null default clock_timestamp(),
    train               boolean     not null,
    reason              text        not null,
    triggering_assets   text[]      not null default '{}',
    feature_set_version text,
    train_start         timestamptz,
    train_end           timestamptz,
    valid_start         timestamptz,
    champion_before     text,
    selected_version    text,
    champion_after      text,
    outcome             text,       -- promoted | rejected | null (skipped or unfinished)
    outcome_reason      text,
    finished_at         timestamptz
);

-- The promotion review (include/training/review.py): approved | rejected, by whom (null when
-- automatic or on a timeout), the comment, whether no person decided, and when. Added in place so
-- that an existing warehouse gets them.
alter table ml.model_registry add column if not exists review_decision text;
alter table ml.model_registry add column if not exists reviewed_by text;
alter table ml.model_registry add column if not exists review_comment text;
alter table ml.model_registry add column if not exists review_automatic boolean;
alter table ml.model_registry add column if not exists reviewed_at timestamptz;
alter table ml.training_runs add column if not exists review_decision text;
alter table ml.training_runs add column if not exists reviewed_by text;
alter table ml.training_runs add column if not exists review_comment text;
alter table ml.training_runs add column if not exists review_automatic boolean;
alter table ml.training_runs add column if not exists reviewed_at timestamptz;
