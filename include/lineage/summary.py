"""Run-summary section ``lineage``: what the OpenLineage file transport recorded (``make run``): one
appended local file, or one object per event in object storage (the Celery profile)."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime
from pathlib import Path

from include.settings import get_settings


def _transport() -> dict:
    raw = os.environ.get("AIRFLOW__OPENLINEAGE__TRANSPORT", "")
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}


def events_file() -> Path | None:
    """The local file the OpenLineage file transport writes to, from its configuration; None otherwise."""
    transport = _transport()
    path = transport.get("log_file_path") or ""
    if transport.get("type") != "file" or not path or ("://" in path and not path.startswith("file://")):
        return None
    return Path(path[len("file://") :] if path.startswith("file://") else path)


def storage_filesystem(folder: str = "lineage"):
    """The fsspec filesystem of ``MLOPS_REPORTS_URI`` (with its connection), ``<reports_uri>/<folder>``
    created: the OpenLineage file transport's ``filesystem`` in the Celery profile, which writes one
    object per event (``"append": false``) there instead of appending to a local file."""
    storage = get_settings().storage
    root = storage.path(storage.reports_uri) / folder
    fs = root.fs
    if getattr(fs, "_pid", None) not in (None, os.getpid()):
        # The OpenLineage listener emits COMPLETE / FAIL from a child it forks, and Airflow caches
        # one store per connection: an async filesystem (s3fs) made in the task's process refuses
        # to run in the child ("not fork-safe"). A fresh instance of the same store does.
        fs = type(fs)(**fs.storage_options, skip_instance_cache=True)
    fs.makedirs(root.path, exist_ok=True)
    return fs


def _event_lines() -> tuple[str | None, list[str]]:
    """(where the events are, their JSON texts): one appended file, or one object per event."""
    transport = _transport()
    path = transport.get("log_file_path")
    if transport.get("type") != "file" or not path:
        return None, []
    local = events_file()
    if local is not None and local.is_file():
        return str(local), local.read_text().splitlines()
    if transport.get("filesystem"):
        from openlineage.client.utils import import_from_string

        fs = import_from_string(transport["filesystem"])(**(transport.get("fs_kwargs") or {}))
    else:
        import fsspec

        fs = fsspec.url_to_fs(path)[0]
    texts = [fs.cat_file(name).decode() for name in sorted(fs.glob(f"{path}-*.json"))]
    return path, texts


def _names(datasets) -> set[str]:
    return {f"{d['namespace']}/{d['name']}" for d in datasets or [] if not d["name"].endswith(".tmp")}


def summary_section(since: datetime | None = None) -> dict:
    """Counts and datasets of the events in the file (those at or after ``since`` when given:
    ``make run`` passes its start). Temporary files (``*.tmp``, written then renamed) are left out."""
    where, texts = _event_lines()
    if where is None:
        return {"transport": "not the file transport (see AIRFLOW__OPENLINEAGE__TRANSPORT)"}
    types: Counter = Counter()
    jobs_with_io: set[str] = set()
    inputs: set[str] = set()
    outputs: set[str] = set()
    for line in texts:
        if not line.strip():
            continue
        event = json.loads(line)
        if since is not None and event.get("eventTime"):
            if datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")) < since:
                continue
        types[event.get("eventType", "?")] += 1
        ins = {f"{d['namespace']}/{d['name']}" for d in event.get("inputs") or [] if not d["name"].endswith(".tmp")}
        outs = {f"{d['namespace']}/{d['name']}" for d in event.get("outputs") or [] if not d["name"].endswith(".tmp")}
        if event.get("eventType") == "COMPLETE" and (ins or outs):
            jobs_with_io.add(event["job"]["name"])
        inputs |= ins
        outputs |= outs
    return {
        "file": where,
        "events": sum(types.values()),
        "by_type": dict(sorted(types.items())),
        "jobs_with_datasets": sorted(jobs_with_io),
        "datasets_read": sorted(inputs),
        "datasets_written": sorted(outputs),
    }
