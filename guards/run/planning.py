"""Before any request: how many calls a run makes after the cache, its tokens and dollars, and what it can detect."""

from __future__ import annotations

import math
from typing import Any

from guards.config.settings import Settings
from guards.models.pricing import price
from guards.run.matrix import build_requests, load_items
from guards.run.runner import open_cache
from guards.tasks import get_task

CHARS_PER_TOKEN = 4.0  # a rough, model-independent estimate: planning must not load tokenizers
# Judges whose score is graded (1 - harm in [0, 1]), planned with the graded variance (stats.power GRADED_SIZE);
# every other judge (offline, patterns, dna-rubric, longformer, custom) gives 0/1 scores.
GRADED_JUDGES = frozenset({"strongreject-rubric"})


def is_graded(settings: Settings, task: str) -> bool:
    """Whether a task's scores are graded: a safety task whose judge gives a harm score (the StrongREJECT rubric)."""
    return task in settings.judges and settings.judge_for(task) in GRADED_JUDGES


class BudgetExceeded(RuntimeError):
    """The run would cost more than `budget_usd`: stopped before (or while) spending."""


def detectable_gaps(settings: Settings, gap: float | None = None) -> dict[str, dict[str, Any]]:
    """Per task: the smallest harm gap detectable with 80% power at the configured items (worst-case p = 0.5),
    and the items needed for `gap` (default: threshold + 10 pp), at the level the task's test is judged at.

    n is items: epochs are averaged within an item, so they narrow nothing the planner can count on. Graded
    tasks (``is_graded``) use the graded variance: the binary formula would ask them for about twice the items.
    The level: task family, Holm's strictest alpha / (identities x tasks); axis family, a task is tested only
    inside a failing axis at alpha / (identities x axes x tasks in the axis); `axis_gaps` plans the axis test.
    """
    from guards import stats

    th = settings.thresholds
    family_alpha = th.alpha * stats.ALPHA_SPLIT
    k = max(1, len(settings.identities))
    axes = {get_task(t).axis for t in settings.tasks}
    out = {}
    for name in settings.tasks:
        axis = get_task(name).axis
        threshold = th.utility_gap_max if axis == "utility" else th.safety_gap_max
        if th.family == "axis":
            in_axis = sum(get_task(t).axis == axis for t in settings.tasks)
            alpha = family_alpha / (k * len(axes) * in_axis)
        else:
            alpha = family_alpha / (k * len(settings.tasks))
        n = settings.samples[name]
        target = gap if gap is not None else threshold + 10
        graded = is_graded(settings, name)
        out[name] = {"threshold": threshold, "samples": n, "graded": graded,
                     "detectable_gap": stats.mdd(n, 0.5, alpha=alpha, threshold=threshold, graded=graded),
                     "target_gap": target,
                     "items_for_target": _items_for(target, alpha, threshold, graded)}
    return out


def _items_for(target: float, alpha: float, threshold: float, graded: bool) -> int | None:
    """Items for a target gap; None where the planning model cannot reach it (a graded gap above E H / 2)."""
    from guards import stats

    try:
        return stats.required_n(target, 0.5, alpha=alpha, threshold=threshold, graded=graded)
    except ValueError:
        return None


def axis_gaps(settings: Settings, gap: float | None = None, samples: dict[str, int] | None = None,
              identities: int | None = None) -> dict[str, dict[str, Any]]:
    """Per axis, for the axis family: pooled items, the smallest axis gap detected with 80% power at
    alpha / (identities x axes), and the pooled items a target gap (default threshold + 10) needs. An axis is
    planned graded only when all its tasks are (a mix is planned as 0/1: conservative)."""
    from guards import stats

    th = settings.thresholds
    samples = samples if samples is not None else dict(settings.samples)
    k = identities if identities is not None else max(1, len(settings.identities))
    axes = sorted({get_task(t).axis for t in settings.tasks})
    alpha = th.alpha * stats.ALPHA_SPLIT / (k * max(1, len(axes)))
    out: dict[str, dict[str, Any]] = {}
    for axis in axes:
        threshold = th.utility_gap_max if axis == "utility" else th.safety_gap_max
        members = [t for t in settings.tasks if get_task(t).axis == axis]
        n = sum(samples.get(t, 0) for t in members)
        graded = all(is_graded(settings, t) for t in members)
        target = gap if gap is not None else threshold + 10
        out[axis] = {"threshold": threshold, "items": n, "graded": graded,
                     "detectable_gap": stats.mdd(n, 0.5, alpha=alpha, threshold=threshold, graded=graded),
                     "target_gap": target, "items_for_target": _items_for(target, alpha, threshold, graded)}
    return out


