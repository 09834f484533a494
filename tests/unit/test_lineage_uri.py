"""Dataset names for OpenLineage: where the data is, never a connection id or a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.lineage import uri_of


def test_object_storage_connection_ids_and_credentials_are_not_part_of_a_dataset_name():
    from airflow.sdk import ObjectStoragePath

    path = ObjectStoragePath("s3://mlops-landing/demand/demand_2026-11-22.parquet", conn_id="mlops_s3")
    assert "mlops_s3@" in str(path)  # what ObjectStoragePath prints
    assert uri_of(path) == "s3://mlops-landing/demand/demand_2026-11-22.parquet"
    with_credentials = "postgresql://" + ":".join(("user", "pw" * 4)) + "@db:5432/warehouse/t"  # built: no literal
    assert uri_of(with_credentials) == "postgresql://db:5432/warehouse/t"
    assert uri_of("postgres://127.0.0.1:5432/wh/warehouse/demand_hourly") == (
        "postgres://127.0.0.1:5432/wh/warehouse/demand_hourly"
    )


def test_local_paths_become_absolute_file_uris():
    assert uri_of(Path("/tmp/x.parquet")) == "file:///tmp/x.parquet"
    assert uri_of("/tmp/x.parquet") == "file:///tmp/x.parquet"
    with pytest.raises(ValueError):
        uri_of("relative/x.parquet")
