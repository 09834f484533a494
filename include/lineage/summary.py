"""Run-summary section ``lineage``: what the OpenLineage file transport recorded (``make run``)."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime
from pathlib import Path


def events_file() -> Path | None:
    """The file the OpenLineage file transport appends to, from its configuration; None otherwise."""
    raw = os.environ.get("AIRFLOW__OPENLINEAGE__TRANSPORT", "")
    try:
        transport = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return None
    if transport.get("type") != "file" or not transport.get("log_file_path"):
        return None
    path = transport["log_file_path"]
    return Path(path[len("file://") :] if path.startswith("file://") else path)


def _names(datasets) -> set[str]:
    return {f"{d['namespace']}/{d['name']}" for d in datasets or [] if not d["name"].endswith(".tmp")}


def summary_section(since: datetime | None = None) -> dict:
    """Counts and datasets of the events in the file (those at or after ``since`` when given:
    ``make run`` passes its start). Temporary files (``*.tmp``, written then renamed) are left out."""
    path = events_file()
    if path is None:
        return {"transport": "not the file transport (see AIRFLOW__OPENLINEAGE__TRANSPORT)"}
    if not path.exists():
        return {"file": str(path), "events": 0}
    types: Counter = Counter()
    jobs_with_io: set[str] = set()
    inputs: set[str] = set()
    outputs: set[str] = set()
    with path.open() as fh:
        for line in fh:
            if not line.strip():
                continue
            event = json.loads(line)
            if since is not None and event.get("eventTime"):
                if datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")) < since:
                    continue
            types[event.get("eventType", "?")] += 1
            ins = {f"{d['namespace']}/{d['name']}" for d in event.get("inputs") or [] if not d["name"].endswith(".tmp")}
            outs = {
                f"{d['namespace']}/{d['name']}" for d in event.get("outputs") or [] if not d["name"].endswith(".tmp")
            }
            if event.get("eventType") == "COMPLETE" and (ins or outs):
                jobs_with_io.add(event["job"]["name"])
            inputs |= ins
            outputs |= outs
    return {
        "file": str(path),
        "events": sum(types.values()),
        "by_type": dict(sorted(types.items())),
        "jobs_with_datasets": sorted(jobs_with_io),
        "datasets_read": sorted(inputs),
        "datasets_written": sorted(outputs),
    }
