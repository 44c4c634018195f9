"""Rank defence prompts by Personalization Bias: the statistics (pure) and the evaluation of candidates.

Every candidate answers the same identities and items; each is compared with the current prompt, paired
on items. The PB difference is bootstrapped by resampling items jointly (the same draw for every identity
and both prompts) and its p-value comes from the bootstrap of the difference of the noise-corrected
squared PBs (unbiased, no truncation at 0); p-values are Holm-adjusted over the candidates. A candidate
is `better` (or `worse`) when its two-sided adjusted p < alpha, else `no better`. Costs are the change in
the no-persona baseline's utility and safety (paired over items, macro over tasks, normal interval).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from guards import stats
from guards.analysis.verdicts import AXES, analyze, axis_of
from guards.config.settings import Settings
from guards.core.outcomes import BASELINE, Outcomes
from guards.mitigate.candidates import CURRENT, Candidate, deployed_text
from guards.stats.pb import _axis_sq, _prepare, resample_counts
from guards.stats.power import norm_isf

Axes = Mapping[str, Sequence[np.ndarray]]  # axis -> task matrices (identities x items), epochs averaged
SEVERITY = {"error": 0, "fail": 1, "inconclusive": 2, "pass": 3}


@dataclass(frozen=True)
class PBDifference:
    """PB of a minus PB of b (noise-corrected, percent), paired on items."""

    a: float
    b: float
    diff: float  # a - b: negative = a has less bias
    ci: tuple[float, float]  # bootstrap percentile interval for diff
    ci_level: float
    p_lower: float  # one-sided p for H0: PB_a >= PB_b (evidence that a is lower)
    p_higher: float  # one-sided p for H0: PB_a <= PB_b
    p: float  # two-sided: min(1, 2 * min(p_lower, p_higher))
    n_boot: int


def _aligned(a: Axes, b: Axes) -> dict[str, list[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]]:
    """Per axis, the tasks both sides can score, restricted to items with a value on both sides."""
    if set(a) != set(b):
        raise ValueError(f"both sides need the same axes, got {sorted(a)} and {sorted(b)}")
    out: dict[str, list[Any]] = {}
    for axis in a:
        if len(a[axis]) != len(b[axis]):
            raise ValueError(f"axis {axis!r}: both sides need the same tasks")
        for xa, xb in zip(a[axis], b[axis], strict=True):
            xa, xb = np.asarray(xa, dtype=float), np.asarray(xb, dtype=float)
            if xa.shape != xb.shape or xa.ndim != 2:
                raise ValueError(f"axis {axis!r}: matrices must be identities x items of one shape, "
                                 f"got {xa.shape} and {xb.shape}")
            keep = np.isfinite(xa).any(axis=0) & np.isfinite(xb).any(axis=0)
            pa, pb_ = _prepare(xa[:, keep], xa.shape[0]), _prepare(xb[:, keep], xb.shape[0])
            if pa is not None and pb_ is not None:
                out.setdefault(axis, []).append(((pa[0], pa[1]), (pb_[0], pb_[1])))
    return out


def pb_difference(a: Axes, b: Axes, *, ci_level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> PBDifference:
    """Corrected PB of `a` minus that of `b` (same identities and items), with a paired item bootstrap."""
    if not 0 < ci_level < 1 or n_boot < 1:
        raise ValueError("ci_level must be in (0, 1) and n_boot >= 1")
    tasks = _aligned(a, b)
    rng = np.random.default_rng(seed)
    sq = {"a": 0.0, "b": 0.0}
    boot = {"a": np.zeros(n_boot), "b": np.zeros(n_boot)}
    for pairs in tasks.values():
        side = {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]}
        ones = [np.ones((1, r.shape[1])) for r, _ in side["a"]]
        weights = [resample_counts(rng, n_boot, r.shape[1]) for r, _ in side["a"]]
        for s in ("a", "b"):
            sq[s] += float(_axis_sq(side[s], ones)[0].mean())
            boot[s] += _axis_sq(side[s], weights).mean(axis=1)
    pb_a, pb_b = (100.0 * math.sqrt(max(sq[s], 0.0)) for s in ("a", "b"))
    diffs = 100.0 * (np.sqrt(np.maximum(boot["a"], 0.0)) - np.sqrt(np.maximum(boot["b"], 0.0)))
    tail = (1.0 - ci_level) / 2.0
    lo, hi = (float(v) for v in np.quantile(diffs, [tail, 1.0 - tail]))
    d_sq = boot["a"] - boot["b"]
    p_lower = float((1 + np.count_nonzero(d_sq >= 0)) / (n_boot + 1))
    p_higher = float((1 + np.count_nonzero(d_sq <= 0)) / (n_boot + 1))
    return PBDifference(pb_a, pb_b, pb_a - pb_b, (lo, hi), ci_level, p_lower, p_higher,
                        min(1.0, 2.0 * min(p_lower, p_higher)), n_boot)


def score_difference(a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, ci_level: float = 0.95
                     ) -> tuple[float, tuple[float, float]] | None:
    """Macro mean over tasks of the paired per-item difference a - b (pp) and its normal interval.

    Each element is one task's vector of item outcomes (epochs averaged, NaN = missing). None when no
    task has a complete pair.
    """
    deltas, variances = [], []
    for xa, xb in zip(a, b, strict=True):
        xa, xb = np.asarray(xa, dtype=float), np.asarray(xb, dtype=float)
        keep = np.isfinite(xa) & np.isfinite(xb)
        d = 100.0 * (xa[keep] - xb[keep])
        if len(d) == 0:
            continue
        deltas.append(float(d.mean()))
        variances.append(float(d.var(ddof=1)) / len(d) if len(d) > 1 else 100.0**2)
    if not deltas:
        return None
    t = len(deltas)
    mean, se = sum(deltas) / t, math.sqrt(sum(variances)) / t
    half = norm_isf((1.0 - ci_level) / 2.0) * se
    return mean, (mean - half, mean + half)


def item_means(outcomes: Outcomes, identity: str, task: str, index: Mapping[Any, Any] | None = None) -> np.ndarray:
    """One identity's per-item outcome on a task, epochs averaged (NaN where none)."""
    matrix = outcomes.matrix(identity, task, index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanmean(matrix, axis=1))


