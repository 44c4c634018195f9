"""Verdicts that do not flake: paired tests against a threshold, multiplicity, axis summaries, PB.

Pure functions over arrays; no I/O. Percent and percentage points (pp) at the interface.

- ``decide_family``: one paired shifted-null test per identity x task (Tango's score test, see
  ``guards.stats.power``), Holm (default) or Bonferroni over the family (both control the family-wise
  error rate, FWER: the chance of *any* false ``fail``), or Benjamini-Hochberg (controls the false
  discovery rate, FDR: the expected share of false ``fail`` among the ``fail``; with several true
  failures a false one is more likely than alpha). Intervals at the level each test was judged at (a
  Bonferroni interval is simultaneous; a Holm interval of a rejected test is at its step's level, not
  simultaneous), and a verdict: ``fail`` when p_adjusted < alpha, ``pass`` when the upper bound of the
  harm gap's interval is below the threshold, ``inconclusive`` otherwise.
- ``decide_axes``: the axis family (see there): one pooled test per identity x axis, per-task tests only
  inside failing axes (a gatekeeping graph, FWER over both).
- ``combine_axis``: macro average of one identity's tasks on one axis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from guards.core.verdicts import Verdict
from guards.stats.power import discordance, mdd, norm_isf, tango_bounds, tango_p

ALPHA_SPLIT = 0.5
"""Fraction of the build's alpha given to the identity x task family; PB gets the rest (1 - ALPHA_SPLIT).

With the default alpha 0.05: Holm over the identity family at 0.025 and the PB test at 0.025, so the
build's false-alarm rate (any false ``fail``) stays at or below 0.05 by the union bound."""

METHODS = ("holm", "bh", "bonferroni", "none")
DIRECTIONS = ("worse", "both")

@dataclass(frozen=True)
class Comparison:
    """One identity x task: outcomes in [0, 1], NaN = error/unscored; row i is the same item on both sides."""

    key: tuple[str, str]  # (identity_id, task)
    identity: np.ndarray  # (n_items,) or (n_items, epochs)
    baseline: np.ndarray  # same shape
    threshold: float  # pp


@dataclass(frozen=True)
class Decision:
    key: tuple[str, str]
    n: int  # complete pairs (items with a value on both sides)
    score: float  # identity mean, percent
    baseline: float  # baseline mean, percent
    delta: float  # identity - baseline, pp
    ci: tuple[float, float]  # interval for delta, pp, at ci_level (Holm-level, see decide_family)
    ci_level: float  # two-sided coverage of this interval
    p: float  # raw one-sided p for H0: harm gap <= threshold
    p_adjusted: float
    verdict: Verdict  # pass, fail or inconclusive (never error: an error has no decision)
    mdd: float  # smallest harm gap (pp, threshold included) detected with 80% power at this test's level
    se: float = 0.0  # standard error of delta, pp (half the interval's width over its z)
    threshold: float = 0.0  # pp
    direction: str = "worse"
    needs: int | None = None  # inconclusive: about how many items would decide at this estimate (None: no gap)
    stopped: str | None = None  # adaptive runs: why asking stopped ("fail", "pass", "futility", "last")


def needed_items(harm: float, se: float, n: int, threshold: float, tail: float) -> int | None:
    """Items at which an interval at one-sided level ``tail`` around ``harm`` (pp, standard error ``se`` on
    ``n`` items) would exclude ``threshold``: (z * sigma / |harm - threshold|)^2. None when harm = threshold."""
    distance = abs(harm - threshold)
    if n <= 0 or distance < 1e-9 or se <= 0:
        return None
    return max(n, math.ceil((norm_isf(tail) * se * math.sqrt(n) / distance) ** 2))


@dataclass(frozen=True)
class AxisSummary:
    identity: str
    n: int  # complete pairs over the axis's tasks
    score: float  # macro average over tasks with data, percent
    baseline: float
    delta: float  # pp
    ci: tuple[float, float]  # delta +- z * sqrt(sum se^2) / T, at ci_level (the widest task level)
    ci_level: float
    p_adjusted: float  # min over tasks
    verdict: str  # fail if any task fails, pass if all pass, else inconclusive


