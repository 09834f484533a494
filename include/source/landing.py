"""Where a day's source file is: the landing zone first, then the archive zone.

The source delivers ``demand_YYYY-MM-DD.parquet`` into the landing zone; cold storage later moves
old files, under the same flat names, to the archive zone (``MLOPS_ARCHIVE_URI``). Looking in both
means a backfill of an old day still finds its file. Both are addressed through Airflow's
``ObjectStoragePath`` (``file://`` locally, ``s3://`` etc. by configuration).
"""

from __future__ import annotations

from datetime import date

from include.settings import get_settings
from include.source.simulator import file_name


def day_file_candidates(day: date) -> list:
    """The places a day's file may be, in the order they are searched."""
    storage = get_settings().storage
    name = file_name(day)
    return [storage.path(storage.landing_uri) / name, storage.path(storage.archive_uri) / name]


def find_day_file(day: date):
    """The day's file as an ObjectStoragePath, or None if neither zone has it."""
    for candidate in day_file_candidates(day):
        if candidate.exists():
            return candidate
    return None
