"""A small in-process stand-in of a Weaviate server, for the RAG tests (no Weaviate runs here).

It speaks the real protocols the weaviate-client v4 uses, so the client code under test runs
unchanged: REST (``/v1/meta``, ``/v1/.well-known/*``, ``/v1/schema``) over HTTP, and gRPC with
the client's own generated stubs (``weaviate.proto.v1``): health check, ``BatchObjects``,
``BatchDelete`` and ``Search`` (near_vector, bm25, hybrid and fetch, with filters). Objects live
in a dict keyed by UUID, so an insert of an existing UUID replaces it, as Weaviate's batch import
does.

Keyword and hybrid search follow Weaviate's documented rules: ``word`` tokenization (lower case,
split on every non-alphanumeric character), the ``en`` stopword preset, BM25 with k1 = 1.2 and
b = 0.75 over the query properties (their tokens taken together, not per-property BM25F), the
OR or AND operator, and the two fusions of ``hybrid``: ``ranked`` (sum of weight / (60 + rank),
rank from 0; weight alpha for the vector side, 1 - alpha for BM25) and ``relativeScore`` (each
side's scores min-max normalised, weighted the same way).

What it checks like a server would: the collection exists, properties are declared in the
schema (auto-schema off), every vector of a collection has the same dimension, UUIDs are
valid. What it does not model: HNSW (search is exact cosine), tokenizations other than ``word``
(filters compare exact values), BM25F, replication, multi-tenancy, auth. Failures can be
injected: ``reject`` (chunk ids whose objects get a per-object batch error), ``fail_all_batches``.
"""

from __future__ import annotations

import json
import math
import re
import struct
import threading
import uuid as uuid_mod
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
from weaviate.proto.v1 import (
    base_pb2,
    base_search_pb2,
    batch_delete_pb2,
    batch_pb2,
    health_weaviate_pb2,
    properties_pb2,
    search_get_pb2,
    weaviate_pb2_grpc,
)

VERSION = "1.32.5"
# Weaviate's ``en`` stopword preset (adapters/repos/db/inverted/stopwords/presets.go)
STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with".split()
)
BM25_K1, BM25_B = 1.2, 0.75


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.classes: dict[str, dict] = {}
        self.objects: dict[str, dict[str, dict]] = {}  # collection -> uuid -> {props, vector}
        self.dims: dict[str, int] = {}
        self.reject: set[str] = set()  # chunk_id values to reject in batches
        self.fail_all_batches = False
        self.calls: list[str] = []
        self.searches: list[str] = []  # kind of each Search request: near_vector, bm25_search, hybrid_search, fetch


