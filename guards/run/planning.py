"""Before any request: how many calls a run makes after the cache, its tokens and dollars, and what it can detect."""

from __future__ import annotations

import math
from typing import Any

from guards.config.settings import Settings
from guards.models.pricing import price
from guards.run.runner import build_requests, load_items, make_client, open_cache
from guards.tasks import get_task

CHARS_PER_TOKEN = 4.0  # a rough, model-independent estimate: planning must not load tokenizers


class BudgetExceeded(RuntimeError):
    """The run would cost more than `budget_usd`: stopped before (or while) spending."""


def detectable_gaps(settings: Settings, gap: float | None = None) -> dict[str, dict[str, float]]:
    """Per task: the smallest harm gap detectable with 80% power at the configured samples (Holm's strictest
    level, worst-case p = 0.5), and the items needed for `gap` (default: threshold + 10 pp)."""
    from guards import stats

    family = max(1, len(settings.identities) * len(settings.tasks))
    alpha = settings.thresholds.alpha * stats.ALPHA_SPLIT / family
    out = {}
    for name in settings.tasks:
        axis = get_task(name).axis
        threshold = settings.thresholds.utility_gap_max if axis == "utility" else settings.thresholds.safety_gap_max
        n = settings.samples[name] * settings.epochs
        target = gap if gap is not None else threshold + 10
        out[name] = {"threshold": threshold, "samples": n,
                     "detectable_gap": stats.mdd(n, 0.5, alpha=alpha, threshold=threshold),
                     "target_gap": target,
                     "items_for_target": stats.required_n(target, 0.5, alpha=alpha, threshold=threshold)}
    return out


def make_plan(settings: Settings, gap: float | None = None) -> dict[str, Any]:
    """Requests to send (after the cache), token and dollar estimates, and the detectable gap per task."""
    items = load_items(settings)
    cache = open_cache(settings)
    try:
        client = make_client(settings, cache)
        requests = build_requests(settings, items)
        sample = [r.epoch if client.params.get("temperature", 0) else 0 for r in requests]
        keys = client.keys([r.messages for r in requests], sample)
        cached = set(client.cached(keys))
    finally:
        cache.close()
    todo = [r for r, k in zip(requests, keys, strict=True) if k not in cached]
    max_out = int(settings.params.get("max_tokens", 300))
    tokens_in = sum(sum(len(m["content"]) for m in r.messages) for r in todo) / CHARS_PER_TOKEN
    tokens_out = len(todo) * max_out
    tasks = detectable_gaps(settings, gap)
    for name, its in items.items():
        tasks[name]["items"] = len(its)
    cost = price(settings.model, tokens_in, tokens_out, len(todo))
    return {
        "profile": settings.profile, "model": settings.model, "identities": len(settings.identities),
        "requests": len(requests), "cached": len(requests) - len(todo), "to_send": len(todo),
        "tokens_in": math.ceil(tokens_in), "tokens_out_max": tokens_out, "cost_usd_max": cost,
        "budget_usd": settings.budget_usd, "tasks": tasks,
    }


def check_budget(plan: dict[str, Any]) -> None:
    """Refuse a run whose upper-bound cost exceeds its budget (nothing is sent)."""
    budget, cost = plan.get("budget_usd"), plan.get("cost_usd_max")
    if budget is not None and cost is not None and cost > budget:
        raise BudgetExceeded(f"estimated cost ${cost:.2f} exceeds budget_usd ${budget:.2f} "
                             f"({plan['to_send']} requests to send); raise the budget or lower the samples")


def render_plan(plan: dict[str, Any]) -> str:
    cost = plan["cost_usd_max"]
    lines = [
        f"profile {plan['profile']}, model {plan['model']}, {plan['identities']} identities + baseline",
        f"requests: {plan['requests']} ({plan['cached']} cached, {plan['to_send']} to send)",
        f"tokens: ~{plan['tokens_in']:,} in, at most {plan['tokens_out_max']:,} out; cost at most "
        + ("unknown (model not in litellm's price table)" if cost is None else f"${cost:.2f}")
        + (f" (budget ${plan['budget_usd']:.2f})" if plan.get("budget_usd") is not None else ""),
        "smallest harm gap each test detects with 80% power, and the items a target gap needs:",
    ]
    for name, t in plan["tasks"].items():
        lines.append(f"  {name:<14} {t['items']:>5} items  threshold {t['threshold']} pp  "
                     f"detects {t['detectable_gap']:.1f} pp  a {t['target_gap']:.0f} pp gap needs "
                     f"{t['items_for_target']} items")
    return "\n".join(lines)
