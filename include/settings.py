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
    reports_dir: Path = field(
        default_factory=lambda: Path(_env("MLOPS_REPORTS_DIR", str(PROJECT_ROOT / "reports")))
    )

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
class Settings:
    warehouse: WarehouseSettings = field(default_factory=WarehouseSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    etl: EtlSettings = field(default_factory=EtlSettings)


def get_settings() -> Settings:
    """Fresh settings from the current environment (cheap; tests change the env freely)."""
    return Settings()
