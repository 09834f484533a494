"""Every hand-off between tasks, on ``file://`` and on ``s3://`` through a real moto server.

The same project code runs on both: landing and archive files, training scratch, registry
artifacts, RAG staging, drift reports, alerts and OpenLineage events (the Celery profile's
transport). The S3 case runs against ``python -m moto.server`` on 127.0.0.1, started by
scripts/s3.py as in ``MLOPS_EXECUTOR=celery make run``, reached through ``ObjectStoragePath``, the
amazon provider (s3fs) and an AWS connection in ``AIRFLOW_CONN_MLOPS_S3``; afterwards nothing of
it is on the local disk.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from datetime import date, timedelta

import pytest

from scripts.s3 import CONN_ID, URIS, S3Server

pytestmark = pytest.mark.integration

STORAGE_ENV = (*URIS, "MLOPS_STORAGE_CONN_ID")


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    server = S3Server(state_dir=tmp_path_factory.mktemp("s3-state"))
    server.start(buckets_from=URIS)
    yield server
    server.stop()


def _forget_filesystems() -> None:
    """Drop Airflow's per-connection object stores and s3fs's instance cache."""
    import s3fs
    from airflow.sdk.io import store

    store._STORE_CACHE.clear()
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(params=["file", "s3"])
def storage(request, tmp_path, monkeypatch):
    """The storage settings of one profile; on s3, a fresh prefix in every bucket."""
    local = tmp_path / "local"
    if request.param == "file":
        env = {key: "file://" + str(local / key.lower()) for key in URIS}
    else:
        server = request.getfixturevalue("s3_server")
        _forget_filesystems()  # an earlier test's S3 server (another endpoint) may be cached in-process
        prefix = uuid.uuid4().hex[:12]
        env = {key: f"{uri}/{prefix}" for key, uri in URIS.items()}
        env.update({k: v for k, v in server.env().items() if k not in URIS})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if request.param == "file":
        monkeypatch.delenv("MLOPS_STORAGE_CONN_ID", raising=False)
    return {"scheme": request.param, "local": local, "env": env}


def _scheme(uri: str) -> str:
    return str(uri).split("://", 1)[0]


def _no_local_files(storage) -> None:
    if storage["scheme"] == "s3":
        assert not storage["local"].exists() or not any(storage["local"].rglob("*"))


def test_credentials_are_private_and_the_server_only_listens_on_localhost(s3_server):
    creds = s3_server.dir / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(creds.read_text())["secret_access_key"]
    conn = json.loads(s3_server.env()[f"AIRFLOW_CONN_{CONN_ID.upper()}"])
    assert conn["conn_type"] == "aws" and conn["extra"]["endpoint_url"] == s3_server.endpoint
    assert s3_server.endpoint.startswith("http://127.0.0.1:")
    # the buckets of every storage URI exist
    have = {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
    assert {"mlops-landing", "mlops-archive", "mlops-artifacts", "mlops-reports"} <= have


def test_landing_and_archive(storage):
    from include.settings import get_settings
    from include.source.simulator import SourceConfig, write_range
    from include.storage import archive, summary

    s = get_settings().storage
    start = date(2026, 3, 1)
    written = write_range(start, start + timedelta(days=3), s.path(s.landing_uri), SourceConfig(rows_per_day=48))
    assert len(written) == 3 and {_scheme(p) for p in written} == {storage["scheme"]}
    result = archive.archive_landing(start + timedelta(days=2))
    assert len(result["archived"]) == 2 and result["landing_remaining"] == 1
    assert result["manifest"].startswith(storage["scheme"] + "://")
    entry = archive.read_manifest()["demand_2026-03-01.parquet"]
    assert entry["sha256"] == archive.file_sha256(archive.archive_path(start))
    assert summary.summary_section()["archived_files"] == 2
    _no_local_files(storage)


def test_training_scratch_and_registry_artifacts(storage):
    import pandas as pd

    from include.training import registry, steps

    scratch = steps.create_scratch({"run_key": steps.run_key("manual__2026-03-01")})
    frame = pd.DataFrame({"ts": pd.date_range("2026-03-01", periods=5, freq="h", tz="UTC"), "y": range(5)})
    uri = steps._write_parquet(frame, scratch + "/data.parquet")
    pd.testing.assert_frame_equal(steps._read_parquet(uri), frame)

    model_uri, reference_uri = registry.artifact_uris("v-test")
    registry.save_object({"weights": [1.0, 2.0]}, model_uri)
    assert registry.load_object(model_uri) == {"weights": [1.0, 2.0]}
    assert _scheme(model_uri) == _scheme(reference_uri) == storage["scheme"]
    assert not registry._path(model_uri + ".tmp").exists()  # written under a temporary name, then moved

    assert steps.remove_scratch(scratch)["removed"] is True
    assert not registry._path(scratch).exists() and not registry._path(uri).exists()
    _no_local_files(storage)


def test_rag_staging(storage):
    import pyarrow as pa

    from include.rag import manifest

    staged = manifest.manifest_path("manual__2026-03-01T00:00:00+00:00", 0)
    table = manifest.with_metadata(pa.table({"doc": ["a", "b"], "n": [1, 2]}), [{"doc": "a"}], {"model": "m"})
    uri = manifest.write(staged, table)
    back = manifest.read(uri)
    assert back.table.equals(table) and back.documents == [{"doc": "a"}] and back.identity == {"model": "m"}
    assert _scheme(uri) == storage["scheme"]
    _no_local_files(storage)


def test_drift_report_and_alerts(storage):
    from airflow.sdk import ObjectStoragePath

    from include.monitoring.drift import Thresholds
    from include.monitoring.report import write_report
    from include.notify import read_alerts, send_alert

    path = write_report("scheduled__2026-03-02", None, [], None, None, Thresholds.from_settings(), note="all quiet")
    assert _scheme(path) == storage["scheme"]
    assert "all quiet" in ObjectStoragePath(path).read_text()

    send_alert("first", {"n": 1}, severity="warning")
    send_alert("second", {"n": 2})
    alerts = read_alerts()
    assert [a["subject"] for a in alerts] == ["first", "second"] and alerts[1]["details"] == {"n": 2}
    _no_local_files(storage)


def test_lineage_events_as_objects(storage, monkeypatch):
    """The OpenLineage file transport of the Celery profile: one object per event, read back by the
    run summary."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    from include.lineage.summary import summary_section

    reports = os.environ["MLOPS_REPORTS_URI"]
    transport = S3Server.lineage_transport(reports)
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    client = OpenLineageClient(config={"transport": dict(transport)})
    run = Run(runId=str(uuid.uuid4()))
    for state in (RunState.START, RunState.COMPLETE):
        client.emit(RunEvent(eventType=state, eventTime="2026-03-01T00:00:00Z", run=run, job=Job("mlops", "etl.load")))
    section = summary_section()
    assert section["events"] == 2 and section["by_type"] == {"COMPLETE": 1, "START": 1}
    assert section["file"].startswith(reports)
    _no_local_files(storage)


def test_lineage_events_from_a_forked_child(storage, monkeypatch):
    """The OpenLineage listener emits START in the task's process and COMPLETE / FAIL from a child
    it forks: the transport's filesystem must work in the child, after the parent used it."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    from include.lineage.summary import summary_section

    transport = S3Server.lineage_transport(os.environ["MLOPS_REPORTS_URI"])
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    run, job = Run(runId=str(uuid.uuid4())), Job("mlops", "etl.load")
    OpenLineageClient(config={"transport": dict(transport)}).emit(
        RunEvent(eventType=RunState.START, eventTime="2026-03-01T00:00:00Z", run=run, job=job)
    )
    pid = os.fork()
    if pid == 0:  # the child: what the listener does there; leave without pytest's exit handlers
        code = 1
        try:
            OpenLineageClient(config={"transport": dict(transport)}).emit(
                RunEvent(eventType=RunState.COMPLETE, eventTime="2026-03-01T00:00:01Z", run=run, job=job)
            )
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked child could not write its event"
    assert summary_section()["by_type"] == {"COMPLETE": 1, "START": 1}
    _no_local_files(storage)
