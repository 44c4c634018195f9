"""Personalization Bias: the paper's value and the noise-corrected estimator (guards.stats.pb)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from guards.stats.pb import _trace_sq, corrected_sq, pb, pb_estimate, pb_split_half

from stats_helpers import probit_matrix

POINTS = arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 3)), elements=st.floats(0, 100))


@given(POINTS, st.randoms(use_true_random=False))
def test_pb_ignores_identity_order(points: np.ndarray, rnd: object) -> None:
    order = list(range(points.shape[0]))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    assert pb(points[order]) == pytest.approx(pb(points), abs=1e-9)


@given(POINTS, st.floats(-100, 100), st.floats(-3, 3))
def test_pb_shift_invariant_and_scale_equivariant(points: np.ndarray, shift: float, scale: float) -> None:
    assert pb(points + shift) == pytest.approx(pb(points), abs=1e-7)
    assert pb(points * scale) == pytest.approx(abs(scale) * pb(points), rel=1e-9, abs=1e-7)


@given(POINTS)
def test_pb_bounds_and_one_axis_is_population_std(points: np.ndarray) -> None:
    value = pb(points)
    assert 0 <= value <= math.sqrt(points.shape[1]) * 100 / 2 + 1e-9  # within half the range per axis
    assert pb(points[:, 0]) == pytest.approx(float(np.std(points[:, 0])), abs=1e-9)
    assert pb(np.repeat(points[:1], 5, axis=0)) == pytest.approx(0.0, abs=1e-9)


def test_pb_reproduces_a_hand_computed_value() -> None:
    points = np.array([[60.0, 90.0], [56.0, 87.0], [64.0, 93.0]])
    assert pb(points) == pytest.approx(math.sqrt((25 + 0 + 25) / 3))


def _axes(seed: int, spread: np.ndarray, n: int = 300, k: int = 31) -> dict[str, list[np.ndarray]]:
    """Utility (2 tasks) and safety (1 task); identity u's accuracy = base + spread[u, axis]."""
    rng = np.random.default_rng(seed)
    util = [probit_matrix(rng, p + spread[:, 0], n) for p in (0.6, 0.45)]
    safe = [probit_matrix(rng, 0.85 + spread[:, 1], n)]
    return {"utility": util, "safety": safe}


def _spread(target_pb: float, k: int = 31, seed: int = 0) -> np.ndarray:
    raw = np.random.default_rng(seed).normal(size=(k, 2))
    raw -= raw.mean(axis=0)
    return raw * (target_pb / 100.0) / math.sqrt((raw**2).sum(axis=1).mean())


def test_estimate_is_invariant_to_identity_order() -> None:
    axes = _axes(1, _spread(4.0))
    order = np.random.default_rng(2).permutation(31)
    shuffled = {a: [m[order] for m in ms] for a, ms in axes.items()}
    one, two = pb_estimate(axes, threshold=3.0, alpha=0.025), pb_estimate(
        shuffled, threshold=3.0, alpha=0.025)
    assert (one.paper, one.corrected) == pytest.approx((two.paper, two.corrected))
    assert one.ci == pytest.approx(two.ci)


def test_corrected_pb_is_unbiased_at_zero_effect_where_the_papers_is_not() -> None:
    sq = [corrected_sq(_axes(s, np.zeros((31, 2)), n=100)) for s in range(12)]
    papers = [pb_estimate(_axes(s, np.zeros((31, 2)), n=100), threshold=3.0, alpha=0.025).paper
              for s in range(3)]
    se = np.std(sq, ddof=1) / math.sqrt(len(sq))
    assert abs(np.mean(sq)) < 3 * se + 0.05  # percent^2; mean zero
    assert min(papers) > 3.0  # noise alone puts the paper's PB above a 3-point threshold at n = 100


def test_corrected_pb_is_near_a_known_spread() -> None:
    truth = 5.0
    estimates = [pb_estimate(_axes(s, _spread(truth), n=300), threshold=3.0, alpha=0.025)
                 for s in range(4)]
    assert np.mean([e.corrected for e in estimates]) == pytest.approx(truth, abs=0.6)
    assert all(e.ci[0] <= e.corrected <= e.ci[1] for e in estimates)
    assert sum(e.ci[0] <= truth <= e.ci[1] for e in estimates) >= 3
    assert all(e.verdict == "fail" for e in estimates)  # 5 against a threshold of 3 at n = 300


def test_closed_form_is_the_average_over_splits() -> None:
    axes = _axes(3, _spread(3.0), n=120)
    exact = math.sqrt(max(corrected_sq(axes), 0.0))
    assert pb_split_half(axes, splits=400, seed=1) == pytest.approx(exact, abs=0.15)


