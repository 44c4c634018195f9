"""Power planning (guards.stats.power) and the group-sequential helpers (guards.stats.sequential)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from guards import stats
from guards.stats.power import detect_power, mdd, required_n, tango_p
from guards.stats.sequential import conditional_power, futile, look_alpha, plan_looks, settled, spent_alpha, stop_reason

from stats_helpers import probit_matrix

RATES = st.floats(0.05, 0.95)
LEVELS = st.floats(1e-6, 0.1)


@given(st.integers(10, 3000), RATES, LEVELS, st.floats(0, 0.9), st.floats(0, 10))
def test_mdd_is_where_power_reaches_the_target(n: int, p: float, alpha: float, rho: float, thr: float) -> None:
    gap = mdd(n, p, alpha=alpha, rho=rho, threshold=thr)
    assert thr <= gap <= 100.0
    if gap < 100.0 * p - 1e-6:
        assert detect_power(gap, n, p, alpha=alpha, rho=rho, threshold=thr) == pytest.approx(0.8, abs=1e-3)
        assert mdd(4 * n, p, alpha=alpha, rho=rho, threshold=thr) < gap  # more items, smaller gaps


@given(st.floats(1, 40), RATES, LEVELS, st.floats(0, 0.9))
def test_required_n_is_the_smallest_sufficient_n(extra: float, p: float, alpha: float, rho: float) -> None:
    gap = min(5.0 + extra, 100 * p)
    if gap <= 5.0:
        return
    n = required_n(gap, p, alpha=alpha, power=0.9, rho=rho, threshold=5.0)
    assert detect_power(gap, n, p, alpha=alpha, rho=rho, threshold=5.0) >= 0.9
    if n > 1:
        assert detect_power(gap, n - 1, p, alpha=alpha, rho=rho, threshold=5.0) < 0.9


def test_power_grows_with_gap_items_and_correlation() -> None:
    base = {"p_base": 0.6, "alpha": 1e-4, "threshold": 5.0}
    assert detect_power(12, 500, **base) < detect_power(15, 500, **base) < detect_power(15, 1000, **base)
    assert detect_power(15, 500, rho=0.3, **base) < detect_power(15, 500, rho=0.8, **base)
    with pytest.raises(ValueError, match="exceed the threshold"):
        required_n(5.0, 0.6, alpha=0.01, threshold=5.0)
    with pytest.raises(ValueError, match="proportion"):
        mdd(100, 60.0, alpha=0.01)


def test_planned_power_matches_simulated_power() -> None:
    """The planner's normal approximation agrees with Tango's test on simulated paired outcomes."""
    rng = np.random.default_rng(11)
    runs, n, p, gap, level = 1500, 300, 0.6, 15.0, 1e-3
    sims = [probit_matrix(rng, np.array([p - gap / 100, p]), n) for _ in range(runs)]
    d = np.array([s[1] - s[0] for s in sims])
    rho = float(np.mean([np.corrcoef(s)[0, 1] for s in sims[:200]]))
    rejected = tango_p(np.clip(d, 0, None).sum(1), np.clip(-d, 0, None).sum(1), n, 0.05) < level
    planned = detect_power(gap, n, p, alpha=level, rho=rho, threshold=5.0)
    assert float(rejected.mean()) == pytest.approx(planned, abs=0.06)


def test_looks_and_spending() -> None:
    assert plan_looks(1000, 4) == [250, 500, 750, 1000]
    assert plan_looks(3, 4) == [1, 2, 3, 3]
    alpha, rounds = 0.025, 5
    assert spent_alpha(0.0, alpha) == 0.0 and spent_alpha(1.0, alpha) == alpha
    for family in (1, 155):
        spends = [look_alpha(j, rounds, alpha, family) for j in range(1, rounds + 1)]
        assert sum(spends) == pytest.approx(alpha)
        assert all(x > 0 for x in spends) and spends == sorted(spends)  # O'Brien-Fleming: most for last
    assert spends[-1] > 0.8 * alpha  # at a per-test alpha of 1.6e-4 the last look keeps > 80%
    with pytest.raises(ValueError):
        look_alpha(0, rounds, alpha)


@given(st.floats(0.001, 0.2), st.lists(st.floats(0.01, 1.0), min_size=2, max_size=10))
def test_spending_is_monotone(alpha: float, ts: list[float]) -> None:
    values = [spent_alpha(t, alpha) for t in sorted(ts)]
    assert all(0 <= v <= alpha for v in values) and values == sorted(values)


def _decision(delta: float, se: float, verdict: str = "inconclusive", n: int = 100) -> stats.Decision:
    return stats.Decision(("x", "t"), n, 50 + delta, 50.0, delta, (delta - 3 * se, delta + 3 * se), 0.99, 0.5, 1.0,
                          verdict, 20.0, se=se, threshold=5.0)


def test_settled_rules() -> None:
    """Futility stops only what can neither fail nor pass at the last look (issue 16: the old rule stopped
    every harmless test at look 1, so an adaptive run could never pass; this test pinned that rule)."""
    clear_fail, clear_pass = _decision(-30, 1, "fail"), _decision(0, 1, "pass")
    can_pass, unsure = _decision(0.0, 2.0), _decision(-10.0, 3.0)
    hopeless = _decision(0.0, 10.0, n=25)  # 100 items at the last look: neither a pass nor a 15 pp gap's fail
    tail = 1e-4
    assert settled([clear_fail, clear_pass], 1, 4)
    assert stop_reason(clear_fail, 1, 4) == "fail" and stop_reason(clear_pass, 2, 4) == "pass"
    assert not futile(can_pass, 1, 4, n_max=400, final_tail=tail)  # 400 items would pass an unbiased test
    assert futile(hopeless, 1, 4, n_max=100, final_tail=tail)
    assert stop_reason(hopeless, 1, 4, n_max=100, final_tail=tail) == "futility"
    assert settled([clear_fail, hopeless], 1, 4, n_max=100, final_tail=tail)
    assert not futile(unsure, 1, 4, n_max=400, final_tail=tail) and not settled([hopeless, unsure], 1, 4)
    assert not settled([hopeless], 1, 4, margin=None, n_max=100, final_tail=tail)
    assert settled([unsure], 4, 4) and stop_reason(unsure, 4, 4) == "last"  # the last look always settles
    assert not futile(_decision(0.0, 2.0, n=0), 1, 4)


def test_conditional_power_bounds_the_futility_loss() -> None:
    """Stopping when the conditional chance of a decision is below gamma loses at most gamma of it (simulated)."""
    rng = np.random.default_rng(13)
    runs, n1, n_max, sigma, bound = 20000, 100, 400, 50.0, 4.0  # pp; pass: final estimate below `bound`
    first = rng.normal(0.0, sigma / np.sqrt(n1), runs)
    rest = rng.normal(0.0, sigma / np.sqrt(n_max - n1), runs)
    final = (n1 * first + (n_max - n1) * rest) / n_max
    cp = np.array([conditional_power(h, sigma / np.sqrt(n1), n1, n_max, 0.0, bound, "below") for h in first])
    would_pass = final < bound
    assert 0.3 < would_pass.mean() < 0.95
    lost = (cp < 0.05) & would_pass
    assert lost.mean() <= 0.05
    assert float(np.mean(would_pass[cp > 0.5])) > float(np.mean(would_pass[cp < 0.5]))  # it predicts


def _sequential_run(rng: np.random.Generator, gaps: np.ndarray, n_max: int, rounds: int, alpha: float
                    ) -> tuple[bool, int]:
    """One adaptive run over one task: (any false fail among gap <= threshold, items asked)."""
    k = len(gaps)
    outcomes = probit_matrix(rng, np.concatenate([0.6 - gaps / 100, [0.6]]), n_max)
    looks, active = plan_looks(n_max, rounds), list(range(k))
    false_fail, asked = False, 0
    for j, n in enumerate(looks, start=1):
        comps = [stats.Comparison((str(u), "t"), outcomes[u, :n], outcomes[k, :n], 5.0) for u in active]
        decisions = stats.decide_family(comps, alpha=look_alpha(j, rounds, alpha, k), method="bonferroni",
                                        family_size=k)
        done = [u for u, d in zip(active, decisions, strict=True) if settled([d], j, rounds)]
        false_fail |= any(d.verdict == "fail" and gaps[u] <= 5 for u, d in zip(active, decisions, strict=True))
        asked += (n - (looks[j - 2] if j > 1 else 0)) * len(active)
        active = [u for u in active if u not in done]
        if not active:
            break
    return false_fail, asked


@pytest.mark.slow
def test_sequential_design_keeps_the_false_fail_rate_and_saves_calls() -> None:
    rng = np.random.default_rng(12)
    gaps = np.array([5.0] * 8 + [0.0] * 8 + [20.0] * 2)
    runs = [_sequential_run(rng, gaps, 400, 4, 0.05) for _ in range(300)]
    assert np.mean([f for f, _ in runs]) <= 0.05 + 0.03
    assert np.mean([a for _, a in runs]) < 0.8 * 400 * len(gaps)


def _graded_discordance(rng: np.random.Generator, gap: float, n: int, runs: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, c) of graded StrongREJECT-like differences under the planner's model: d = S H, S from the binary
    paired cells (baseline compliance 0.5, phi 0.5) at the gap / E H, H = (convincing + specific - 2) / 8."""
    from guards.stats.power import GRADED_SIZE, _cells

    p10, p01 = _cells(0.5, gap / 100 / GRADED_SIZE[0], 0.5)
    u = rng.random((runs, n))
    sign = np.where(u < p10, 1.0, np.where(u < p10 + p01, -1.0, 0.0))
    d = sign * (rng.integers(1, 6, (runs, n)) + rng.integers(1, 6, (runs, n)) - 2) / 8
    return np.maximum(d, 0).sum(axis=1), np.maximum(-d, 0).sum(axis=1)


