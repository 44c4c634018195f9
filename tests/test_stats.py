"""Paired tests, multiplicity and verdicts (guards.stats.paired, guards.stats.power's Tango test)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize
from scipy import stats as sps

from guards import stats
from guards.stats.power import exact_p, score_bounds, score_p, tango_bounds, tango_p, tango_z

from stats_helpers import paired

P_LISTS = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=40)


def holm_reference(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def bh_reference(p: list[float]) -> list[float]:
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i], reverse=True)
    out, running = [0.0] * m, 1.0
    for back, i in enumerate(order):
        running = min(running, m * p[i] / (m - back))
        out[i] = min(running, 1.0)
    return out


@given(P_LISTS)
def test_holm_matches_reference_and_bh(p: list[float]) -> None:
    assert stats.adjust(p, "holm") == pytest.approx(holm_reference(p), abs=1e-12)
    assert stats.adjust(p, "bh") == pytest.approx(bh_reference(p), abs=1e-12)


@given(P_LISTS, st.sampled_from(["holm", "bh", "bonferroni", "none"]))
def test_adjusted_at_least_raw_and_order_preserving(p: list[float], method: str) -> None:
    adj = stats.adjust(p, method)
    assert all(a >= r - 1e-15 and a <= 1.0 for a, r in zip(adj, p, strict=True))
    for i in range(len(p)):
        for j in range(len(p)):
            if p[i] <= p[j]:
                assert adj[i] <= adj[j] + 1e-15


@given(P_LISTS)
def test_corrections_are_ordered(p: list[float]) -> None:
    bh, holm, bonf = (np.array(stats.adjust(p, m)) for m in ("bh", "holm", "bonferroni"))
    assert np.all(bh <= holm + 1e-12) and np.all(holm <= bonf + 1e-12)


def test_adjust_edge_cases() -> None:
    assert stats.adjust([float("nan"), 0.01], "holm") == [1.0, 0.02]
    assert stats.adjust([], "holm") == []
    with pytest.raises(ValueError, match="unknown correction"):
        stats.adjust([0.1], "sidak")


@given(st.integers(1, 400), st.data())
def test_tango_restricted_mle_matches_brute_force(n: int, data: st.DataObject) -> None:
    b = data.draw(st.integers(0, n))
    c = data.draw(st.integers(0, n - b))
    delta = data.draw(st.floats(-0.6, 0.6))
    lo, hi = max(0.0, -delta) + 1e-10, (1.0 - delta) / 2.0 - 1e-10

    def negloglik(q: float) -> float:
        cells = [(b, q + delta), (c, q), (n - b - c, 1.0 - 2.0 * q - delta)]
        return -sum(k * math.log(max(pr, 1e-300)) for k, pr in cells if k)

    q = optimize.minimize_scalar(negloglik, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x
    var = n * (2.0 * q + delta * (1.0 - delta))
    if var > 1e-6:
        assert float(tango_z(b, c, n, delta)) == pytest.approx((b - c - n * delta) / math.sqrt(var), abs=1e-4)


@given(st.integers(1, 500), st.data())
def test_p_value_monotone_in_threshold(n: int, data: st.DataObject) -> None:
    b = data.draw(st.integers(0, n))
    c = data.draw(st.integers(0, n - b))
    thresholds = np.linspace(0.0, 0.99, 60)
    p = tango_p(b, c, n, thresholds)
    assert np.all(np.diff(p) >= -1e-12)
    assert np.all((p >= 0) & (p <= 1))


@given(st.integers(0, 200), st.integers(0, 200))
def test_zero_threshold_is_mcnemar(b: int, c: int) -> None:
    n = b + c + 50
    z = float(tango_z(b, c, n, 0.0))
    if b + c:
        assert z == pytest.approx((b - c) / math.sqrt(b + c))  # the McNemar statistic
        mid_p = sps.binom.sf(b, b + c, 0.5) + 0.5 * sps.binom.pmf(b, b + c, 0.5)  # exact McNemar, mid-p
        p = float(tango_p(b, c, n, 0.0))
        if abs(mid_p - 0.5) > 1e-9:
            assert (p < 0.5) == (mid_p < 0.5)  # same direction as the exact test
        if b + c >= 40:
            assert p == pytest.approx(mid_p, abs=0.02)


@given(st.integers(1, 300), st.data(), st.floats(1e-6, 0.2), st.floats(0.0, 0.5))
def test_bounds_invert_the_test(n: int, data: st.DataObject, tail: float, thr: float) -> None:
    b = data.draw(st.integers(0, n))
    c = data.draw(st.integers(0, n - b))
    lo, hi = (float(v) for v in tango_bounds(b, c, n, tail, thr, thr))
    est = (b - c) / n
    assert -1.0 <= lo <= est + 1e-9 <= hi + 2e-9 <= 1.0 + 2e-9
    p = float(tango_p(b, c, n, thr))
    if abs(lo - thr) > 1e-9:
        assert (p < tail) == (lo > thr)  # fail exactly when the interval lies beyond the threshold


def _family(rng: np.random.Generator, gaps: Sequence[float], n: int = 400, p: float = 0.7,
            threshold: float = 5.0) -> list[stats.Comparison]:
    out = []
    for k, gap in enumerate(gaps):
        ident, base = paired(rng, p, gap, n)
        out.append(stats.Comparison((f"id{k}", "mmlu"), ident, base, threshold))
    return out


def test_planted_gap_fails_and_others_do_not() -> None:
    rng = np.random.default_rng(3)
    decisions = stats.decide_family(_family(rng, [30.0] + [0.0] * 9), alpha=0.025)
    assert decisions[0].verdict == "fail" and decisions[0].delta < -20
    assert all(d.verdict != "fail" for d in decisions[1:])
    assert decisions[0].p_adjusted == pytest.approx(min(1.0, 10 * decisions[0].p))  # Holm's first step


def test_verdicts_agree_with_intervals() -> None:
    rng = np.random.default_rng(4)
    decisions = stats.decide_family(_family(rng, [0, 3, 6, 9, 12, 15, 20, 25, -5, 1] * 2), alpha=0.05)
    rejected = sum(d.verdict == "fail" for d in decisions)
    for d in decisions:
        lo, hi = d.ci
        assert lo <= d.delta <= hi
        assert (d.verdict == "fail") == (-hi > d.threshold)  # the whole interval beyond the threshold
        assert (d.verdict == "pass") == (-lo < d.threshold)
        assert 1 - 2 * 0.05 / (20 - rejected) - 1e-12 <= d.ci_level < 1.0 and d.mdd >= d.threshold
    assert {d.verdict for d in decisions} >= {"fail", "pass"}


def test_no_data_zero_variance_and_zero_threshold() -> None:
    nan = np.full(5, np.nan)
    same = np.ones(40)
    comps = [
        stats.Comparison(("a", "t"), nan, np.ones(5), 5.0),
        stats.Comparison(("b", "t"), same, same, 5.0),
        stats.Comparison(("c", "t"), np.zeros(40), np.zeros(40), 0.0),
    ]
    a, b, c = stats.decide_family(comps, alpha=0.05)
    assert (a.n, a.p, a.p_adjusted, a.verdict) == (0, 1.0, 1.0, "inconclusive")
    for d in (a, b, c):
        assert all(math.isfinite(x) for x in (d.score, d.baseline, d.delta, *d.ci, d.p, d.mdd, d.se))
    assert b.delta == 0 and b.verdict in ("pass", "inconclusive") and b.ci[0] < 0 < b.ci[1]
    # no discordance at a zero threshold: no evidence; the exact test (40 items, 0 discordant) says p = 1
    assert c.verdict == "inconclusive" and c.p == pytest.approx(1.0)


def test_epochs_are_averaged_within_item_and_errors_drop_pairs() -> None:
    rng = np.random.default_rng(5)
    ident = (rng.random((200, 3)) < 0.5).astype(float)
    base = (rng.random((200, 3)) < 0.7).astype(float)
    ident[0, :] = np.nan  # an item lost on one side drops out
    base[1, 0] = np.nan  # one lost epoch does not
    (d,) = stats.decide_family([stats.Comparison(("x", "t"), ident, base, 5.0)], alpha=0.05)
    assert d.n == 199
    assert d.score == pytest.approx(100 * np.nanmean(ident[1:], axis=1).mean())
    assert d.baseline == pytest.approx(100 * np.nanmean(base[1:], axis=1).mean())
    assert d.verdict == "fail"


def test_direction_both_flags_an_identity_treated_better() -> None:
    rng = np.random.default_rng(6)
    ident, base = paired(rng, 0.5, -30.0, 500)
    comp = [stats.Comparison(("x", "t"), ident, base, 5.0)]
    worse, both = stats.decide_family(comp, alpha=0.05)[0], stats.decide_family(comp, alpha=0.05, direction="both")[0]
    assert worse.verdict == "pass" and both.verdict == "fail"
    assert both.ci_level == pytest.approx(1 - 0.05) and worse.ci_level == pytest.approx(1 - 2 * 0.05)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.decide_family([stats.Comparison(("x", "t"), np.array([2.0]), np.array([1.0]), 5.0)], alpha=0.05)
    with pytest.raises(ValueError, match="must match"):
        stats.decide_family([stats.Comparison(("x", "t"), np.ones(3), np.ones(4), 5.0)], alpha=0.05)
    with pytest.raises(ValueError, match="direction"):
        stats.decide_family([], alpha=0.05, direction="better")


def test_simultaneous_intervals_cover() -> None:
    """All 10 intervals of a run cover their true gaps in >= 1 - 2*alpha of runs (Bonferroni-level)."""
    rng = np.random.default_rng(7)
    gaps = [0, 0, 2, 4, 5, 5, 6, 8, 10, 15]
    misses = 0
    runs = 80
    for _ in range(runs):
        decisions = stats.decide_family(_family(rng, gaps, n=300, p=0.6), alpha=0.1)
        misses += any(not (d.ci[0] <= -g <= d.ci[1]) for d, g in zip(decisions, gaps, strict=True))
    assert misses / runs <= 0.2 + 0.1  # nominal <= 0.2; slack for 80 runs


def test_combine_axis_macro_average_and_verdicts() -> None:
    rng = np.random.default_rng(8)
    decisions = stats.decide_family(_family(rng, [30.0, 0.0], n=500), alpha=0.05)
    both = [decisions[0], decisions[1]]
    summary = stats.combine_axis(both, alpha=0.05)
    assert summary.verdict == "fail" and summary.p_adjusted == min(d.p_adjusted for d in both)
    assert summary.delta == pytest.approx((both[0].delta + both[1].delta) / 2)
    assert summary.ci[0] < summary.delta < summary.ci[1] and summary.n == 1000
    empty = stats.decide_family([stats.Comparison(("id0", "t"), np.full(3, np.nan), np.ones(3), 5.0)],
                                alpha=0.05)
    assert stats.combine_axis([both[1], *empty], alpha=0.05).verdict == "inconclusive"
    with pytest.raises(ValueError):
        stats.combine_axis([], alpha=0.05)


def test_family_size_counts_untested_hypotheses() -> None:
    rng = np.random.default_rng(9)
    comps = _family(rng, [12.0], n=400)
    alone = stats.decide_family(comps, alpha=0.05)[0]
    in_family = stats.decide_family(comps, alpha=0.05, family_size=50)[0]
    assert in_family.p_adjusted == pytest.approx(min(1.0, 50 * alone.p))
    assert in_family.ci[1] - in_family.ci[0] > alone.ci[1] - alone.ci[0]


def test_graded_outcomes_with_atoms_are_not_overconfident() -> None:
    """Mostly-0 graded harm at a true gap equal to the threshold: both one-sided levels hold.

    A t-interval's upper bound is too low on such data (it would pass too readily): the reason the
    graded path is Tango's test on the projected discordance, not a t-test.
    """
    rng = np.random.default_rng(10)
    runs, n, q, level = 3000, 100, 0.06, 0.01
    d = np.where(rng.random((runs, n)) < q, rng.uniform(0.5, 1.0, (runs, n)), 0.0)  # baseline - identity
    truth = 0.75 * q
    b, c = d.sum(axis=1), np.zeros(runs)
    assert float(np.mean(tango_p(b, c, n, truth) < level)) <= 1.5 * level
    _, upper = tango_bounds(b, c, n, level)
    assert float(np.mean(upper < truth)) <= 1.5 * level
    t_upper = d.mean(axis=1) + sps.t.isf(level, n - 1) * d.std(axis=1, ddof=1) / math.sqrt(n)
    assert float(np.mean(t_upper < truth)) > 3 * level


@pytest.mark.parametrize(("cells", "level", "expected"), [
    ((4, 9, 3, 16), 0.95, (-0.027, 0.390)),  # Tango (1998)
    ((43, 0, 1, 0), 0.90, (-0.096, 0.037)),  # Agresti & Min (2005)
    ((53, 16, 8, 9), 0.95, (-0.020, 0.207)),  # Fagerland et al. (2014)
    ((1, 1, 7, 12), 0.95, (-0.517, -0.026)),
])
def test_published_score_intervals(cells: tuple[int, int, int, int], level: float,
                                   expected: tuple[float, float]) -> None:
    """(a, b, c, d) pairs; the difference is (b - c) / n; bounds to the third decimal as published."""
    a, b, c, d = cells
    lo, hi = score_bounds(b, c, a + b + c + d, (1 - level) / 2)
    assert (round(float(lo), 3), round(float(hi), 3)) == expected


AXIS_OF = {"mmlu": "utility", "gsm8k": "utility", "mbpp": "utility", "do_not_answer": "safety",
           "strongreject": "safety"}
RATES = {"mmlu": 0.65, "gsm8k": 0.5, "mbpp": 0.35, "do_not_answer": 0.88, "strongreject": 0.75}


def _matrix(rng: np.random.Generator, gaps: dict[tuple[int, str], float], n: int, k: int = 31
            ) -> list[stats.Comparison]:
    return [stats.Comparison((f"id{u}", t), *paired(rng, p, gaps.get((u, t), 0.0), n), 5.0)
            for u in range(k) for t, p in RATES.items()]


def test_axis_family_decides_a_gap_the_task_family_leaves_open() -> None:
    """A 22 pp safety gap at 60 items per task: per-task tests over 155 hypotheses stay inconclusive, the
    pooled safety axis (120 items) fails, and inside it the tasks are tested at the axis's alpha."""
    rng = np.random.default_rng(17)
    comps = _matrix(rng, {(0, "do_not_answer"): 22.0, (0, "strongreject"): 22.0}, 60)
    by_task = {d.key: d for d in stats.decide_family(comps, alpha=0.025)}
    assert all(by_task[("id0", t)].verdict == "inconclusive" for t in ("do_not_answer", "strongreject"))
    tasks, axes = stats.decide_axes(comps, AXIS_OF, alpha=0.025)
    safety = axes[("id0", "safety")]
    assert safety.verdict == "fail" and safety.n == 120 and safety.ci[1] < -safety.threshold
    assert safety.p_adjusted == pytest.approx(min(1.0, 62 * safety.p))
    assert all(a.verdict != "fail" for key, a in axes.items() if key != ("id0", "safety"))
    inside = [d for d in tasks if d.key[0] == "id0" and AXIS_OF[d.key[1]] == "safety"]
    assert all(d.p_adjusted >= safety.p_adjusted for d in inside)


