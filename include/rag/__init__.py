"""Retrieval-augmented generation over the project's own documentation.

- ``documents``: list the source (``ObjectStoragePath``), hash and parse Markdown/text/HTML.
- ``chunking``: heading-aware chunks with overlap and deterministic ids.
- ``embedders``: one interface; the offline local model (default) or OpenAI via its provider.
- ``stores``: pgvector (system of record) and the optional Weaviate mirror.
- ``pipeline``: the functions the ``rag_ingestion`` DAG's tasks call (and the bench).
- ``search`` / ``ask``: retrieval, and ``python -m include.rag.ask "question"``.

Nothing here imports torch, numpy-heavy or client libraries at module level: DAG files import
only ``include.settings``/``include.assets``, tasks import these modules inside their bodies.
"""