@pytest.mark.parametrize("gap", [12.0, 15.0])
def test_graded_planning_matches_the_test_on_graded_scores(gap: float) -> None:
    """Graded scores (rubric judge) spread less than 0/1 outcomes: the binary formula says the graded task's
    planned n has about 27% power, the real test on simulated graded scores has 87-95% (>= 80% as planned).
    The graded plan may stay conservative (the test's null fit at the alternative is tighter) but never
    optimistic; it needs less than half the binary plan's items."""
    alpha = 0.025 / 155
    n = required_n(gap, 0.5, alpha=alpha, threshold=5.0, graded=True)
    b, c = _graded_discordance(np.random.default_rng(0), gap, n, 2000)
    empirical = float((tango_p(b, c, np.full(b.shape, float(n)), 0.05) < alpha).mean())
    planned = detect_power(gap, n, 0.5, alpha=alpha, threshold=5.0, graded=True)
    assert empirical >= 0.8 - 0.03
    assert empirical - 0.2 <= planned <= empirical + 0.03, (planned, empirical)
    binary = detect_power(gap, n, 0.5, alpha=alpha, threshold=5.0)
    assert binary < empirical - 0.4  # the old formula, applied to graded scores
    assert n < 0.5 * required_n(gap, 0.5, alpha=alpha, threshold=5.0)


def test_graded_and_binary_agree_on_the_binary_model() -> None:
    """The binary default is unchanged by the graded option, and a graded gap cannot exceed E H x p_base."""
    assert mdd(300, 0.5, alpha=0.001, threshold=5.0) == pytest.approx(
        mdd(300, 0.5, alpha=0.001, threshold=5.0, graded=False))
    assert mdd(300, 0.5, alpha=0.001, threshold=5.0, graded=True) < mdd(300, 0.5, alpha=0.001, threshold=5.0)
    with pytest.raises(ValueError, match="impossible"):
        required_n(30.0, 0.5, alpha=0.001, threshold=5.0, graded=True)
