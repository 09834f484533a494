"""Vector stores: ``pgvector`` (system of record, default) and ``weaviate`` (optional mirror)."""
