"""OpenLineage for TaskFlow tasks: name what a task really read and wrote.

How lineage is produced in this project
---------------------------------------
* The OpenLineage provider (apache-airflow-providers-openlineage) listens to every task and
  emits START / COMPLETE / FAIL run events to its transport. By default (scripts/env.sh,
  docker-compose.override.yml) that is a *file* transport writing JSON lines to
  ``reports/lineage/events.jsonl`` so a newcomer can read lineage offline; an HTTP transport
  (e.g. Marquez) is one environment variable away (see ``.env.example``).
* ``@task`` functions have no OpenLineage extractor. For them the provider uses Airflow's
  *hook lineage collector* - filled by hooks and by ``ObjectStoragePath`` reads, writes and
  copies - and, only when that collector is empty, the task's static ``inlets`` / ``outlets``.
* A task whose inputs and outputs are known only at run time (the interval's landing file, a
  versioned model artifact, a table written through a raw psycopg connection that no hook
  sees) calls :func:`report_lineage` so the run event names them. The task's declared
  ``inlets`` / ``outlets`` Assets are added as well, so the event is the union of both.

Dataset names follow the OpenLineage naming spec (translated by the providers' converters):

* PostgreSQL ``postgres://host:port/database/schema/table`` -> namespace ``postgres://host:port``,
  name ``database.schema.table``; build it with :func:`table`.
* files ``file:///abs/path`` -> namespace ``file``, name ``/abs/path``; ``s3://bucket/key`` ->
  namespace ``s3://bucket``, name ``key`` (needs the Amazon provider for the s3 converter).

This module is cheap to import (no Airflow import at module level): DAG files may import it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from include.settings import get_settings

log = logging.getLogger(__name__)

__all__ = [
    "lineage_enabled",
    "merge_declared_assets",
    "name_by_location",
    "report_lineage",
    "reset_collector",
    "table",
    "uri_of",
]


class _ReportedByTask:
    """Marker passed as the collector's *context* for what :func:`report_lineage` adds."""

    def __repr__(self) -> str:  # pragma: no cover - shows up in debug logs only
        return "include.lineage.report_lineage"


_CONTEXT = _ReportedByTask()


def table(schema: str, name: str) -> str:
    """The warehouse table ``schema.name`` as a postgres Asset URI (OpenLineage dataset)."""
    return get_settings().warehouse.asset_uri(schema, name)


def uri_of(obj: Any) -> str:
    """A URI string for an Asset, an ObjectStoragePath, a local path or a URI string.

    ``file`` paths become absolute ``file:///...`` URIs; anything else must already carry a
    scheme (``postgres://``, ``s3://``, ``file://``...).
    """
    uri = getattr(obj, "uri", None)  # Asset / AssetRef-like objects
    if isinstance(uri, str) and uri:
        return uri
    if isinstance(obj, PurePath):
        return "file://" + os.path.abspath(obj)
    text = str(obj)
    if "://" not in text:
        if text.startswith("/"):
            return "file://" + os.path.abspath(text)
        raise ValueError(f"lineage needs a URI with a scheme or an absolute path, got {text!r}")
    if text.startswith("file://") and not text.startswith("file:///"):
        raise ValueError(f"file URIs must be absolute (file:///...), got {text!r}")
    # ObjectStoragePath spells its connection as userinfo (s3://<conn_id>@bucket/key): a dataset is
    # named by where the data is, never by a connection id or credentials
    scheme, rest = text.split("://", 1)
    netloc, sep, path = rest.partition("/")
    if "@" in netloc:
        text = f"{scheme}://{netloc.rsplit('@', 1)[1]}{sep}{path}"
    return text


def _collector():
    from airflow.sdk.lineage import get_hook_lineage_collector

    return get_hook_lineage_collector()


def lineage_enabled() -> bool:
    """True when an OpenLineage transport is configured and hook lineage is being collected."""
    try:
        from airflow.sdk.lineage import NoOpCollector

        return not isinstance(_collector(), NoOpCollector)
    except Exception:  # pragma: no cover - lineage must never break a task
        return False


def _declared_assets(task: Any) -> tuple[list[str], list[str]]:
    def uris(items: Iterable[Any]) -> list[str]:
        out = []
        for item in items or ():
            uri = getattr(item, "uri", None)
            if isinstance(uri, str) and "://" in uri:
                out.append(uri)
        return out

    return uris(getattr(task, "inlets", ())), uris(getattr(task, "outlets", ()))


