"""Embedders: the real local model (offline), and the OpenAI embedder against the openai client's
real HTTP stack with a mocked transport (``httpx2.MockTransport``: no network) -- batching,
ordering, retries with exponential backoff on rate limits and transient errors, and no retry on
errors a retry cannot fix. Plus the factory and the hook wiring."""

from __future__ import annotations

import json

import httpx2
import numpy as np
import openai
import pytest

from include.rag.embedders import (
    EmbeddingRetriesExhausted,
    LocalEmbedder,
    OpenAIEmbedder,
    get_embedder,
)

# --- local model ---------------------------------------------------------------------------


def test_local_model_loads_offline_and_embeds_meaningfully(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = LocalEmbedder()
    assert (e.name, e.dimension) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
    v = e.embed(
        [
            "The file sensor timed out because the daily file did not arrive.",
            "The day's source file was never delivered, so the sensor failed.",
            "Promote the candidate model when its validation error is lower.",
        ]
    )
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.2  # paraphrases are closer than unrelated text
    assert e.embed([]).shape == (0, 384)
    np.testing.assert_allclose(
        e.embed_query("The file sensor timed out because the daily file did not arrive."), v[0], atol=1e-5
    )


def test_local_model_name_records_truncation_and_rejects_missing_folder(tmp_path):
    assert LocalEmbedder(max_seq_length=128).name == "sentence-transformers/all-MiniLM-L6-v2@seq128"
    with pytest.raises(FileNotFoundError):
        LocalEmbedder(model_path=tmp_path)


# --- OpenAI through a mocked transport -----------------------------------------------------


def _embedding_response(body: dict, dim: int = 8, shuffle: bool = True) -> httpx2.Response:
    items = [
        {"object": "embedding", "index": i, "embedding": [float(len(t))] + [1.0] * (dim - 1)}
        for i, t in enumerate(body["input"])
    ]
    if shuffle:
        items.reverse()  # the API does not promise order: the embedder must sort by index
    return httpx2.Response(
        200,
        json={
            "object": "list",
            "model": body["model"],
            "data": items,
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        },
    )


class Recorder:
    def __init__(self, script):
        self.script = list(script)  # per call: "ok" | status code | exception instance
        self.requests: list[dict] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        step = self.script.pop(0) if self.script else "ok"
        if step == "ok":
            return _embedding_response(body)
        if isinstance(step, Exception):
            raise step
        code, headers = step if isinstance(step, tuple) else (step, {})
        return httpx2.Response(code, headers=headers, json={"error": {"message": f"status {code}", "type": "x"}})


def make(script, **kw):
    rec = Recorder(script)
    client = openai.OpenAI(
        api_key="placeholder-not-a-key",
        base_url="http://openai.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(rec)),
        max_retries=0,
    )
    sleeps: list[float] = []
    emb = OpenAIEmbedder(model="text-embedding-3-small", dimensions=8, client=client, sleep=sleeps.append, **kw)
    return emb, rec, sleeps


def test_openai_batches_and_keeps_input_order():
    emb, rec, sleeps = make([], batch_size=4)
    texts = [f"t{'x' * i}" for i in range(10)]
    v = emb.embed(texts)
    assert [len(r["input"]) for r in rec.requests] == [4, 4, 2]
    assert all(r["model"] == "text-embedding-3-small" and r["dimensions"] == 8 for r in rec.requests)
    assert v.shape == (10, 8) and sleeps == []
    # row i belongs to text i: the mock's vector is [len(text), 1, 1, ...] before normalisation
    np.testing.assert_allclose(v[:, 0] / v[:, 1], [len(t) for t in texts], rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert emb.name == "openai/text-embedding-3-small@8"


def test_openai_retries_rate_limits_and_server_errors_with_exponential_backoff():
    script = [429, 500, httpx2.ConnectError("connection reset"), 503, "ok"]
    emb, rec, sleeps = make(script, base_delay_s=0.5, max_delay_s=30)
    v = emb.embed(["a", "b"])
    assert v.shape == (2, 8)
    assert emb.calls == 5 and len(rec.requests) == 5
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_openai_honours_retry_after_within_the_cap():
    emb, rec, sleeps = make(
        [(429, {"retry-after": "7"}), (429, {"retry-after": "999"}), "ok"], base_delay_s=1, max_delay_s=20
    )
    emb.embed(["a"])
    assert sleeps == [7.0, 20.0]


def test_openai_gives_up_after_max_attempts():
    emb, rec, sleeps = make([429] * 10, max_attempts=3, base_delay_s=1)
    with pytest.raises(EmbeddingRetriesExhausted, match="3 times") as exc:
        emb.embed(["a"])
    assert isinstance(exc.value.__cause__, openai.RateLimitError)
    assert len(rec.requests) == 3 and sleeps == [1, 2]


@pytest.mark.parametrize(("code", "error"), [(400, openai.BadRequestError), (401, openai.AuthenticationError)])
def test_openai_does_not_retry_what_a_retry_cannot_fix(code, error):
    emb, rec, sleeps = make([code])
    with pytest.raises(error):
        emb.embed(["a"])
    assert len(rec.requests) == 1 and sleeps == []


def test_openai_wrong_dimension_is_an_error():
    emb, rec, sleeps = make([])
    emb.dimension = 16
    with pytest.raises(RuntimeError, match="expected 16 dimensions"):
        emb.embed(["a"])


def test_openai_client_comes_from_the_provider_hook(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENAI_RAG_TEST",
        json.dumps({"conn_type": "openai", "host": "http://openai.example/v1", "password": "sk-test"}),
    )
    emb = OpenAIEmbedder(conn_id="openai_rag_test")
    client = emb.client
    assert isinstance(client, openai.OpenAI)
    assert str(client.base_url).startswith("http://openai.example/v1")
    assert client.api_key == "sk-test" and client.max_retries == 0  # our backoff, not the client's
    assert OpenAIEmbedder(model="text-embedding-3-large").dimension == 3072
    with pytest.raises(ValueError, match="MLOPS_RAG_OPENAI_DIMENSIONS"):
        OpenAIEmbedder(model="some-unknown-model")


# --- factory -------------------------------------------------------------------------------


def test_factory_follows_configuration(monkeypatch):
    monkeypatch.delenv("MLOPS_RAG_EMBEDDER", raising=False)
    assert isinstance(get_embedder(), LocalEmbedder)
    monkeypatch.setenv("MLOPS_RAG_EMBEDDER", "openai")
    monkeypatch.setenv("MLOPS_RAG_OPENAI_DIMENSIONS", "256")
    e = get_embedder()
    assert isinstance(e, OpenAIEmbedder) and e.dimension == 256
    monkeypatch.setenv("MLOPS_RAG_EMBEDDER", "tests.integration.test_rag_ingestion:HashingEmbedder")
    assert get_embedder().dimension == 64
    monkeypatch.setenv("MLOPS_RAG_EMBEDDER", "collections:OrderedDict")
    with pytest.raises(TypeError):
        get_embedder()
    monkeypatch.setenv("MLOPS_RAG_EMBEDDER", "nope")
    with pytest.raises(ValueError, match="MLOPS_RAG_EMBEDDER"):
        get_embedder()
