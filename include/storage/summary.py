"""Run-summary section ``cold_storage``: what the archive holds (manifest) and what is still landing."""

from __future__ import annotations

from include.storage import archive


def summary_section() -> dict:
    manifest = archive.read_manifest()
    landing = archive.landing_root()
    landing_days = (
        sorted(d.isoformat() for d in (archive.day_of(p.name) for p in landing.iterdir()) if d is not None)
        if landing.exists()
        else []
    )
    days = sorted(entry["day"] for entry in manifest.values())
    return {
        "archived_files": len(manifest),
        "archived_bytes": sum(int(entry["size_bytes"]) for entry in manifest.values()),
        "archived_days": [days[0], days[-1]] if days else [],
        "landing_files": len(landing_days),
        "manifest": str(archive.archive_root() / archive.MANIFEST_NAME),
    }
