"""Retrieval-augmented generation over the project's own documentation.

- ``documents``: list the source (``ObjectStoragePath``), hash and parse Markdown/text/HTML.
- ``chunking``: heading-aware chunks with overlap and deterministic ids.
- ``embedders``: one interface; the offline local model (default) or OpenAI via its provider.
- ``stores``: pgvector (system of record: vectors, full text, ledgers) and the optional Weaviate mirror.
- ``manifest``: the staging files' contract (Parquet schema, metadata keys, I/O by URI).
- ``pipeline``: the functions the ``rag_ingestion`` DAG's tasks call (and the bench);
  ``weaviate_sync``: its two Weaviate tasks.
- ``search`` / ``ask``: hybrid, vector or keyword retrieval, and ``python -m include.rag.ask "question"``;
  ``evaluation``: hit@1 / hit@3 / MRR per question style on ``questions.json``.

Project modules are imported at the top; torch, numpy, pyarrow and the client libraries only
inside the functions that use them. DAG files import only ``include.settings``/``include.assets``
at parse time; tasks import these modules inside their bodies.
"""