def _decode_vector(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


def _value_of(struct_value):
    kind = struct_value.WhichOneof("kind")
    if kind == "string_value":
        return struct_value.string_value
    if kind == "number_value":
        return struct_value.number_value
    if kind == "bool_value":
        return struct_value.bool_value
    if kind == "null_value":
        return None
    raise ValueError(f"unsupported property value kind {kind}")


def _match(flt, uid: str, props: dict) -> bool:
    op = flt.operator
    F = base_pb2.Filters
    if op == F.OPERATOR_AND:
        return all(_match(f, uid, props) for f in flt.filters)
    if op == F.OPERATOR_OR:
        return any(_match(f, uid, props) for f in flt.filters)
    name = flt.target.property if flt.HasField("target") else (flt.on[0] if flt.on else "")
    value = uid if name == "_id" else props.get(name)
    if flt.HasField("value_text_array"):
        wanted = list(flt.value_text_array.values)
    elif flt.HasField("value_text"):
        wanted = flt.value_text
    elif flt.HasField("value_int"):
        wanted = flt.value_int
    else:
        raise ValueError(f"unsupported filter value in {flt}")
    if op == F.OPERATOR_EQUAL:
        return value == wanted
    if op == F.OPERATOR_NOT_EQUAL:
        return value != wanted
    if op == F.OPERATOR_CONTAINS_ANY:
        return value in wanted
    if op == F.OPERATOR_CONTAINS_NONE:
        return value not in wanted
    raise ValueError(f"unsupported filter operator {op}")


def _to_value(v):
    if isinstance(v, bool):
        return properties_pb2.Value(bool_value=v)
    if isinstance(v, int):
        return properties_pb2.Value(int_value=v)
    if isinstance(v, float):
        return properties_pb2.Value(number_value=v)
    return properties_pb2.Value(text_value=str(v))


class _Servicer(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, store: _Store) -> None:
        self.s = store

    def BatchObjects(self, request, context):
        s = self.s
        s.calls.append("BatchObjects")
        errors = []
        with s.lock:
            for i, obj in enumerate(request.objects):
                try:
                    self._put(obj)
                except ValueError as exc:
                    errors.append(batch_pb2.BatchObjectsReply.BatchError(index=i, error=str(exc)))
        return batch_pb2.BatchObjectsReply(took=0.001, errors=errors)

    def _put(self, obj) -> None:
        s = self.s
        cls = s.classes.get(obj.collection)
        if cls is None:
            raise ValueError(f"class {obj.collection!r} not found")
        uid = str(uuid_mod.UUID(obj.uuid))
        declared = {p["name"]: p["dataType"][0] for p in cls.get("properties", [])}
        props = {}
        for key, val in obj.properties.non_ref_properties.fields.items():
            if key not in declared:
                raise ValueError(f"no such prop with name '{key}' found in class '{obj.collection}'")
            v = _value_of(val)
            props[key] = int(v) if declared[key] == "int" and v is not None else v
        if s.fail_all_batches or props.get("chunk_id") in s.reject:
            raise ValueError(f"stand-in rejected object {uid}")
        if obj.vector_bytes:
            vec = _decode_vector(obj.vector_bytes)
        elif len(obj.vectors):
            vec = _decode_vector(obj.vectors[0].vector_bytes)
        elif len(obj.vector):
            vec = np.asarray(obj.vector, dtype=np.float32)
        else:
            raise ValueError("vectorizer is none: a vector is required")
        dim = s.dims.setdefault(obj.collection, len(vec))
        if len(vec) != dim:
            raise ValueError(
                f"new node has a vector with length {len(vec)}. Existing nodes have vectors with length {dim}"
            )
        s.objects.setdefault(obj.collection, {})[uid] = {"props": props, "vector": vec}

    def BatchDelete(self, request, context):
        s = self.s
        s.calls.append("BatchDelete")
        with s.lock:
            objs = s.objects.get(request.collection, {})
            hits = [u for u, o in objs.items() if _match(request.filters, u, o["props"])]
            if not request.dry_run:
                for u in hits:
                    del objs[u]
        return batch_delete_pb2.BatchDeleteReply(took=0.001, failed=0, matches=len(hits), successful=len(hits))

    def Search(self, request, context):
        s = self.s
        kind = next((k for k in ("near_vector", "bm25_search", "hybrid_search") if request.HasField(k)), "fetch")
        s.calls.append("Search")
        s.searches.append(kind)
        with s.lock:
            if request.collection not in s.classes:
                context.abort(grpc.StatusCode.NOT_FOUND, f"class {request.collection} not found")
            objs = list(s.objects.get(request.collection, {}).items())
        if request.HasField("filters"):
            objs = [(u, o) for u, o in objs if _match(request.filters, u, o["props"])]
        distances: dict[str, float] = {}
        scores: dict[str, float] = {}
        if request.HasField("near_vector"):
            distances = _distances(_query_vector(request.near_vector), objs)
            objs.sort(key=lambda item: distances[item[0]])
        elif request.HasField("bm25_search"):
            b = request.bm25_search
            scores = _bm25(
                b.query,
                list(b.properties),
                _operator(b, "search_operator"),
                objs,
                self._text_properties(request.collection),
            )
            objs = sorted((item for item in objs if item[0] in scores), key=lambda item: (-scores[item[0]], item[0]))
        elif request.HasField("hybrid_search"):
            h = request.hybrid_search
            distances = _distances(_query_vector(h), objs)
            keyword = _bm25(
                h.query,
                list(h.properties),
                _operator(h, "bm25_search_operator"),
                objs,
                self._text_properties(request.collection),
            )
            alpha = h.alpha_param if h.use_alpha_param else h.alpha
            scores = _fuse(h.fusion_type, alpha, {u: -d for u, d in distances.items()}, keyword)
            objs = sorted((item for item in objs if item[0] in scores), key=lambda item: (-scores[item[0]], item[0]))
            distances = {}
        limit = request.limit or 10
        results = []
        wanted = list(request.properties.non_ref_properties) if request.HasField("properties") else []
        for u, o in objs[:limit]:
            props = {k: v for k, v in o["props"].items() if not wanted or k in wanted}
            meta = search_get_pb2.MetadataResult(id=u, id_as_bytes=uuid_mod.UUID(u).bytes)
            if u in distances:
                meta.distance = distances[u]
                meta.distance_present = True
            if u in scores:
                meta.score = scores[u]
                meta.score_present = True
            results.append(
                search_get_pb2.SearchResult(
                    metadata=meta,
                    properties=search_get_pb2.PropertiesResult(
                        non_ref_props=properties_pb2.Properties(fields={k: _to_value(v) for k, v in props.items()}),
                        target_collection=request.collection,
                    ),
                )
            )
        return search_get_pb2.SearchReply(took=0.001, results=results)

    def _text_properties(self, collection: str) -> list[str]:
        cls = self.s.classes.get(collection, {})
        return [p["name"] for p in cls.get("properties", []) if p["dataType"][0] == "text"]


def _query_vector(msg) -> np.ndarray:
    """The query vector of a near_vector or hybrid message (bytes, named vectors or floats)."""
    if msg.vector_bytes:
        return _decode_vector(msg.vector_bytes)
    if len(msg.vectors):
        return _decode_vector(msg.vectors[0].vector_bytes)
    if len(msg.vector):
        return np.asarray(msg.vector, dtype=np.float32)
    if msg.HasField("near_vector"):
        return _query_vector(msg.near_vector)
    raise ValueError("no query vector: the stand-in has no vectorizer")


def _distances(q: np.ndarray, objs) -> dict[str, float]:
    out = {}
    for u, o in objs:
        v = o["vector"]
        out[u] = float(1 - np.dot(q, v) / (np.linalg.norm(q) * np.linalg.norm(v)))
    return out


def _tokens(text) -> list[str]:
    """Weaviate's ``word`` tokenization, stopwords of the ``en`` preset removed."""
    return [t for t in re.split(r"[^0-9a-z]+", str(text or "").lower()) if t and t not in STOPWORDS]


def _operator(msg, field: str) -> int:
    """The BM25 operator of a bm25 (``search_operator``) or hybrid (``bm25_search_operator``) message."""
    if msg.HasField(field):
        return getattr(msg, field).operator
    return base_search_pb2.SearchOperatorOptions.OPERATOR_OR


def _bm25(query: str, properties: list[str], operator: int, objs, text_properties: list[str]) -> dict[str, float]:
    """BM25 scores of the objects matching ``query`` (OR: any term, AND: every term)."""
    props = [p.split("^")[0] for p in properties] or text_properties
    terms = list(dict.fromkeys(_tokens(query)))
    if not terms:
        return {}
    docs = {u: _tokens(" ".join(str(o["props"].get(p) or "") for p in props)) for u, o in objs}
    n = len(docs)
    avgdl = sum(map(len, docs.values())) / max(1, n)
    df = {t: sum(t in toks for toks in docs.values()) for t in terms}
    need_all = operator == base_search_pb2.SearchOperatorOptions.OPERATOR_AND
    out = {}
    for u, toks in docs.items():
        present = [t for t in terms if t in toks]
        if not present or (need_all and len(present) < len(terms)):
            continue
        dl = len(toks)
        score = 0.0
        for t in present:
            tf = toks.count(t)
            idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
            score += idf * tf * (BM25_K1 + 1) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * dl / avgdl))
        out[u] = score
    return out


