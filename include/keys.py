"""Stable keys: the sha256 of a file's bytes and the file-name-safe key of a run id."""

from __future__ import annotations

import hashlib
import re

_BLOCK = 8 << 20  # bytes read per block: constant memory whatever the file's size


def file_sha256(path) -> str:
    """sha256 (hex) of the bytes of ``path`` (a pathlib.Path or an ObjectStoragePath), streamed in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def run_key(run_id: str) -> str:
    """A file-name-safe, unique form of a run id: its safe characters (at most 60) and a hash of
    the whole id (two ids that differ only in unsafe or cut characters keep distinct keys)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:60]
    return f"{safe}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"
