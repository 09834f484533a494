"""The landing-zone contract: where a day's source file is, what it is called, how it arrives.

One home for it: the simulator (``include/source/simulator.py``), the ETL's sensor and loader
(``include/etl``), cold storage (``include/storage/archive.py``) and the seeders import these names.

* **Roots.** The source delivers into the landing zone (``MLOPS_LANDING_URI``); cold storage
  later moves old files, under the same flat names, to the archive zone (``MLOPS_ARCHIVE_URI``).
  Both are addressed through Airflow's ``ObjectStoragePath`` (``file://`` locally, ``s3://`` etc.
  by configuration with ``MLOPS_STORAGE_CONN_ID``), so every task on every worker sees the same
  files: no task relies on a local file another task wrote.
* **Names.** One Parquet file per UTC day, ``demand_YYYY-MM-DD.parquet`` (``file_name``,
  ``FILE_RE``, ``day_of``), at the root of the zone.
* **Arrival.** A file appears whole under its final name: :func:`deliver` writes
  ``.<name>.partial`` and renames it, so a sensor never sees half a file. Readers ignore names
  that do not match ``FILE_RE``.
* **Rows.** The columns and value rules of a row are ``include/source/rules.py`` (the loader's and
  the quality gate's single definition).
"""

from __future__ import annotations

import re
from datetime import date

from include.settings import get_settings

FILE_PREFIX = "demand_"
FILE_SUFFIX = ".parquet"
FILE_RE = re.compile(r"^demand_(\d{4}-\d{2}-\d{2})\.parquet$")
PARTIAL_PREFIX = "."
PARTIAL_SUFFIX = ".partial"


def file_name(day: date) -> str:
    """The name of ``day``'s file in the landing and archive zones."""
    return f"{FILE_PREFIX}{day.isoformat()}{FILE_SUFFIX}"


def day_of(name: str) -> date | None:
    """The day a landing/archive file name stands for, or None for any other name."""
    m = FILE_RE.match(name)
    return date.fromisoformat(m.group(1)) if m else None


def landing_root():
    """The landing zone as an ObjectStoragePath."""
    s = get_settings().storage
    return s.path(s.landing_uri)


def archive_root():
    """The archive zone as an ObjectStoragePath."""
    s = get_settings().storage
    return s.path(s.archive_uri)


def day_file_candidates(day: date) -> list:
    """The places a day's file may be, in the order they are searched."""
    name = file_name(day)
    return [landing_root() / name, archive_root() / name]


def find_day_file(day: date):
    """The day's file as an ObjectStoragePath, or None if neither zone has it."""
    for candidate in day_file_candidates(day):
        if candidate.exists():
            return candidate
    return None


def deliver(day: date, data: bytes, landing=None):
    """Put ``data`` into the landing zone as ``day``'s file, atomically (write a partial object,
    then rename it to the final name). Returns the final path."""
    root = landing if landing is not None else landing_root()
    target = root / file_name(day)
    partial = root / f"{PARTIAL_PREFIX}{file_name(day)}{PARTIAL_SUFFIX}"
    root.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(data)
    partial.rename(target)
    return target
