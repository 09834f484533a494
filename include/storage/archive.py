"""Cold storage: move old landing files to the archive location, verified, idempotent, with a manifest.

Landing files are one Parquet file per day, ``demand_YYYY-MM-DD.parquet``, under
``MLOPS_LANDING_URI``. Once training no longer needs them in the landing zone,
:func:`archive_landing` moves every file of a day before a cut-off to ``MLOPS_ARCHIVE_URI``
(a local folder by default, ``s3://...`` with ``MLOPS_STORAGE_CONN_ID`` in a deployment),
through Airflow's ``ObjectStoragePath``. The archive keeps the landing layout (same file name
at the archive root), so the ETL finds an archived day at ``archive_path(day)``: backfills
keep working after files were archived.

Each file moves in steps that can be interrupted anywhere and re-run:

1. copy to ``<name>.partial`` in the archive, then rename it to ``<name>`` (a reader never
   sees a half-copied file under the final name);
2. verify the archived copy: same size and same SHA-256 as the landing file;
3. record it in the manifest ``_manifest.jsonl`` at the archive root (one JSON object per
   line: file, day, size_bytes, sha256, source, archive, archived_at), rewritten whole through
   a temporary object so it is never half-written;
4. only then delete the landing file.

A re-run finds an archived copy with the same checksum and only finishes the steps left; an
archived copy with a *different* checksum (the source re-delivered a corrected day) is never
overwritten: the landing file stays, the conflict is reported and alerted.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime, timezone
from typing import Any

from include.keys import file_sha256
from include.notify import send_alert
from include.source.landing import archive_root, day_of, file_name, landing_root  # the landing contract

log = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.jsonl"


def archive_path(day: date):
    """Where the archived file of ``day`` lives (whether or not it exists)."""
    return archive_root() / file_name(day)


def read_manifest() -> dict[str, dict[str, Any]]:
    """The archive manifest as {file name: entry}; empty when nothing was archived yet."""
    path = archive_root() / MANIFEST_NAME
    if not path.exists():
        return {}
    entries: dict[str, dict[str, Any]] = {}
    with path.open("r") as fh:
        for line in fh.read().splitlines():
            if line.strip():
                entry = json.loads(line)
                entries[entry["file"]] = entry
    return entries


def _write_manifest(entries: dict[str, dict[str, Any]]) -> None:
    root = archive_root()
    tmp = root / f"{MANIFEST_NAME}.tmp-{os.getpid()}"
    body = "".join(json.dumps(entries[k], sort_keys=True) + "\n" for k in sorted(entries))
    with tmp.open("w") as fh:
        fh.write(body)
    tmp.replace(root / MANIFEST_NAME)


def _landing_files(before: date) -> list[tuple[date, Any]]:
    root = landing_root()
    if not root.exists():
        return []
    found = []
    for path in root.iterdir():
        day = day_of(path.name)
        if day is not None and day < before:
            found.append((day, path))
    return sorted(found, key=lambda item: item[0])


def archive_landing(before: date) -> dict[str, Any]:
    """Move every landing file of a day strictly before ``before`` to the archive.

    Returns a summary: ``archived`` (moved now), ``completed`` (found already archived by an
    interrupted run; the landing copy was removed now), ``conflicts`` (an archived file with
    other content exists: nothing done), ``bytes_archived``, ``landing_remaining`` and
    ``manifest`` (its URI). Safe to call repeatedly and concurrently with ETL reads (the ETL
    looks in the archive when a day's file has left the landing zone).
    """
    if not isinstance(before, date) or isinstance(before, datetime):
        raise TypeError(f"before must be a datetime.date, got {before!r}")
    archive = archive_root()
    archive.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest()
    result: dict[str, Any] = {
        "before": before.isoformat(),
        "archived": [],
        "completed": [],
        "conflicts": [],
        "bytes_archived": 0,
    }
    for day, src in _landing_files(before):
        name = src.name
        size = src.size()
        digest = file_sha256(src)
        dst = archive / name
        if dst.exists():
            if dst.size() != size or file_sha256(dst) != digest:
                log.error("archive conflict for %s: an archived copy with other content exists", name)
                result["conflicts"].append(name)
                continue
            outcome = "completed"
        else:
            partial = archive / f"{name}.partial"
            if partial.exists():
                partial.unlink()
            src.copy(partial)
            partial.replace(dst)
            if dst.size() != size or file_sha256(dst) != digest:
                dst.unlink()
                raise RuntimeError(f"archived copy of {name} does not match the landing file; landing file kept")
            outcome = "archived"
        if name not in manifest or manifest[name].get("sha256") != digest:
            manifest[name] = {
                "file": name,
                "day": day.isoformat(),
                "size_bytes": size,
                "sha256": digest,
                "source": str(src),
                "archive": str(dst),
                "archived_at": datetime.now(timezone.utc).isoformat(),
            }
            _write_manifest(manifest)
        src.unlink()
        result[outcome].append(name)
        result["bytes_archived"] += size
        log.info("%s %s -> %s (%d bytes, sha256 %s)", outcome, src, dst, size, digest[:12])
    landing = landing_root()
    result["landing_remaining"] = sum(1 for p in landing.iterdir() if day_of(p.name)) if landing.exists() else 0
    result["manifest"] = str(archive / MANIFEST_NAME)
    if result["conflicts"]:
        send_alert(
            "cold storage: archived copies differ from landing files; landing files kept",
            {"files": result["conflicts"], "archive": str(archive)},
            severity="warning",
        )
    return result