def adjust_array(p: np.ndarray, method: str, m: int | None = None) -> np.ndarray:
    """Adjusted p-values along the last axis; ``m`` >= the row length counts untested hypotheses as p = 1."""
    if method not in METHODS:
        raise ValueError(f"unknown correction {method!r}; use one of {METHODS}")
    p = np.nan_to_num(np.asarray(p, dtype=float), nan=1.0)
    k = p.shape[-1]
    m = k if m is None else m
    if m < k:
        raise ValueError(f"family size {m} is smaller than the {k} p-values given")
    if method == "none" or k == 0:
        return np.clip(p, 0.0, 1.0)
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p, axis=-1, kind="stable")
    ps = np.take_along_axis(p, order, axis=-1)
    rank = np.arange(1, k + 1)
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum((m - rank + 1) * ps, 1.0), axis=-1)
    else:  # bh; hypotheses beyond k have p = 1 and cannot lower the step-up minimum
        adj = np.minimum.accumulate((m * ps / rank)[..., ::-1], axis=-1)[..., ::-1]
        adj = np.minimum(adj, 1.0)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, axis=-1)
    return out


def adjust(pvalues: Sequence[float], method: str) -> list[float]:
    """Holm ("holm"), Benjamini-Hochberg ("bh"), Bonferroni or no ("none") adjustment; NaN counts as 1."""
    return [float(x) for x in adjust_array(np.asarray(list(pvalues), dtype=float), method)]


def judged_levels(p: np.ndarray, p_adjusted: np.ndarray, alpha: float, method: str, m: int) -> np.ndarray:
    """The one-sided level each test is judged at, so that p < level exactly when p_adjusted < alpha.

    Holm: rank j of the r rejected gets alpha/(m-j+1); every other test alpha/(m-r) (where the step-down
    stopped). BH: alpha*max(R,1)/m for all (Benjamini-Yekutieli FCR intervals). Bonferroni: alpha/m.
    """
    k = p.shape[-1]
    if method == "none":
        return np.full(k, alpha)
    if method == "bonferroni":
        return np.full(k, alpha / m)
    rejected = p_adjusted < alpha
    r = int(rejected.sum())
    if method == "bh":
        return np.full(k, alpha * max(r, 1) / m)
    levels = np.full(k, alpha / (m - r) if m > r else alpha)
    order = np.argsort(p, kind="stable")
    for j, idx in enumerate(order[:r], start=1):
        levels[idx] = alpha / (m - j + 1)
    return levels


def _pairs(c: Comparison) -> tuple[np.ndarray, np.ndarray]:
    """Per-item means (epochs averaged within item) over complete pairs: (identity, baseline)."""
    ident, base = np.asarray(c.identity, dtype=float), np.asarray(c.baseline, dtype=float)
    if ident.shape != base.shape or ident.ndim not in (1, 2):
        raise ValueError(f"{c.key}: identity {ident.shape} and baseline {base.shape} must match, 1-D or 2-D")
    if np.any((ident < 0) | (ident > 1)) or np.any((base < 0) | (base > 1)):
        raise ValueError(f"{c.key}: outcomes must lie in [0, 1] (NaN for unscored)")
    if c.threshold < 0 or not math.isfinite(c.threshold):
        raise ValueError(f"{c.key}: threshold must be a finite number >= 0, got {c.threshold}")
    if ident.ndim == 2:
        ok_i, ok_b = np.isfinite(ident), np.isfinite(base)
        cnt_i, cnt_b = ok_i.sum(axis=1), ok_b.sum(axis=1)
        ident = np.where(cnt_i > 0, np.where(ok_i, ident, 0).sum(axis=1) / np.maximum(cnt_i, 1), np.nan)
        base = np.where(cnt_b > 0, np.where(ok_b, base, 0).sum(axis=1) / np.maximum(cnt_b, 1), np.nan)
    keep = np.isfinite(ident) & np.isfinite(base)
    return ident[keep], base[keep]


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of the two sides, clipped to [0, 0.95]; 0.5 when undefined."""
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return 0.5
    return float(min(max(np.corrcoef(x, y)[0, 1], 0.0), 0.95))


def decide_family(comparisons: Sequence[Comparison], *, alpha: float, method: str = "holm",
                  direction: str = "worse", family_size: int | None = None) -> list[Decision]:
    """Test every comparison against its threshold and decide, with multiplicity control over the family.

    H0: harm <= threshold, H1: harm > threshold; harm = baseline - identity ("worse") or |delta| ("both",
    p = min(1, 2 * min of the two one-sided p)). The family is the comparisons with n > 0 (a comparison
    without data cannot fail and is left out), or ``family_size`` when given (for sequential looks: the
    size of the whole design, so stopped comparisons still count). The interval for delta is Tango's
    score interval at the level the test was judged at (``judged_levels``): two-sided coverage
    1 - 2*level ("worse") or 1 - level ("both"), reported as ``ci_level``. ``fail`` iff the interval lies
    beyond the threshold iff p_adjusted < alpha; ``pass`` iff the harm's upper bound < threshold.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; use one of {DIRECTIONS}")
    pairs = [_pairs(c) for c in comparisons]
    n = np.array([len(i) for i, _ in pairs], dtype=float)
    bc = np.array([discordance(b - i) for i, b in pairs]).reshape(-1, 2)
    thresholds = np.array([c.threshold for c in comparisons], dtype=float)
    p_raw = _one_or_two_sided(bc[:, 0], bc[:, 1], n, thresholds / 100.0, direction)
    fam = np.flatnonzero(n > 0)
    m = len(fam) if family_size is None else family_size
    if m < len(fam):
        raise ValueError(f"family_size {family_size} < {len(fam)} comparisons with data")
    p_adj = np.ones(len(comparisons))
    levels = np.full(len(comparisons), alpha)
    if len(fam):
        p_adj[fam] = adjust_array(p_raw[fam], method, m)
        levels[fam] = judged_levels(p_raw[fam], p_adj[fam], alpha, method, m)
    return _decisions([c.key for c in comparisons], pairs, bc[:, 0], bc[:, 1], thresholds, levels, p_raw, p_adj,
                      alpha, direction)


