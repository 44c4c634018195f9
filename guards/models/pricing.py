"""Dollars for tokens, from litellm's price table (imported only when a price is asked for)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path


def price(model: str, tokens_in: float, tokens_out: float, requests: int = 1) -> float | None:
    """Dollars for `requests` requests using these tokens in all, from litellm's price table; None when the
    model is not in it (local models cost 0).

    Tiered prices (e.g. above 200k prompt tokens) apply per request, so the rates are those of the average
    request, not of the total as if it were one request.
    """
    if model.startswith("local/"):
        return 0.0
    if _surely_unpriced(model):  # e.g. a self-hosted model behind the direct transport: no 3-4 s litellm import
        return None
    n = max(1, requests)
    avg_in, avg_out = max(1, round(tokens_in / n)), max(1, round(tokens_out / n))
    try:
        import litellm

        litellm.suppress_debug_info = True  # an unpriced model (an http or python target) is None, not a banner
        cost_in, cost_out = litellm.cost_per_token(model=model, prompt_tokens=avg_in, completion_tokens=avg_out)
    except Exception:  # noqa: BLE001 - unknown model or provider
        return None
    return float(cost_in / avg_in * tokens_in + cost_out / avg_out * tokens_out)


@functools.lru_cache(maxsize=1)
def _price_names() -> frozenset[str] | None:
    """The model names of litellm's bundled price table, read as a file (without importing litellm), when that
    table is the one litellm uses (LITELLM_LOCAL_MODEL_COST_MAP); None when it is not, or cannot be read."""
    if os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP", "").strip().lower() not in ("true", "1"):
        return None
    try:
        spec = importlib.util.find_spec("litellm")
        places = list(spec.submodule_search_locations or []) if spec else []
        table = json.loads((Path(places[0]) / "model_prices_and_context_window_backup.json").read_text()) \
            if places else None
    except (OSError, ValueError):
        return None
    if not isinstance(table, dict):
        return None
    return frozenset(name for key in table if isinstance(key, str) for name in (key, key.rsplit("/", 1)[-1]))


def _surely_unpriced(model: str) -> bool:
    """True only when no name litellm could price `model` by is in its table (the full name, the name without
    its provider, their last path part); fine-tuned and routed names (ft:, azure/, bedrock/, ...) always ask."""
    names = _price_names()
    if names is None or ":" in model or model.split("/", 1)[0] in ("azure", "azure_ai", "bedrock", "vertex_ai",
                                                                    "sagemaker", "openrouter"):
        return False
    bare = model.split("/", 1)[-1]
    return not ({model, bare, bare.rsplit("/", 1)[-1]} & names)