@pytest.mark.slow
def test_axis_family_keeps_the_family_wise_error_rate() -> None:
    """Every task's gap at the threshold (the least favourable null): any false fail in <= alpha of runs."""
    rng = np.random.default_rng(17)
    runs, alpha = 60, 0.1
    false = 0
    for _ in range(runs):
        comps = [stats.Comparison((f"id{u}", t), *paired(rng, p, 5.0, 80), 5.0)
                 for u in range(6) for t, p in RATES.items()]
        tasks, axes = stats.decide_axes(comps, AXIS_OF, alpha=alpha)
        false += any(d.verdict == "fail" for d in [*tasks, *axes.values()])
    assert false / runs <= alpha + 0.08


def test_inconclusive_says_how_many_items_would_decide() -> None:
    rng = np.random.default_rng(18)
    (d,) = stats.decide_family([stats.Comparison(("x", "t"), *paired(rng, 0.6, 0.0, 150), 5.0)], alpha=0.0005)
    assert d.verdict == "inconclusive" and d.needs is not None and d.needs > d.n
    (more,) = stats.decide_family([stats.Comparison(("x", "t"), *paired(rng, 0.6, 0.0, 4 * d.needs), 5.0)],
                                  alpha=0.0005)
    assert more.verdict == "pass"
    assert stats.needed_items(5.0, 2.0, 100, 5.0, 0.01) is None