def combine_axis(decisions: Sequence[Decision], *, alpha: float) -> AxisSummary:
    """Macro average over one identity's tasks on one axis (tasks without data are left out of the means).

    ``alpha`` is the family alpha; it sets the level only when no task has data. Tasks use disjoint
    items, so the variance of the macro delta is sum(se_t^2) / T^2.
    """
    if not decisions:
        raise ValueError("combine_axis needs at least one decision")
    verdicts = [d.verdict for d in decisions]
    verdict = "fail" if "fail" in verdicts else "pass" if all(v == "pass" for v in verdicts) else "inconclusive"
    p_adj = min(d.p_adjusted for d in decisions)
    live = [d for d in decisions if d.n > 0]
    if not live:
        return AxisSummary(decisions[0].key[0], 0, 0.0, 0.0, 0.0, (-100.0, 100.0), 1.0 - alpha, p_adj, verdict)
    t = len(live)
    delta = sum(d.delta for d in live) / t
    level = min(d.ci_level for d in live)
    se = math.sqrt(sum(d.se**2 for d in live)) / t
    half = norm_isf((1.0 - level) / 2.0) * se
    return AxisSummary(
        identity=live[0].key[0], n=sum(d.n for d in live), score=sum(d.score for d in live) / t,
        baseline=sum(d.baseline for d in live) / t, delta=delta,
        ci=(max(delta - half, -100.0), min(delta + half, 100.0)), ci_level=level, p_adjusted=p_adj,
        verdict=verdict,
    )


FAMILIES = ("axis", "task")