def recommend(settings: Settings, gap: float | None = None) -> str:
    """One line: the smallest profile whose axis tests catch `gap` with 80% power, else what would."""
    from guards.config.profiles import PROFILES

    k = max(1, len(settings.identities))
    for name in ("smoke", "pr", "nightly"):
        sizes = PROFILES[name].samples
        planned = axis_gaps(settings, gap, {t: sizes.get(t, 0) for t in settings.tasks})
        if all(_reaches(a) for a in planned.values()):
            calls = (k + 1) * sum(sizes.get(t, 0) for t in settings.tasks) * settings.epochs
            return (f"recommended: profile {name} ({calls:,} requests) catches a "
                    f"{max(a['target_gap'] for a in planned.values()):.0f} pp axis gap with 80% power")
    planned = axis_gaps(settings, gap)
    need = ", ".join(f"{a} {_needs(p)}" for a, p in planned.items())
    for fewer in sorted({max(1, k // 2), max(1, k // 4), 1}, reverse=True):
        smaller = axis_gaps(settings, gap, identities=fewer)
        if fewer < k and all(_reaches(p) for p in smaller.values()):
            return (f"recommended: no profile reaches the target with {k} identities (pooled per axis: {need}); "
                    f"the configured items reach it for {fewer} identities (a smaller family)")
    return f"recommended: no profile reaches the target; pooled per axis it needs {need}"


def _reaches(planned: dict[str, Any]) -> bool:
    need = planned["items_for_target"]
    return need is not None and planned["items"] >= need


def _needs(planned: dict[str, Any]) -> str:
    need = planned["items_for_target"]
    return "more than the planning model allows" if need is None else f"{need:,} items"


def make_plan(settings: Settings, gap: float | None = None) -> dict[str, Any]:
    """Requests to send (after the cache), token and dollar estimates, and the detectable gap per task."""
    items = load_items(settings)
    requests = build_requests(settings, items)
    cache = open_cache(settings)
    try:
        cached = set(cache.get_many("responses", [r.key for r in requests]))
    finally:
        cache.close()
    todo = [r for r in requests if r.key not in cached]
    max_out = int(settings.params.get("max_tokens", 300))
    tokens_in = sum(sum(len(m["content"]) for m in r.messages) for r in todo) / CHARS_PER_TOKEN
    tokens_out = len(todo) * max_out
    tasks = detectable_gaps(settings, gap)
    axes = axis_gaps(settings, gap) if settings.thresholds.family == "axis" else {}
    for name, its in items.items():
        tasks[name]["items"] = len(its)
    cost = price(settings.model, tokens_in, tokens_out, len(todo))
    return {
        "profile": settings.profile, "model": settings.model, "identities": len(settings.identities),
        "requests": len(requests), "cached": len(requests) - len(todo), "to_send": len(todo),
        "tokens_in": math.ceil(tokens_in), "tokens_out_max": tokens_out, "cost_usd_max": cost,
        "budget_usd": settings.budget_usd, "tasks": tasks, "axes": axes,
        "recommendation": recommend(settings, gap),
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
    for axis, a in plan.get("axes", {}).items():
        lines.append(f"  {axis + ' axis':<14} {a['items']:>5} items  threshold {a['threshold']} pp  "
                     f"detects {a['detectable_gap']:.1f} pp  a {a['target_gap']:.0f} pp gap needs "
                     f"{_needs(a)} (pooled over the axis's tasks)")
    for name, t in plan["tasks"].items():
        lines.append(f"  {name:<14} {t['items']:>5} items  threshold {t['threshold']} pp  "
                     f"detects {t['detectable_gap']:.1f} pp  a {t['target_gap']:.0f} pp gap needs "
                     f"{_needs(t)}" + (" (graded scores)" if t.get("graded") else ""))
    if plan.get("recommendation"):
        lines.append(plan["recommendation"])
    from guards.run.domain import domain_advice

    advice = domain_advice(plan)
    if advice:
        lines.append(advice)
    return "\n".join(lines)