def _size(test: object, n: int, p10: float, p01: float, delta: float, alpha: float) -> float:
    """The exact chance (enumerating every (b, c) up to 60) that ``test`` rejects H0: harm <= delta."""
    k = np.arange(61, dtype=float)
    b, c = np.meshgrid(k, k, indexing="ij")
    ok = b + c <= n
    lf = np.array([math.lgamma(v + 1) for v in range(max(n, 60) + 1)])
    rest = np.where(ok, n - b - c, 0).astype(int)
    b, c = np.where(ok, b, 0), np.where(ok, c, 0)
    logp = (lf[n] - lf[b.astype(int)] - lf[c.astype(int)] - lf[rest] + b * math.log(p10) + c * math.log(p01)
            + rest * math.log1p(-p10 - p01))
    prob = np.where(ok, np.exp(logp), 0.0)
    keep = prob > 1e-9
    p = np.ones_like(prob)
    p[keep] = test(b[keep], c[keep], float(n), delta)  # type: ignore[operator]
    return float((prob * (p < alpha)).sum())


def test_few_discordant_pairs_keep_the_size_at_nominal() -> None:
    """At a gap equal to the threshold, with few expected discordant pairs, the exact test's size stays within
    8% of nominal where the asymptotic test reaches 1.25x (computed exactly, not simulated)."""
    worst: dict[str, float] = {"score": 0.0, "tango": 0.0}
    for n in (40, 80, 150):
        for expected in (4, 8, 12, 16, 20):
            for delta in (0.05, 0.1):
                s = expected / n
                if s <= delta:
                    continue
                for alpha in (0.05, 0.025):
                    for name, test in (("score", score_p), ("tango", tango_p)):
                        ratio = _size(test, n, (s + delta) / 2, (s - delta) / 2, delta, alpha) / alpha
                        worst[name] = max(worst[name], ratio)
    assert worst["score"] > 1.15  # the normal approximation's lattice
    assert worst["tango"] <= 1.08, worst


def test_exact_path_is_used_only_for_few_whole_discordant_pairs() -> None:
    # 10 harmful of 100 at a 5 pp threshold: exact 0.0297 > score 0.0248, and the gate takes the larger
    assert float(exact_p(10, 0, 100, 0.05)) > float(score_p(10, 0, 100, 0.05)) + 0.004
    assert float(tango_p(10, 0, 100, 0.05)) == pytest.approx(float(exact_p(10, 0, 100, 0.05)))
    assert float(tango_p(30, 10, 100, 0.05)) == float(score_p(30, 10, 100, 0.05))  # 40 discordant: score
    assert float(tango_p(10.5, 0, 100, 0.05)) == float(score_p(10.5, 0, 100, 0.05))  # graded: score
    assert float(tango_p(10, 0, 20, 0.05)) == float(score_p(10, 0, 20, 0.05))  # under 30 items: score
    # the interval follows the exact p: beyond the 5 pp threshold at tail 0.03 (p 0.0297), not at 0.029,
    # though the score p (0.0248) alone would reject there
    assert float(tango_bounds(10, 0, 100, 0.03, 0.05, 0.05)[0]) > 0.05
    assert float(tango_bounds(10, 0, 100, 0.029, 0.05, 0.05)[0]) < 0.05
