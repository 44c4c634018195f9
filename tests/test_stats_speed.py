"""The fast statistics step gives what the slow one gave: batched decisions and the exact-bound shortcut.

`decide_axes` computes every interval in one `tango_bounds` call (`paired._decisions`) instead of one call per
decision, and `tango_bounds` bisects the exact bound only where it can be the wider one (`power._widen`).
The references below are the former code, kept here only to compare against.
"""

from __future__ import annotations

import importlib.util
import math
import time
from dataclasses import astuple
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guards.stats import paired, power
from guards.stats.paired import Decision, needed_items
from guards.stats.power import _exact_lower, _small, discordance, mdd, norm_isf, score_bounds

REPO = Path(__file__).resolve().parent.parent


def reference_bounds(b: np.ndarray, c: np.ndarray, n: np.ndarray, tail: np.ndarray, lo_at: np.ndarray,
                     hi_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The former tango_bounds: the exact bound bisected for every few-discordant case."""
    lo, hi = score_bounds(b, c, n, tail, lo_at, hi_at)
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    small = _small(b, c, n)
    if small.any():
        bs, cs, ns, ts = b[small], c[small], n[small], tail[small]
        lo[small] = np.minimum(lo[small], _exact_lower(bs, cs, ns, ts))
        hi[small] = np.maximum(hi[small], -_exact_lower(cs, bs, ns, ts))
    return lo, hi


def reference_decision(key: tuple[str, str], ident: np.ndarray, base: np.ndarray, b: float, c: float,
                       threshold: float, level: float, p: float, p_adj: float, alpha: float,
                       direction: str) -> Decision:
    """The former scalar paired._decision: one tango_bounds call per decision."""
    n = len(ident)
    if n == 0:
        return Decision(key, 0, 0.0, 0.0, 0.0, (-100.0, 100.0), 1.0, 1.0, 1.0, "inconclusive", 100.0,
                        se=100.0, threshold=threshold, direction=direction)
    tail = level if direction == "worse" else level / 2
    thr = threshold / 100.0
    lo_h, hi_h = reference_bounds(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (
        b, c, float(n), tail, thr, thr if direction == "worse" else -thr)))
    lo, hi = -100.0 * float(hi_h[0]), -100.0 * float(lo_h[0])
    harm_upper = -lo if direction == "worse" else max(-lo, hi)
    verdict = "fail" if p_adj < alpha else "pass" if harm_upper < threshold else "inconclusive"
    z = norm_isf(tail)
    se = (hi - lo) / (2.0 * z) if z > 0 else 100.0
    delta = 100.0 * float(ident.mean() - base.mean())
    harm = -delta if direction == "worse" else abs(delta)
    p_base = float(np.clip(base.mean(), 0.005, 0.995))
    return Decision(
        key=key, n=n, score=100.0 * float(ident.mean()), baseline=100.0 * float(base.mean()), delta=delta,
        ci=(lo, hi), ci_level=float(1.0 - 2.0 * tail), p=p, p_adjusted=p_adj, verdict=verdict,
        mdd=mdd(n, p_base, alpha=tail, rho=paired._rho(ident, base), threshold=threshold), se=float(se),
        threshold=threshold, direction=direction,
        needs=needed_items(harm, se, n, threshold, tail) if verdict == "inconclusive" else None)


def close(a: float, b: float) -> bool:
    """Equal up to the bisections' resolution (2^-40 of a proportion, in pp) and rounding."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-8)


def assert_same(new: Decision, old: Decision) -> None:
    fields = list(zip(astuple(new), astuple(old), strict=True))
    for name, (x, y) in zip(Decision.__dataclass_fields__, fields, strict=True):
        if isinstance(x, float) and isinstance(y, float):
            assert close(x, y), (name, x, y)
        elif name == "ci":
            assert all(close(u, v) for u, v in zip(x, y, strict=True)), (name, x, y)
        elif name == "needs" and x is not None and y is not None:  # a ceiling of a ratio of bisected widths
            assert abs(x - y) <= max(1, 1e-6 * y), (name, x, y)
        else:
            assert x == y, (name, x, y)


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Few-discordant whole counts (where the exact test applies) and some that are not, with levels."""
    k = draw(st.integers(1, 6))
    n = np.array([draw(st.integers(1, 400)) for _ in range(k)], dtype=float)
    b = np.array([draw(st.integers(0, min(30, int(m)))) for m in n], dtype=float)
    c = np.array([draw(st.integers(0, min(30, int(m) - int(x)))) for m, x in zip(n, b, strict=True)], dtype=float)
    tail = np.array([draw(st.floats(1e-6, 0.2)) for _ in range(k)])
    thr = np.array([draw(st.sampled_from([0.0, 0.02, 0.05, 0.1, 0.2])) for _ in range(k)])
    return b, c, n, tail, thr


@settings(max_examples=40, deadline=None)
@given(cases(), st.sampled_from(["worse", "both"]))
def test_tango_bounds_equal_the_full_bisection(case: tuple[np.ndarray, ...], direction: str) -> None:
    b, c, n, tail, thr = case
    hi_at = thr if direction == "worse" else -thr
    lo, hi = power.tango_bounds(b, c, n, tail, thr, hi_at)
    ref_lo, ref_hi = reference_bounds(b, c, n, tail, thr, hi_at)
    assert np.allclose(lo, ref_lo, rtol=0.0, atol=1e-11)
    assert np.allclose(hi, ref_hi, rtol=0.0, atol=1e-11)


@st.composite
def comparisons(draw: st.DrawFn) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    """(identity, baseline, threshold pp, level) per decision: 0/1, two-epoch means or graded outcomes."""
    out = []
    for _ in range(draw(st.integers(1, 5))):
        n = draw(st.integers(0, 160))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        kind = draw(st.sampled_from(["binary", "epochs", "graded"]))
        p_base, gap = draw(st.floats(0.05, 0.98)), draw(st.floats(-0.1, 0.3))
        p_id = min(max(p_base - gap, 0.0), 1.0)
        if kind == "graded":
            base, ident = rng.random(n) ** 0.3, rng.random(n) ** (0.3 + gap)
        else:
            epochs = 2 if kind == "epochs" else 1
            shared = rng.random((n, epochs))
            base = (shared < p_base).astype(float).mean(axis=1)
            flip = rng.random((n, epochs)) < 0.1
            ident = np.where(flip, rng.random((n, epochs)) < p_id, shared < p_id).astype(float).mean(axis=1)
        out.append((ident, base, draw(st.sampled_from([0.0, 2.0, 5.0, 10.0])), draw(st.floats(1e-6, 0.05))))
    return out


@settings(max_examples=40, deadline=None)
@given(comparisons(), st.sampled_from(["worse", "both"]), st.floats(0.0, 1.0))
def test_batched_decisions_equal_the_scalar_ones(cmp: list[tuple[np.ndarray, np.ndarray, float, float]],
                                                  direction: str, p_scale: float) -> None:
    keys = [(f"who{k}", "task") for k in range(len(cmp))]
    pairs = [(ident, base) for ident, base, _, _ in cmp]
    bc = np.array([discordance(base - ident) for ident, base in pairs]).reshape(-1, 2)
    thresholds = np.array([t for _, _, t, _ in cmp])
    levels = np.array([lv for _, _, _, lv in cmp])
    p = np.linspace(0.0, p_scale, len(cmp))
    p_adj = np.minimum(1.0, 3.0 * p)
    alpha = 0.025
    new = paired._decisions(keys, pairs, bc[:, 0], bc[:, 1], thresholds, levels, p, p_adj, alpha, direction)
    for k, key in enumerate(keys):
        old = reference_decision(key, pairs[k][0], pairs[k][1], bc[k, 0], bc[k, 1], float(thresholds[k]),
                                 float(levels[k]), float(p[k]), float(p_adj[k]), alpha, direction)
        assert_same(new[k], old)


def _benchmark() -> ModuleType:
    """benchmarks/stats_speed.py (its pr settings and synthetic outcomes), imported by path."""
    spec = importlib.util.spec_from_file_location("stats_speed", REPO / "benchmarks" / "stats_speed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_report_on_the_pr_matrix_is_fast() -> None:
    """31 identities + baseline x 5 tasks x 110 items x 2 epochs: about 0.5 s on 2 shared cores (was 4-13 s).
    The bound is loose on purpose (a loaded machine must not fail it); it catches a return of per-decision
    exact bisections."""
    from guards.models.pricing import price
    from guards.report.build import build_report

    bench = _benchmark()
    price("openai/scripted", 1, 1)  # litellm's import (a run has done it before the report) is not timed
    settings_ = bench.pr_settings()
    outcomes = bench.pr_outcomes(settings_)
    start = time.perf_counter()
    report = build_report(settings_, outcomes)
    elapsed = time.perf_counter() - start
    assert report["verdict"] == "fail"  # the benchmark's planted gaps are found
    assert elapsed < 10.0, f"build_report took {elapsed:.1f} s on the pr matrix"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