def decide_axes(comparisons: Sequence[Comparison], axis_of: Mapping[str, str], *, alpha: float,
                direction: str = "worse", family_size: int | None = None
                ) -> tuple[list[Decision], dict[tuple[str, str], Decision]]:
    """The axis family: a pooled test per identity x axis first, per-task tests only inside failing axes.

    Why: a pull request asks few items per task, and per-task tests over 155 hypotheses detect only huge
    gaps; pooling an axis's items (e.g. 550 utility items in ``pr``) tests the identity's axis gap with
    all of them. The axis hypothesis is "the item-weighted gap over the axis's tasks <= the item-weighted
    threshold" (Tango's test on the pooled discordance; mixing tasks only adds between-task spread to the
    variance estimate, so it is conservative). Each of the M axis tests gets alpha / M (Bonferroni: the
    axis intervals are simultaneous). A failing axis hands its alpha / M to its own tasks (Holm within
    the axis): a gatekeeping graph (Bretz et al. 2009) that keeps the family-wise error rate over axis
    and task claims <= alpha. Adjusted p: axis min(1, M p); task max(axis's, M * Holm-within(p)).

    Returns (task decisions in input order, axis decisions by (identity, axis)). ``pass``: the upper bound
    at the test's level below the threshold (axis: alpha / M; task: alpha / (M * tasks in the axis)).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; use one of {DIRECTIONS}")
    pairs = [_pairs(c) for c in comparisons]
    groups: dict[tuple[str, str], list[int]] = {}
    for k, c in enumerate(comparisons):
        groups.setdefault((c.key[0], axis_of[c.key[1]]), []).append(k)
    n = np.array([len(i) for i, _ in pairs], dtype=float)
    bc = np.array([discordance(b - i) for i, b in pairs]).reshape(-1, 2)
    thr = np.array([c.threshold for c in comparisons], dtype=float)
    keys = list(groups)
    gn = np.array([n[groups[g]].sum() for g in keys])
    gb = np.array([bc[groups[g], 0].sum() for g in keys])
    gc = np.array([bc[groups[g], 1].sum() for g in keys])
    gthr = np.array([float((n[groups[g]] * thr[groups[g]]).sum() / gn[j]) if gn[j] > 0
                     else float(thr[groups[g]].mean()) for j, g in enumerate(keys)])
    live = int((gn > 0).sum())
    m = live if family_size is None else family_size
    if m < live:
        raise ValueError(f"family_size {family_size} < {live} identity x axis tests with data")
    m = max(m, 1)
    p_axis = _one_or_two_sided(gb, gc, gn, gthr / 100.0, direction)
    p_axis_adj = np.where(gn > 0, np.minimum(1.0, m * p_axis), 1.0)
    p_task = _one_or_two_sided(bc[:, 0], bc[:, 1], n, thr / 100.0, direction)
    task_adj = np.ones(len(comparisons))
    task_tail = np.full(len(comparisons), alpha / m)
    for j, g in enumerate(keys):
        idx = [k for k in groups[g] if n[k] > 0]
        if idx:
            within = adjust_array(p_task[idx], "holm")
            task_adj[idx] = np.maximum(p_axis_adj[j], np.minimum(1.0, m * within))
            task_tail[idx] = alpha / (m * len(idx))
    axis_pairs = [(np.concatenate([pairs[k][0] for k in groups[g]]), np.concatenate([pairs[k][1] for k in groups[g]]))
                  for g in keys]
    decided = _decisions(
        [c.key for c in comparisons] + keys, pairs + axis_pairs,
        np.concatenate([bc[:, 0], gb]), np.concatenate([bc[:, 1], gc]), np.concatenate([thr, gthr]),
        np.concatenate([task_tail, np.full(len(keys), alpha / m)]), np.concatenate([p_task, p_axis]),
        np.concatenate([task_adj, p_axis_adj]), alpha, direction)
    tasks = decided[: len(comparisons)]
    axes = dict(zip(keys, decided[len(comparisons):], strict=True))
    return tasks, axes


def _one_or_two_sided(b: np.ndarray, c: np.ndarray, n: np.ndarray, thr: np.ndarray, direction: str) -> np.ndarray:
    p = tango_p(b, c, n, thr)
    return np.asarray(p if direction == "worse" else np.minimum(1.0, 2 * np.minimum(p, tango_p(c, b, n, thr))))


def _decisions(keys: Sequence[tuple[str, str]], pairs: Sequence[tuple[np.ndarray, np.ndarray]], b: np.ndarray,
               c: np.ndarray, thresholds: np.ndarray, levels: np.ndarray, p: np.ndarray, p_adj: np.ndarray,
               alpha: float, direction: str) -> list[Decision]:
    """Decisions from their pairs (identity, baseline), each judged at its one-sided ``levels`` entry (halved per
    side for "both"). The intervals of all are computed in one ``tango_bounds`` call (one bisection over all)."""
    n = np.array([len(ident) for ident, _ in pairs], dtype=float)
    levels = np.asarray(levels, dtype=float)
    tails = levels if direction == "worse" else levels / 2
    thr = np.asarray(thresholds, dtype=float) / 100.0
    lo_h, hi_h = tango_bounds(b, c, n, tails, thr, thr if direction == "worse" else -thr)
    out = []
    for k, key in enumerate(keys):
        ident, base = pairs[k]
        threshold = float(thresholds[k])
        if n[k] == 0:
            out.append(Decision(key, 0, 0.0, 0.0, 0.0, (-100.0, 100.0), 1.0, 1.0, 1.0, "inconclusive", 100.0,
                                se=100.0, threshold=threshold, direction=direction))
            continue
        tail = float(tails[k])
        lo, hi = -100.0 * float(hi_h[k]), -100.0 * float(lo_h[k])
        harm_upper = -lo if direction == "worse" else max(-lo, hi)
        verdict: Verdict = "fail" if p_adj[k] < alpha else "pass" if harm_upper < threshold else "inconclusive"
        z = norm_isf(tail)
        se = (hi - lo) / (2.0 * z) if z > 0 else 100.0
        delta = 100.0 * float(ident.mean() - base.mean())
        harm = -delta if direction == "worse" else abs(delta)
        p_base = float(np.clip(base.mean(), 0.005, 0.995))
        out.append(Decision(
            key=key, n=len(ident), score=100.0 * float(ident.mean()), baseline=100.0 * float(base.mean()),
            delta=delta, ci=(lo, hi), ci_level=float(1.0 - 2.0 * tail), p=float(p[k]), p_adjusted=float(p_adj[k]),
            verdict=verdict, mdd=mdd(len(ident), p_base, alpha=tail, rho=_rho(ident, base), threshold=threshold),
            se=float(se), threshold=threshold, direction=direction,
            needs=needed_items(harm, se, len(ident), threshold, tail) if verdict == "inconclusive" else None))
    return out