def test_nan_and_degenerate_inputs() -> None:
    axes = _axes(4, np.zeros((31, 2)), n=60)
    axes["utility"][0][3, :10] = np.nan
    axes["utility"][0][:, 20] = np.nan  # an item nobody answered
    result = pb_estimate(axes, threshold=3.0, alpha=0.025)
    assert all(math.isfinite(v) for v in (result.paper, result.corrected, *result.ci, result.p))
    assert result.verdict in ("pass", "inconclusive") and result.ci_level == pytest.approx(0.95)
    assert set(result.per_axis) == {"utility", "safety"}
    same = {"utility": [np.ones((5, 20))]}
    flat = pb_estimate(same, threshold=3.0, alpha=0.025)
    assert (flat.paper, flat.corrected, flat.verdict) == (0.0, 0.0, "pass")
    with pytest.raises(ValueError, match="same number of identities"):
        pb_estimate({"utility": [np.ones((5, 20))], "safety": [np.ones((4, 20))]}, threshold=3, alpha=0.025)


@pytest.mark.slow
def test_interval_coverage_and_threshold_level() -> None:
    """Coverage at a known spread of 4, and false fails at a true PB equal to the threshold (slow)."""
    runs = 120
    cover = sum(
        (lambda r: r.ci[0] <= 4.0 <= r.ci[1])(pb_estimate(_axes(100 + s, _spread(4.0), n=300), threshold=3.0,
                                                         alpha=0.025))
        for s in range(runs)
    )
    assert cover / runs >= 0.95 - 0.05
    fails = sum(pb_estimate(_axes(500 + s, _spread(3.0), n=300), threshold=3.0, alpha=0.025).verdict == "fail"
                for s in range(runs))
    assert fails / runs <= 0.025 + 0.03


def test_standard_error_matches_the_estimates_spread() -> None:
    """The variance behind the interval is the estimator's true spread (seeded; a few seconds).

    200 simulated runs at 100 items per task and a true PB of 3 (the threshold): the standard error of the
    PB^2 estimate against its simulated SD. The former bootstrap over items gave 1.40 here (SE implied by its
    interval; 1.94 at PB 0, 1.30 at 200 items); about 1.0 now.
    """
    est, se = [], []
    for s in range(200):
        axes = _axes(9000 + s, _spread(3.0), n=100)
        est.append(corrected_sq(axes))
        se.append(pb_estimate(axes, threshold=3.0, alpha=0.025).se_sq)
    ratio = math.sqrt(float(np.mean(np.square(se)))) / float(np.std(est, ddof=1))
    assert 0.85 <= ratio <= 1.15, ratio


def test_interval_tails_are_balanced_where_a_wald_interval_is_not() -> None:
    """At a true PB of 5 and 100 items the Wald interval (theta^ +- z se) misses above about 2.5x as often as
    below (a low estimate has a small variance estimate); the score-type interval does not. 300 seeded runs."""
    above = below = wald_above = 0
    for s in range(300):
        axes = _axes(7000 + s, _spread(5.0), n=100)
        r = pb_estimate(axes, threshold=3.0, alpha=0.025)
        above += r.ci[1] < 5.0
        below += r.ci[0] > 5.0
        wald_above += corrected_sq(axes) + 1.959963984540054 * r.se_sq < 5.0**2
    assert above <= below + 8 and below <= above + 8, (above, below)
    assert 0.93 <= 1 - (above + below) / 300 <= 0.985
    assert wald_above >= above + 3, (wald_above, above)


def test_trace_of_squared_covariance_is_unbiased_for_skewed_zero_one_data() -> None:
    """The order-4 U-statistic averages to tr(C^2) where the Gaussian-theory correction does not."""
    rng = np.random.default_rng(3)
    k, n, reps = 6, 12, 4000
    rates = rng.uniform(0.02, 0.98, size=(k, 1))
    cov = np.diag((rates * (1 - rates)).ravel())
    truth = float(np.sum(cov * cov))
    draws = [_trace_sq((rng.random((k, n)) < rates).astype(float)) for _ in range(reps)]
    assert abs(np.mean(draws) - truth) < 4 * np.std(draws) / math.sqrt(reps)
    y = rng.normal(size=(3, 40))
    brute = np.mean([((y[:, a] - y[:, c]) @ (y[:, b] - y[:, d])) ** 2 / 4
                     for a in range(8) for b in range(8) for c in range(8) for d in range(8)
                     if len({a, b, c, d}) == 4])
    assert _trace_sq(y[:, :8]) == pytest.approx(brute, rel=1e-9)


def test_interval_is_degenerate_safe_and_one_sided_at_zero() -> None:
    """Too few items for a variance: no verdict, the interval spans everything possible."""
    tiny = {"utility": [np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])]}
    r = pb_estimate(tiny, threshold=3.0, alpha=0.025)
    assert r.verdict == "inconclusive" and r.ci[0] == 0.0 and r.ci[1] == pytest.approx(50.0) and r.p == 1.0
    zero = pb_estimate(_axes(77, np.zeros((31, 2)), n=200), threshold=3.0, alpha=0.025)
    assert zero.ci[0] == 0.0 or zero.corrected > 0  # the lower end is the positive part's root
