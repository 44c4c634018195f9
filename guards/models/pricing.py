"""Dollars for tokens, from litellm's price table (imported only when a price is asked for)."""

from __future__ import annotations


def price(model: str, tokens_in: float, tokens_out: float, requests: int = 1) -> float | None:
    """Dollars for `requests` requests using these tokens in all, from litellm's price table; None when the
    model is not in it (local models cost 0).

    Tiered prices (e.g. above 200k prompt tokens) apply per request, so the rates are those of the average
    request, not of the total as if it were one request.
    """
    if model.startswith("local/"):
        return 0.0
    n = max(1, requests)
    avg_in, avg_out = max(1, round(tokens_in / n)), max(1, round(tokens_out / n))
    try:
        import litellm

        litellm.suppress_debug_info = True  # an unpriced model (an http or python target) is None, not a banner
        cost_in, cost_out = litellm.cost_per_token(model=model, prompt_tokens=avg_in, completion_tokens=avg_out)
    except Exception:  # noqa: BLE001 - unknown model or provider
        return None
    return float(cost_in / avg_in * tokens_in + cost_out / avg_out * tokens_out)
