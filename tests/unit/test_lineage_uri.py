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


def test_collected_object_storage_reads_and_writes_are_named_by_their_bucket():
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.lineage import HookLineageCollector

    from include.lineage import name_by_location

    landing = ObjectStoragePath("s3://mlops-landing/demand/demand_2026-11-22.parquet", conn_id="mlops_s3")
    model = ObjectStoragePath("s3://mlops-models/v3/model.joblib", conn_id="mlops_s3")
    collector = HookLineageCollector()
    # what ObjectStoragePath's file wrapper reports on read() and write(): str(path), userinfo and all
    for _ in range(3):
        collector.add_input_asset(context=landing, uri=str(landing))
    collector.add_output_asset(context=model, uri=str(model))
    collector.add_input_asset(context=landing, uri="postgres://127.0.0.1:5432/wh/warehouse/demand_hourly")

    name_by_location(collector)

    inputs = {info.asset.uri: info.count for info in collector.collected_assets.inputs}
    outputs = {info.asset.uri: info.count for info in collector.collected_assets.outputs}
    assert inputs == {
        "s3://mlops-landing/demand/demand_2026-11-22.parquet": 3,
        "postgres://127.0.0.1:5432/wh/warehouse/demand_hourly": 1,
    }
    assert outputs == {"s3://mlops-models/v3/model.joblib": 1}

    from airflow.providers.openlineage.utils.utils import translate_airflow_asset

    (read,) = [i.asset for i in collector.collected_assets.inputs if i.asset.uri.startswith("s3://")]
    dataset = translate_airflow_asset(read, lineage_context=None)
    assert (dataset.namespace, dataset.name) == ("s3://mlops-landing", "demand/demand_2026-11-22.parquet")
