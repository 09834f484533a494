-- RAG index in pgvector, written by dags/rag_ingestion.py. Idempotent DDL: applied by
-- include.warehouse.db.ensure_schema().
--
-- Model changes: every vector row records the model that made it and its dimension, and the
-- embedding column has no fixed dimension, so one table holds any model. HNSW needs a fixed
-- dimension: the index is an expression index on a cast to vector(N), partial on dimension = N
-- (pgvector's documented pattern for mixed dimensions). The 384-dimension index of the default
-- local model is created here; include.rag.stores.pgvector.ensure_vector_index() creates the one
-- of another dimension (halfvec above 2000 dimensions, HNSW's limit for vector). Searches filter on
-- model_name and order by the same cast expression, so they use the index and never compare
-- vectors of two models. A model change re-embeds every document (rag.documents.signature).
create extension if not exists vector;
create schema if not exists rag;

-- One row per document in the index: what was indexed (sha256 of the bytes) and how (signature:
-- embedding model, dimension, chunking settings). Written in the same transaction as its chunks,
-- so a document is either fully indexed at this hash or not recorded at this hash at all.
create table if not exists rag.documents (
    doc_path     text        primary key,  -- path under the documents root, '/'-separated
    content_hash text        not null,
    signature    text        not null,
    title        text        not null,
    format       text        not null,     -- markdown | text | html
    size_bytes   bigint      not null,
    n_chunks     integer     not null,
    indexed_at   timestamptz not null default now()
);

create table if not exists rag.chunks (
    chunk_id    text        primary key,  -- '<doc_path>::<position>::<sha256(text)[:16]>'
    doc_path    text        not null references rag.documents (doc_path) on delete cascade,
    position    integer     not null,
    chunk_hash  text        not null,
    heading     text        not null,     -- breadcrumb: document title > section heading
    text        text        not null,     -- the embedded text (breadcrumb + body)
    metadata    jsonb       not null default '{}'::jsonb,
    model_name  text        not null,
    dimension   integer     not null,
    embedding   vector      not null,
    embedded_at timestamptz not null default now(),
    constraint chunks_dimension_ck check (vector_dims(embedding) = dimension),
    constraint chunks_position_uq unique (doc_path, position)
);
create index if not exists chunks_model_idx on rag.chunks (model_name, dimension);
create index if not exists chunks_embedding_384_hnsw on rag.chunks
    using hnsw ((embedding::vector(384)) vector_cosine_ops) where dimension = 384;

-- One row per DAG run (or bench/CLI run): the counts published on the rag_index Asset.
create table if not exists rag.ingest_runs (
    run_id            text        primary key,
    started_at        timestamptz not null,
    finished_at       timestamptz not null default now(),
    model_name        text        not null,
    dimension         integer     not null,
    documents_seen    integer     not null,
    documents_changed integer     not null,
    documents_deleted integer     not null,
    chunks_embedded   integer     not null,
    chunks_reused     integer     not null,
    chunks_deleted    integer     not null,
    chunks_total      integer     not null,
    weaviate_synced   integer
);

-- Weaviate mirror ledger: the (content_hash, signature) of each document last written to the
-- Weaviate collection. The sync task brings Weaviate up to rag.documents from the difference,
-- so a run where Weaviate was down is caught up by the next one.
create table if not exists rag.weaviate_sync (
    doc_path     text        primary key,
    content_hash text        not null,
    signature    text        not null,
    n_chunks     integer     not null,
    synced_at    timestamptz not null default now()
);

-- Keyword side of hybrid search (include.rag.stores.pgvector.keyword_search / hybrid_search):
-- full-text search on the chunk text, stemmed with the 'english' configuration. Identifiers are
-- split at '.', '/' and ':' first (the parser already splits at '_'): otherwise it reads
-- 'warehouse.demand_hourly' as the host name 'warehouse.demand' and 'runbooks/etl.md' as one
-- file token, and a query for either matches nothing. Generated, so every upsert keeps it in step.
alter table rag.chunks add column if not exists tsv tsvector
    generated always as (to_tsvector('english', regexp_replace(text, '[./:]+', ' ', 'g'))) stored;
create index if not exists chunks_tsv_gin on rag.chunks using gin (tsv);