def _fuse(fusion_type: int, alpha: float, vector_scores: dict[str, float], keyword_scores: dict[str, float]):
    """Weaviate's hybrid fusions of the vector side (weight alpha) and the BM25 side (1 - alpha)."""
    fused: dict[str, float] = {}
    sides = ((alpha, vector_scores), (1 - alpha, keyword_scores))
    if fusion_type == base_search_pb2.Hybrid.FUSION_TYPE_RANKED:
        for weight, side in sides:
            for rank, u in enumerate(sorted(side, key=lambda u: (-side[u], u))):
                fused[u] = fused.get(u, 0.0) + weight / (60 + rank)
        return fused
    for weight, side in sides:  # relativeScore (Weaviate's default since 1.24)
        if not side:
            continue
        lo, hi = min(side.values()), max(side.values())
        for u, v in side.items():
            fused[u] = fused.get(u, 0.0) + weight * ((v - lo) / (hi - lo) if hi > lo else 1.0)
    return fused


def _health_check(request, context):
    return health_weaviate_pb2.WeaviateHealthCheckResponse(
        status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING
    )


def _rest_handler(store: _Store, grpc_port: int):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, code: int, body=None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            store.calls.append(f"GET {self.path}")
            if self.path == "/v1/meta":
                return self._send(200, {"version": VERSION, "hostname": "http://[::]:8080", "modules": {}})
            if self.path in ("/v1/.well-known/ready", "/v1/.well-known/live"):
                return self._send(200)
            if self.path == "/v1/.well-known/openid-configuration":
                return self._send(404)
            if self.path.startswith("/v1/schema/"):
                name = self.path.split("/")[3]
                with store.lock:
                    cls = store.classes.get(name)
                return self._send(200, cls) if cls else self._send(404)
            return self._send(404, {"error": [{"message": f"no route {self.path}"}]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            store.calls.append(f"POST {self.path}")
            if self.path == "/v1/schema":
                name = body["class"]
                with store.lock:
                    if name in store.classes:
                        return self._send(422, {"error": [{"message": f"class name {name} already exists"}]})
                    store.classes[name] = body
                    store.objects[name] = {}
                return self._send(200, body)
            return self._send(404, {"error": [{"message": f"no route {self.path}"}]})

        def do_DELETE(self):
            store.calls.append(f"DELETE {self.path}")
            if self.path.startswith("/v1/schema/"):
                name = self.path.split("/")[3]
                with store.lock:
                    store.classes.pop(name, None)
                    store.objects.pop(name, None)
                    store.dims.pop(name, None)
                return self._send(200)
            return self._send(404)

    return Handler


class WeaviateStandIn:
    """``with WeaviateStandIn() as w:`` -> w.http_port, w.grpc_port, w.store, w.connection_uri."""

    def __init__(self) -> None:
        self.store = _Store()

    def __enter__(self) -> WeaviateStandIn:
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(_Servicer(self.store), self._grpc)
        self._grpc.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "grpc.health.v1.Health",
                    {
                        "Check": grpc.unary_unary_rpc_method_handler(
                            _health_check,
                            request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
                            response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString,
                        )
                    },
                ),
            )
        )
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self.store, self.grpc_port))
        self.http_port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=None)

    @property
    def connection_uri(self) -> str:
        """AIRFLOW_CONN_* form of a ``weaviate`` connection pointing here (what the hook reads)."""
        return json.dumps(
            {
                "conn_type": "weaviate",
                "host": "127.0.0.1",
                "port": self.http_port,
                "extra": {"grpc_host": "127.0.0.1", "grpc_port": self.grpc_port},
            }
        )

    def objects(self, collection: str) -> dict[str, dict]:
        with self.store.lock:
            return dict(self.store.objects.get(collection, {}))


def pack_floats(values) -> bytes:  # helper for tests that build requests by hand
    return struct.pack(f"<{len(values)}f", *values)