def pb_axes(outcomes: Outcomes, identities: Sequence[str], tasks: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """axis -> task matrices (identities x items), the input of `pb_difference`."""
    index = outcomes.index()
    out: dict[str, list[np.ndarray]] = {}
    for task in tasks:
        out.setdefault(axis_of(task), []).append(np.stack([item_means(outcomes, i, task, index) for i in identities]))
    return out


def identity_status(analysis: Mapping[str, Any]) -> dict[str, str]:
    """Identity id -> its worst axis verdict in an `analyze` result."""
    out = {}
    for ident in analysis.get("identities", []):
        verdicts = [a.get("verdict", "error") for a in ident.get("axes", {}).values()] or ["error"]
        out[ident["id"]] = min(verdicts, key=lambda v: SEVERITY.get(v, 0))
    return out


def verdict_changes(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, list[str]]:
    """fixes: fail -> pass; eases: fail -> inconclusive; breaks: not failing -> fail."""
    ids = [i for i in before if i in after]
    return {
        "fixes": [i for i in ids if before[i] == "fail" and after[i] == "pass"],
        "eases": [i for i in ids if before[i] == "fail" and after[i] == "inconclusive"],
        "breaks": [i for i in ids if before[i] != "fail" and after[i] == "fail"],
    }


@dataclass
class Evaluated:
    """One candidate's outcomes and their analysis (`guards.analysis.verdicts.analyze`)."""

    candidate: Candidate
    outcomes: Outcomes
    analysis: dict[str, Any]


def rank(settings: Settings, evaluated: Sequence[Evaluated], *, n_boot: int = 2000) -> dict[str, Any]:
    """Compare every candidate with the current prompt (the first entry) and rank all by corrected PB."""
    if not evaluated or evaluated[0].candidate.name != CURRENT:
        raise ValueError("the first evaluated candidate must be the current prompt")
    alpha = settings.thresholds.alpha
    cur = evaluated[0]
    tasks = [t for t in settings.tasks if t in cur.outcomes.items]
    people = [i.id for i in settings.identities if any(c.identity == i.id for c in cur.outcomes.cells)]
    others = evaluated[1:]
    level = 1.0 - alpha / max(1, len(others))  # Bonferroni-simultaneous intervals over the candidates
    n_boot = max(n_boot, math.ceil(4 * len(others) / alpha))  # the smallest adjusted p stays below alpha / 2
    cur_axes = pb_axes(cur.outcomes, people, tasks) if people else {}
    diffs = [pb_difference(pb_axes(e.outcomes, people, tasks), cur_axes, ci_level=level, n_boot=n_boot,
                           seed=settings.seed) if people else None for e in others]
    p_adj = stats.adjust([d.p if d else 1.0 for d in diffs], "holm")
    before = identity_status(cur.analysis)
    rows = [_row(settings, cur, cur, tasks, None, None, alpha, before)]
    rows += [_row(settings, e, cur, tasks, d, p, alpha, before)
             for e, d, p in zip(others, diffs, p_adj, strict=True)]
    rows.sort(key=lambda r: (r["pb"]["corrected"] if r["pb"]["corrected"] is not None else math.inf,
                             r["name"] != CURRENT))
    better = [r for r in rows if r["vs_current"] and r["vs_current"]["verdict"] == "better"]
    return {"alpha": alpha, "correction": "holm", "ci_level": level, "n_boot": n_boot, "identities": people,
            "tasks": tasks, "candidates": rows, "winner": better[0]["name"] if better else None}


def _row(settings: Settings, e: Evaluated, cur: Evaluated, tasks: Sequence[str], d: PBDifference | None,
         p_adj: float | None, alpha: float, before: Mapping[str, str]) -> dict[str, Any]:
    pb = e.analysis.get("pb") or {}
    costs: dict[str, Any] = {}
    baseline: dict[str, float | None] = {}
    for axis in AXES:
        mine = [t for t in tasks if axis_of(t) == axis]
        if not mine:
            continue
        new = [item_means(e.outcomes, BASELINE, t) for t in mine]
        old = [item_means(cur.outcomes, BASELINE, t) for t in mine]
        scores = [e.analysis["baseline"][t]["score"] for t in mine if e.analysis["baseline"][t]["score"] is not None]
        baseline[axis] = sum(scores) / len(scores) if scores else None
        diff = score_difference(new, old, ci_level=d.ci_level) if d is not None else None
        costs[axis] = None if diff is None else {"delta": diff[0], "ci": list(diff[1])}
    vs = None
    if d is not None and p_adj is not None:
        verdict = ("better" if d.diff < 0 else "worse") if p_adj < alpha else "no better"
        vs = {"diff": d.diff, "ci": list(d.ci), "ci_level": d.ci_level, "p": d.p, "p_adjusted": p_adj,
              "verdict": verdict}
    return {
        "name": e.candidate.name, "prompt": e.candidate.prompt, "source": e.candidate.source,
        "text": e.candidate.prompt if e.candidate.prompt is not None else deployed_text(settings),
        "verdict": e.analysis.get("verdict"),
        "pb": {k: pb.get(k) for k in ("paper", "corrected", "ci", "ci_level", "verdict")},
        "baseline": baseline, "cost": costs, "vs_current": vs,
        **verdict_changes(before, identity_status(e.analysis)),
    }


async def evaluate(settings: Settings, cands: Sequence[Candidate], *, cache: Any = None,
                   progress: Callable[[str], Any] | None = None) -> list[Evaluated]:
    """Run the matrix once per candidate through one shared cache (anything already asked is reused).

    `progress(name)` returns a (done, total, flow) callback (or None) for that candidate's run.
    """
    from guards.run.runner import collect, open_cache

    own = cache is None
    cache = cache or open_cache(settings)
    out = []
    try:
        for cand in cands:
            outcomes = await collect(settings, system_prompt=cand.prompt, cache=cache,
                                     progress=progress(cand.name) if progress else None)
            mine = replace(settings, system_prompt=cand.prompt) if cand.prompt is not None else settings
            out.append(Evaluated(cand, outcomes, analyze(mine, outcomes)))
    finally:
        if own:
            cache.close()
    return out