def _add(collector: Any, ins: list[str], outs: list[str]) -> None:
    """Add URIs to the collector, skipping those already collected (e.g. by ObjectStoragePath)."""
    collected = collector.collected_assets
    have_in = {info.asset.uri for info in collected.inputs}
    have_out = {info.asset.uri for info in collected.outputs}
    for uri in ins:
        if uri not in have_in:
            collector.add_input_asset(context=_CONTEXT, uri=uri)
    for uri in outs:
        if uri not in have_out:
            collector.add_output_asset(context=_CONTEXT, uri=uri)


def _current_task() -> Any:
    try:
        from airflow.sdk import get_current_context

        return get_current_context().get("task")
    except Exception:  # outside a running task (unit tests of include/ code)
        return None


def _uris(items: Iterable[Any]) -> list[str]:
    out = []
    for item in items or ():
        if item is None:
            continue
        try:
            uri = uri_of(item)
        except ValueError:
            log.warning("lineage: skipped %r (not a URI or absolute path)", item)
            continue
        if uri not in out:
            out.append(uri)
    return out


def report_lineage(
    inputs: Iterable[Any] = (),
    outputs: Iterable[Any] = (),
    *,
    include_declared: bool = True,
) -> dict[str, list[str]]:
    """Report the datasets the running task read (``inputs``) and wrote (``outputs``).

    Items may be URI strings, ``ObjectStoragePath``, ``pathlib.Path`` or Assets. Call it inside
    a ``@task`` function, once the reads/writes happened (or are about to). With
    ``include_declared`` the task's own ``inlets``/``outlets`` Assets are added too, because the
    OpenLineage provider ignores them once anything else was collected.

    Returns the URIs reported. A no-op (apart from the return value) when OpenLineage is
    disabled; it never raises because of lineage (``None`` items and relative paths are skipped
    with a warning).
    """
    ins, outs = _uris(inputs), _uris(outputs)
    if include_declared:
        declared_in, declared_out = _declared_assets(_current_task())
        ins += [u for u in declared_in if u not in ins]
        outs += [u for u in declared_out if u not in outs]
    try:
        _add(_collector(), ins, outs)
    except Exception:  # pragma: no cover - lineage must never fail the task
        log.warning("could not report lineage inputs=%s outputs=%s", ins, outs, exc_info=True)
    log.info("lineage: inputs=%s outputs=%s", ins, outs)
    return {"inputs": ins, "outputs": outs}


def reset_collector() -> None:
    """Forget everything collected so far in this process.

    Airflow keeps one hook lineage collector per process. A scheduled task runs in a process
    of its own, but ``dag.test()`` runs every task in one process, where the collector would
    carry one task's datasets into the next task's events. The project's listener
    (``include/lineage/listener.py``) calls this when a task starts.
    """
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector

        get_hook_lineage_collector.cache_clear()
    except Exception:  # pragma: no cover
        log.debug("could not reset the hook lineage collector", exc_info=True)


def name_by_location(collector: Any) -> None:
    """Rename the assets collected under a connection id to where the data is.

    ``ObjectStoragePath`` reports its own reads and writes as ``str(path)``, which spells the
    connection as userinfo (``s3://mlops_s3@mlops-landing/key``): the OpenLineage event would name
    the dataset ``s3://mlops_s3@mlops-landing``, another namespace than the bucket's. Airflow's
    collector has no public way to rename an entry, so this rewrites its two entry tables, keeping
    the counts and contexts (a unit test pins the collector's shape).
    """
    from airflow.sdk import Asset

    for entries, counts in (
        (collector._inputs, collector._input_counts),
        (collector._outputs, collector._output_counts),
    ):
        for key, (asset, context) in list(entries.items()):
            uri = uri_of(asset.uri)
            if uri == asset.uri:
                continue
            located = Asset(uri=uri, extra=asset.extra)
            new_key = collector._generate_asset_entry_id(located, context)
            del entries[key]
            entries.setdefault(new_key, (located, context))
            counts[new_key] += counts.pop(key, 1)


def merge_declared_assets(task: Any) -> None:
    """Name what hooks collected by its location and add the task's declared inlets/outlets to it
    (the provider drops them otherwise)."""
    try:
        from airflow.sdk.lineage import get_hook_lineage_collector

        if get_hook_lineage_collector.cache_info().currsize == 0:
            return  # nothing collected in this process: the provider uses inlets/outlets itself
        collector = get_hook_lineage_collector()
        if not getattr(collector, "has_collected", False):
            return
        name_by_location(collector)
        _add(collector, *_declared_assets(task))
    except Exception:  # pragma: no cover
        log.debug("could not merge declared inlets/outlets into hook lineage", exc_info=True)
