"""The RAG staging files: one contract for the manifest a ``plan`` writes and ``embed_batch`` reads.

A manifest is one Parquet file per batch under ``<artifacts>/rag/staging/<run_id>/`` (an
``ObjectStoragePath``: a local folder or a bucket, ``MLOPS_ARTIFACTS_URI``):

- columns ``COLUMNS``: one row per chunk of the batch's changed documents; ``embed`` is false for
  a chunk whose vector is already stored with the same model (reused, not re-embedded);
- schema metadata ``DOCUMENTS_KEY``: the batch's ``rag.documents`` rows (JSON list), and
  ``IDENTITY_KEY``: model name, dimension and index signature (JSON), so a task never embeds a
  batch planned for another model.

``embed_batch`` writes the *staged* file next to it (``staged_uri``): the same table plus a
fixed-size-list column ``embedding`` (null for reused chunks). Every read and write goes through
``read`` and ``write`` below.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from include.rag.chunking import Chunk
from include.rag.documents import ParsedDocument, SourceDocument
from include.rag.stores.pgvector import CHUNK_FIELDS
from include.settings import get_settings

DOCUMENTS_KEY = b"rag_documents"
IDENTITY_KEY = b"rag_identity"
COLUMNS = (*CHUNK_FIELDS, "embed")  # the columns rag.chunks takes from a chunk, then the reuse flag
MANIFEST_SUFFIX = ".manifest.parquet"
STAGED_SUFFIX = ".staged.parquet"


@dataclass(frozen=True)
class Manifest:
    table: Any  # pyarrow.Table
    documents: list[dict[str, Any]]
    identity: dict[str, Any]


def staging_dir(run_id: str):
    """``<artifacts>/rag/staging/<run_id>`` as an ``ObjectStoragePath``."""
    storage = get_settings().storage
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return storage.path(storage.artifacts_uri) / "rag" / "staging" / safe


def manifest_path(run_id: str, batch: int):
    return staging_dir(run_id) / f"batch_{batch:05d}{MANIFEST_SUFFIX}"


def staged_uri(manifest_uri: str) -> str:
    return manifest_uri.replace(MANIFEST_SUFFIX, STAGED_SUFFIX)


def document_row(doc: SourceDocument, parsed: ParsedDocument, n_chunks: int, signature: str) -> dict[str, Any]:
    """The ``rag.documents`` row of a changed document."""
    return {
        "doc_path": doc.path,
        "content_hash": doc.content_hash,
        "signature": signature,
        "title": parsed.title,
        "format": doc.format,
        "size_bytes": doc.size_bytes,
        "n_chunks": n_chunks,
    }


def build(group: list[tuple[SourceDocument, ParsedDocument, list[Chunk]]], identity: dict, reusable: set[str]):
    """The manifest table of one batch: its documents' chunks, column by column."""
    import pyarrow as pa

    chunks = [(d, p, c) for d, p, cs in group for c in cs]
    meta = [
        json.dumps({"title": p.title, "format": d.format, "source_uri": d.uri, "words": c.n_words})
        for d, p, c in chunks
    ]
    table = pa.table(
        {
            "chunk_id": [c.chunk_id for _, _, c in chunks],
            "doc_path": [c.doc_path for _, _, c in chunks],
            "position": pa.array([c.position for _, _, c in chunks], pa.int32()),
            "chunk_hash": [c.chunk_hash for _, _, c in chunks],
            "heading": [c.heading for _, _, c in chunks],
            "text": [c.text for _, _, c in chunks],
            "metadata": pa.array(meta, pa.string()),
            "embed": pa.array([c.chunk_id not in reusable for _, _, c in chunks], pa.bool_()),
        }
    )
    documents = [document_row(d, p, len(cs), identity["signature"]) for d, p, cs in group]
    return with_metadata(table, documents, identity)


def with_metadata(table, documents: list[dict[str, Any]], identity: dict[str, Any]):
    return table.replace_schema_metadata({DOCUMENTS_KEY: json.dumps(documents), IDENTITY_KEY: json.dumps(identity)})


def write(uri_or_path, table) -> str:
    """Write ``table`` (zstd Parquet) at a URI or ``ObjectStoragePath``; returns its URI."""
    import pyarrow.parquet as pq

    path = get_settings().storage.path(str(uri_or_path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pq.write_table(table, f, compression="zstd")
    return str(path)


def read(uri: str) -> Manifest:
    """A manifest or staged file with its documents and identity."""
    import pyarrow.parquet as pq

    with get_settings().storage.path(uri).open("rb") as f:
        table = pq.read_table(f)
    meta = table.schema.metadata or {}
    if DOCUMENTS_KEY not in meta or IDENTITY_KEY not in meta:
        raise ValueError(f"{uri}: not a RAG manifest (schema metadata {sorted(meta)})")
    return Manifest(table, json.loads(meta[DOCUMENTS_KEY]), json.loads(meta[IDENTITY_KEY]))
