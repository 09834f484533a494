"""Cold storage (include/storage/archive.py): verified, idempotent moves to the archive, with a manifest,
and the ETL's file lookup still finds archived days."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

import pytest

from include.notify import read_alerts
from include.source.simulator import SourceConfig, write_range
from include.storage import archive

DAY0 = date(2026, 3, 1)
CFG = SourceConfig(rows_per_day=240, malformed_share=0.0, seed=11)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def landed(tmp_storage):
    """Five landing days, 2026-03-01 .. 2026-03-05, and their SHA-256."""
    write_range(DAY0, DAY0 + timedelta(days=5), archive.landing_root(), CFG)
    files = sorted(tmp_storage["landing"].glob("demand_*.parquet"))
    assert len(files) == 5
    return {p.name: _sha(p) for p in files}


def test_old_days_move_verified_and_listed_in_the_manifest(landed, tmp_storage):
    result = archive.archive_landing(DAY0 + timedelta(days=3))

    moved = [f"demand_2026-03-0{d}.parquet" for d in (1, 2, 3)]
    assert result["archived"] == moved
    assert result["completed"] == [] and result["conflicts"] == []
    assert result["landing_remaining"] == 2
    assert sorted(p.name for p in tmp_storage["landing"].glob("*.parquet")) == [
        "demand_2026-03-04.parquet",
        "demand_2026-03-05.parquet",
    ]
    for name in moved:
        assert _sha(tmp_storage["archive"] / name) == landed[name]  # same bytes
    assert not list(tmp_storage["archive"].glob("*.partial"))
    assert result["bytes_archived"] == sum((tmp_storage["archive"] / n).stat().st_size for n in moved)

    lines = (tmp_storage["archive"] / archive.MANIFEST_NAME).read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["file"] for e in entries] == moved
    for e in entries:
        assert e["sha256"] == landed[e["file"]]
        assert e["size_bytes"] == (tmp_storage["archive"] / e["file"]).stat().st_size
        assert e["archived_at"] and e["day"] == archive.day_of(e["file"]).isoformat()
        assert e["archive"].startswith("file://") and e["archive"].endswith(e["file"])


def test_rerun_changes_nothing(landed, tmp_storage):
    archive.archive_landing(DAY0 + timedelta(days=3))
    manifest_before = (tmp_storage["archive"] / archive.MANIFEST_NAME).read_text()
    again = archive.archive_landing(DAY0 + timedelta(days=3))
    assert again["archived"] == [] and again["completed"] == [] and again["bytes_archived"] == 0
    assert (tmp_storage["archive"] / archive.MANIFEST_NAME).read_text() == manifest_before
    # a later cut-off moves only the new days, and the manifest keeps the earlier entries
    later = archive.archive_landing(DAY0 + timedelta(days=10))
    assert later["archived"] == ["demand_2026-03-04.parquet", "demand_2026-03-05.parquet"]
    assert len(archive.read_manifest()) == 5
    assert archive.read_manifest()["demand_2026-03-01.parquet"] == json.loads(manifest_before.splitlines()[0])


def test_interrupted_run_is_finished_by_the_next_run(landed, tmp_storage):
    name = "demand_2026-03-02.parquet"
    # crash 1: copied and renamed, manifest not written, landing file not deleted
    (tmp_storage["archive"] / name).write_bytes((tmp_storage["landing"] / name).read_bytes())
    # crash 2: half-copied partial file of another day
    partial = tmp_storage["archive"] / "demand_2026-03-01.parquet.partial"
    partial.write_bytes(b"PAR1 truncated")

    result = archive.archive_landing(DAY0 + timedelta(days=3))

    assert result["completed"] == [name]
    assert result["archived"] == ["demand_2026-03-01.parquet", "demand_2026-03-03.parquet"]
    assert not partial.exists()
    assert not (tmp_storage["landing"] / name).exists()
    assert set(archive.read_manifest()) == {f"demand_2026-03-0{d}.parquet" for d in (1, 2, 3)}
    for entry in archive.read_manifest().values():
        assert entry["sha256"] == landed[entry["file"]]


def test_conflicting_archived_copy_keeps_the_landing_file_and_alerts(landed, tmp_storage):
    name = "demand_2026-03-01.parquet"
    (tmp_storage["archive"] / name).write_bytes(b"an older delivery of that day")

    result = archive.archive_landing(DAY0 + timedelta(days=2))

    assert result["conflicts"] == [name]
    assert result["archived"] == ["demand_2026-03-02.parquet"]
    assert (tmp_storage["landing"] / name).exists()  # nothing lost
    assert (tmp_storage["archive"] / name).read_bytes() == b"an older delivery of that day"  # nothing overwritten
    assert name not in archive.read_manifest()
    alerts = read_alerts()
    assert alerts[-1]["severity"] == "warning" and alerts[-1]["details"]["files"] == [name]


def test_cut_off_must_be_a_date(landed):
    from datetime import datetime

    with pytest.raises(TypeError):
        archive.archive_landing(datetime(2026, 3, 3))


def test_no_landing_zone_yet_is_not_an_error(tmp_storage, monkeypatch):
    monkeypatch.setenv("MLOPS_LANDING_URI", "file://" + str(tmp_storage["landing"] / "does-not-exist"))
    result = archive.archive_landing(DAY0)
    assert result["archived"] == [] and result["landing_remaining"] == 0


def test_etl_lookup_finds_an_archived_day(landed, tmp_storage):
    """After archiving, the ETL's file lookup (include/source/landing.py) still finds the day."""
    landing = pytest.importorskip("include.source.landing", reason="ETL landing lookup not present")
    day = DAY0 + timedelta(days=1)
    before = landing.find_day_file(day)
    assert before is not None and str(before).startswith("file://" + str(tmp_storage["landing"]))

    archive.archive_landing(DAY0 + timedelta(days=3))

    found = landing.find_day_file(day)
    assert found is not None
    assert str(found) == str(archive.archive_path(day))
    assert hashlib.sha256(found.read_bytes()).hexdigest() == landed[archive.file_name(day)]
    assert landing.find_day_file(DAY0 + timedelta(days=4)) is not None  # still in landing
    assert landing.find_day_file(DAY0 + timedelta(days=30)) is None  # nowhere


def test_summary_section_reports_the_archive(landed, tmp_storage):
    from include.storage.summary import summary_section

    assert summary_section()["archived_files"] == 0
    archive.archive_landing(DAY0 + timedelta(days=3))
    section = summary_section()
    assert section["archived_files"] == 3 and section["landing_files"] == 2
    assert section["archived_days"] == ["2026-03-01", "2026-03-03"]
    assert section["archived_bytes"] == sum(p.stat().st_size for p in tmp_storage["archive"].glob("*.parquet"))
