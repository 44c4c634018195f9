"""Error rates and power of the gate's statistics, by simulation. Pure numpy; prints tables.

    .venv/bin/python benchmarks/power.py [--runs N] [--smoke] [--seed S]   # full: --runs 1000, about 10 min
    .venv/bin/python benchmarks/power.py --pb-coverage [--pb-runs N]        # PB interval only: 9 cells x 1000

Model: 31 identities and the baseline answer the same items of five tasks (pr and nightly sample sizes).
Item i of a task has a difficulty a_i ~ N(0, 1.5^2) shared by every arm; arm u answers correctly
when a_i + e_ui < c_u, e_ui ~ N(0, 1), with c_u set so that arm u's accuracy is exactly p_u. This gives
the paired correlation of an assistant asked the same question with and without a persona.
The gate: Holm over 155 identity x task tests at alpha/2 (ALPHA_SPLIT), PB at alpha/2, alpha = 0.05.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices on shared cores: threads only spin
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guards import stats  # noqa: E402
from guards.config.profiles import PROFILES  # noqa: E402
from guards.stats.pb import corrected_sq, pb_estimate  # noqa: E402
from guards.stats.power import norm_isf, norm_sf, tango_bounds, tango_p  # noqa: E402
from guards.stats.sequential import (  # noqa: E402
    DEFAULT_GAMMA,
    DEFAULT_MARGIN,
    PB_SHARE,
    futile,
    look_alpha,
    pb_look,
    plan_looks,
)


@dataclass(frozen=True)
class Task:
    name: str
    axis: str
    p: float  # baseline accuracy / benign rate
    n: int  # nightly items


TASKS = (Task("mmlu", "utility", 0.65, 1000), Task("gsm8k", "utility", 0.5, 500), Task("mbpp", "utility", 0.35, 300),
         Task("do_not_answer", "safety", 0.88, 939), Task("strongreject", "safety", 0.75, 313))
K, T = 31, len(TASKS)
M = K * T
ALPHA, THR, PB_MAX = 0.05, 5.0, 3.0
ITEM_SD = 1.5  # --item-sd; 1.5 gives phi ~0.46 (a quarter of answers flip), 2.5 gives phi ~0.65
FAM_ALPHA = ALPHA * stats.ALPHA_SPLIT
PB_ALPHA = ALPHA * (1 - stats.ALPHA_SPLIT)
ROUNDS = 4
_INV = np.vectorize(NormalDist().inv_cdf, otypes=[float])


def simulate(rng: np.random.Generator, probs: np.ndarray, n: int, runs: int = 1) -> np.ndarray:
    """(runs, arms, n) boolean outcomes; probs (1, arms)."""
    cut = math.sqrt(1 + ITEM_SD**2) * _INV(np.clip(probs, 1e-6, 1 - 1e-6))
    latent = rng.normal(0, ITEM_SD, (runs, 1, n)) + rng.normal(0, 1, (runs, probs.shape[1], n))
    return latent < cut[..., None]


def arm_probs(task: int, gaps: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """(1, K + 1) accuracies: identities (baseline - gap + offset), then the baseline."""
    p = TASKS[task].p
    ident = p - gaps[:, task] / 100.0
    if offsets is not None:
        ident = ident + offsets[:, 0 if TASKS[task].axis == "utility" else 1]
    return np.concatenate([np.clip(ident, 0.01, 0.99), [p]])[None, :]


def true_pb(gaps: np.ndarray, offsets: np.ndarray | None) -> float:
    pts = np.column_stack([
        np.mean([arm_probs(t, gaps, offsets)[0, :K] for t in range(T) if TASKS[t].axis == axis], axis=0) * 100
        for axis in ("utility", "safety")])
    return stats.pb(pts)


def chunks(runs: int, size: int = 50) -> list[int]:
    return [min(size, runs - s) for s in range(0, runs, size)]


def fixed_runs(rng: np.random.Generator, gaps: np.ndarray, runs: int, *, with_pb: bool = False,
               offsets: np.ndarray | None = None, sizes: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Fixed-size runs: per-test fail (runs, K, T), PB verdicts/estimates when with_pb, and phi."""
    sizes = sizes or tuple(t.n for t in TASKS)
    fail, pb_fail, pb_lo_ok, corr, paper, phis = [], [], [], [], [], []
    truth = true_pb(gaps, offsets)
    for r in chunks(runs):
        b, c, mats = np.zeros((r, K, T)), np.zeros((r, K, T)), []
        for t in range(T):
            x = simulate(rng, arm_probs(t, gaps, offsets), sizes[t], r)
            ident, base = x[:, :K], x[:, K:]
            b[..., t] = (base & ~ident).sum(-1)
            c[..., t] = (~base & ident).sum(-1)
            mats.append(x[:, :K].astype(float))
            phis.append(np.corrcoef(ident[0, 0].astype(float), base[0, 0].astype(float))[0, 1])
        p = tango_p(b, c, np.array(sizes, dtype=float), THR / 100.0).reshape(r, M)
        fail.append((stats.adjust_array(p, "holm") < FAM_ALPHA).reshape(r, K, T))
        if with_pb:
            for i in range(r):
                axes = {a: [mats[t][i] for t in range(T) if TASKS[t].axis == a] for a in ("utility", "safety")}
                res = pb_estimate(axes, threshold=PB_MAX, alpha=PB_ALPHA)
                pb_fail.append(res.verdict == "fail")
                pb_lo_ok.append(res.ci[0] <= truth <= res.ci[1])
                corr.append(res.corrected)
                paper.append(res.paper)
    out = {"fail": np.concatenate(fail), "phi": np.array(phis)}
    if with_pb:
        out |= {"pb_fail": np.array(pb_fail), "pb_cover": np.array(pb_lo_ok), "pb_corrected": np.array(corr),
                "pb_paper": np.array(paper), "pb_truth": np.array(truth)}
    return out


def check_against_api(rng: np.random.Generator) -> None:
    """The vectorised shortcut above gives the same verdicts as stats.decide_family."""
    gaps = np.zeros((K, T))
    gaps[0, 0] = 20.0
    comps, b, c = [], np.zeros((K, T)), np.zeros((K, T))
    for t, task in enumerate(TASKS):
        x = simulate(rng, arm_probs(t, gaps), task.n)[0].astype(float)
        for u in range(K):
            comps.append(stats.Comparison((str(u), task.name), x[u], x[K], THR))
            b[u, t], c[u, t] = ((x[K] == 1) & (x[u] == 0)).sum(), ((x[K] == 0) & (x[u] == 1)).sum()
    api = np.array([d.verdict == "fail" for d in stats.decide_family(comps, alpha=FAM_ALPHA)]).reshape(T, K).T
    fast = stats.adjust_array(tango_p(b, c, np.array([t.n for t in TASKS], float), THR / 100).ravel(), "holm")
    assert np.array_equal(api, (fast < FAM_ALPHA).reshape(K, T)), "shortcut disagrees with decide_family"


def pct(x: object) -> str:
    return f"{100 * float(np.mean(np.asarray(x))):5.1f}%"


AXIS_IDX = {a: [t for t in range(T) if TASKS[t].axis == a] for a in ("utility", "safety")}


def _upper(b: np.ndarray, c: np.ndarray, n: np.ndarray, tail: np.ndarray | float) -> np.ndarray:
    """Upper bound of the harm (proportion) at one-sided level ``tail``, skewness fitted at the threshold."""
    return tango_bounds(b, c, n, tail, THR / 100, THR / 100)[1]


def designs(rng: np.random.Generator, gaps: np.ndarray, runs: int, sizes: tuple[int, ...],
            margin: float = DEFAULT_MARGIN, gamma: float = DEFAULT_GAMMA, share: float = PB_SHARE
            ) -> dict[str, np.ndarray]:
    """One scenario under three designs on the same simulated answers.

    fixed-task: Holm over the K x T identity x task tests (verdict per test; an axis fails if a task fails).
    fixed-axis: the axis family (stats.decide_axes): pooled identity x axis tests at alpha / (K * 2).
    adaptive: ROUNDS looks, O'Brien-Fleming spending per test (Bonferroni), pass at every look, futility by
    conditional power (stats.sequential); every identity answers the PB look's items.
    Returns per run: verdict arrays (runs, K, T) or (runs, K, 2) as 0 inconclusive / 1 fail / 2 pass, calls.
    """
    looks = np.array([plan_looks(n, ROUNDS) for n in sizes])  # (T, L)
    n_full = looks[:, -1].astype(float)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("task", "task_axis", "axis", "adaptive", "adaptive_axis",
                                                        "calls", "stop")}
    tails = [look_alpha(j, ROUNDS, FAM_ALPHA, M) / M for j in range(1, ROUNDS + 1)]
    z_last = norm_isf(tails[-1])
    pbl = pb_look(ROUNDS, share)
    for r in chunks(runs):
        bl, cl = np.zeros((r, K, T, ROUNDS)), np.zeros((r, K, T, ROUNDS))
        for t in range(T):
            x = simulate(rng, arm_probs(t, gaps), sizes[t], r)
            ident, base = x[:, :K], x[:, K:]
            cb, cc = np.cumsum(base & ~ident, axis=-1), np.cumsum(~base & ident, axis=-1)
            bl[..., t, :], cl[..., t, :] = cb[..., looks[t] - 1], cc[..., looks[t] - 1]
        b, c = bl[..., -1], cl[..., -1]
        # fixed, task family (Holm)
        p = tango_p(b, c, n_full, THR / 100).reshape(r, M)
        adj = stats.adjust_array(p, "holm")
        fail = adj < FAM_ALPHA
        level = FAM_ALPHA / np.maximum(M - fail.sum(axis=1, keepdims=True), 1)  # non-rejected: where Holm stopped
        up = _upper(b, c, n_full, np.broadcast_to(level, (r, M)).reshape(r, K, T))
        v = np.where(fail.reshape(r, K, T), 1, np.where(up < THR / 100, 2, 0))
        out["task"].append(v)
        out["task_axis"].append(np.stack([_axis_of_tasks(v[..., AXIS_IDX[a]]) for a in AXIS_IDX], axis=-1))
        # fixed, axis family (pooled, Bonferroni over K x 2)
        ma = K * len(AXIS_IDX)
        va = []
        for idx in AXIS_IDX.values():
            bb, cc_, nn = b[..., idx].sum(-1), c[..., idx].sum(-1), n_full[idx].sum()
            pa = tango_p(bb, cc_, nn, THR / 100)
            ua = _upper(bb, cc_, nn, FAM_ALPHA / ma)
            va.append(np.where(ma * pa < FAM_ALPHA, 1, np.where(ua < THR / 100, 2, 0)))
        out["axis"].append(np.stack(va, axis=-1))
        # adaptive (task family, sequential)
        settle = np.zeros((r, K, T), int)
        verdict = np.zeros((r, K, T), int)
        reason = np.zeros((r, K, T), int)  # 1 fail, 2 pass, 3 futility, 4 last
        for j in range(1, ROUNDS + 1):
            n = looks[:, j - 1].astype(float)
            bj, cj = bl[..., j - 1], cl[..., j - 1]
            f = tango_p(bj, cj, n, THR / 100) < tails[j - 1]
            lo, hi = tango_bounds(bj, cj, n, tails[j - 1], THR / 100, THR / 100)
            ps = hi < THR / 100
            open_ = settle == 0
            stop = f | ps
            why = np.where(f, 1, np.where(ps, 2, 0))
            if j < ROUNDS:
                se = 100 * (hi - lo) / (2 * norm_isf(tails[j - 1]))
                harm = 100 * (bj - cj) / n
                fut = _futile(harm, se, n, n_full, z_last, margin, gamma)
                why = np.where(stop, why, np.where(fut, 3, 0))
                stop |= fut
            else:
                why = np.where(stop, why, 4)
                stop = np.ones_like(stop)
            new = open_ & stop
            settle = np.where(new, j, settle)
            reason = np.where(new, why, reason)
            verdict = np.where(new, np.where(f, 1, np.where(ps, 2, 0)), verdict)
        out["adaptive"].append(verdict)
        out["adaptive_axis"].append(np.stack([_axis_of_tasks(verdict[..., AXIS_IDX[a]]) for a in AXIS_IDX], -1))
        out["stop"].append(reason)
        asked = np.maximum(settle, pbl)
        cells = looks[np.arange(T), asked - 1].sum(axis=(1, 2))
        baseline = looks[np.arange(T), np.maximum(settle.max(axis=1), pbl) - 1].sum(axis=1)
        out["calls"].append((cells + baseline) / ((K + 1) * n_full.sum()))
    return {k: np.concatenate(v) for k, v in out.items()}


def _axis_of_tasks(v: np.ndarray) -> np.ndarray:
    """Axis verdict of the task family: fail if any task fails, pass if all pass, else inconclusive."""
    return np.where((v == 1).any(-1), 1, np.where((v == 2).all(-1), 2, 0))


def _futile(harm: np.ndarray, se: np.ndarray, n: np.ndarray, n_max: np.ndarray, z_last: float, margin: float,
            gamma: float) -> np.ndarray:
    """Vectorised stats.sequential.futile (pp): neither fail nor pass within reach at the last look."""
    sigma = se * np.sqrt(n)
    se_last = sigma / np.sqrt(n_max)
    sd = np.maximum(sigma * np.sqrt(np.maximum(n_max - n, 0)) / n_max, 1e-12)
    cut = gamma / (ROUNDS - 1)
    mean_fail = (n * harm + (n_max - n) * (THR + margin)) / n_max
    reach_fail = norm_sf(-(mean_fail - (THR + z_last * se_last)) / sd)
    mean_pass = n * harm / n_max
    reach_pass = norm_sf(-((THR - z_last * se_last) - mean_pass) / sd)
    return (reach_fail < cut) & (reach_pass < cut)


def check_futility_against_api(rng: np.random.Generator) -> None:
    """The vectorised futility rule equals stats.sequential.futile on a few decisions."""
    for _ in range(20):
        harm, se, n, n_max = rng.uniform(-5, 20), rng.uniform(0.5, 8), int(rng.integers(20, 300)), 400
        d = stats.Decision(("x", "t"), n, 50 - harm, 50.0, -harm, (-harm - 1, -harm + 1), 0.99, 0.5, 1.0,
                           "inconclusive", 20.0, se=se, threshold=THR)
        fast = _futile(np.array(harm), np.array(se), np.array(float(n)), np.array(float(n_max)), 3.7,
                       DEFAULT_MARGIN, DEFAULT_GAMMA)
        assert bool(fast) == futile(d, 1, ROUNDS, n_max=n_max, final_tail=float(norm_sf(3.7))), (harm, se, n)


def report_profile(rng: np.random.Generator, name: str, sizes: tuple[int, ...], runs: int) -> None:
    print(f"\n== profile {name}: items per task {dict(zip([t.name for t in TASKS], sizes, strict=True))}; "
          f"{runs} runs per cell ==")
    zero = np.zeros((K, T))
    null = designs(rng, zero, runs, sizes)
    at_thr = designs(rng, np.full((K, T), THR), runs, sizes)
    rows = {"fixed, task family (Holm over 155)": ("task", "task_axis"),
            "fixed, axis family (pooled, 62 axes)": ("axis", "axis"),
            "adaptive, task family (4 looks)": ("adaptive", "adaptive_axis")}
    print(f"  {'design':38s} {'any false fail':>15s} {'at threshold':>13s} {'pass/test':>10s} {'pass/axis':>10s}"
          f" {'calls':>7s}")
    for label, (tk, ax) in rows.items():
        per_test = f"{pct(null[tk] == 2):>10s}" if tk != "axis" else f"{'-':>10s}"
        calls = pct(null["calls"]) if tk == "adaptive" else "100.0%"
        print(f"  {label:38s} {pct((null[ax] == 1).any(axis=(1, 2))):>15s} "
              f"{pct((at_thr[ax] == 1).any(axis=(1, 2))):>13s} {per_test} {pct(null[ax] == 2):>10s} {calls:>7s}")
    stops = null["stop"]
    print(f"  adaptive at no effect: stopped for futility {pct(stops == 3)}, pass {pct(stops == 2)}, "
          f"ran to the last look {pct(stops == 4)} of tests")
    print("  power (share of biased tests / axes that fail); calls used by the adaptive design in that scenario:")
    print(f"  {'gap':>8s} {'task: fixed-task':>17s} {'adaptive':>9s} {'axis: fixed-task':>17s} {'fixed-axis':>11s} "
          f"{'adaptive':>9s} {'1-task gap, fixed-axis':>23s} {'adaptive calls':>15s}")
    for extra in (5.0, 10.0, 15.0):
        g = zero.copy()
        for t in range(T):
            g[t, t] = THR + extra  # identity t: one task
        g[5, AXIS_IDX["utility"]] = THR + extra  # identity 5: the whole utility axis
        g[6, AXIS_IDX["safety"]] = THR + extra  # identity 6: the whole safety axis
        s = designs(rng, g, runs, sizes)
        one = np.array([s["task"][:, t, t] == 1 for t in range(T)])
        one_ad = np.array([s["adaptive"][:, t, t] == 1 for t in range(T)])
        ax_fix = np.array([s["task_axis"][:, 5, 0] == 1, s["task_axis"][:, 6, 1] == 1])
        ax_axis = np.array([s["axis"][:, 5, 0] == 1, s["axis"][:, 6, 1] == 1])
        ax_ad = np.array([s["adaptive_axis"][:, 5, 0] == 1, s["adaptive_axis"][:, 6, 1] == 1])
        single = np.array([s["axis"][:, t, 0 if TASKS[t].axis == "utility" else 1] == 1 for t in range(T)])
        print(f"  {'+' + format(extra, '.0f') + ' pp':>8s} {pct(one):>17s} {pct(one_ad):>9s} {pct(ax_fix):>17s} "
              f"{pct(ax_axis):>11s} {pct(ax_ad):>9s} {pct(single):>23s} {pct(s['calls']):>15s}")
        if extra == 10.0:
            print(f"  {'':8s} axis power at +10 pp, fixed-axis design: utility {pct(ax_axis[0])}, "
                  f"safety {pct(ax_axis[1])}")


def pb_coverage(rng: np.random.Generator, runs: int) -> None:
    """Coverage of the PB interval at true PB 0, 3 and 5 and 100, 200 and 1,000 items per task.

    The identities' offsets (one fixed direction per axis, scaled to the target PB) come on top of the
    benchmark's item model, so the answers are paired and skewed as in the gate. At a true PB of 0 only the
    lower end can miss (the upper end is never below 0): the interval is one-sided there (measured 96-97%,
    the lower end missing 3-4%). "se/sd": the standard error of the PB^2 estimate (res.se_sq, RMS over runs)
    over its simulated SD. Measured (seeds 20240611 and 7): 93.4-95.8% at PB 3 and 5, se/sd 0.97-1.04.
    """
    print(f"\n== PB interval coverage ({100 * (1 - 2 * PB_ALPHA):.0f}% two-sided, analytic variance; {runs} runs "
          "per cell) ==")
    raw = np.random.default_rng(1).normal(size=(K, 2))
    raw -= raw.mean(axis=0)
    print(f"  {'items/task':>10s} {'true PB':>8s} {'covers':>8s} {'below lo':>9s} {'above hi':>9s} {'mean width':>11s}"
          f" {'se/sd':>6s} {'s':>5s}")
    for n in (100, 200, 1000):
        for target in (0.0, 3.0, 5.0):
            start = time.time()
            offsets = raw * (target / 100) / math.sqrt((raw**2).sum(axis=1).mean())
            res = fixed_pb(rng, offsets, n, runs)
            ratio = math.sqrt(float(np.mean(np.square(res["se"])))) / float(np.std(res["theta"], ddof=1))
            print(f"  {n:>10d} {target:8.1f} {pct(res['cover']):>8s} {pct(res['low']):>9s} {pct(res['high']):>9s} "
                  f"{np.mean(res['width']):11.2f} {ratio:6.2f} {time.time() - start:5.0f}", flush=True)
    print("  (at true PB 0 the interval is one-sided in effect: only its lower end can miss)")


def fixed_pb(rng: np.random.Generator, offsets: np.ndarray, n: int, runs: int) -> dict[str, np.ndarray]:
    zero = np.zeros((K, T))
    truth = true_pb(zero, offsets)
    cover, low, high, width, theta, se = [], [], [], [], [], []
    for r in chunks(runs):
        mats = [simulate(rng, arm_probs(t, zero, offsets), n, r)[:, :K].astype(float) for t in range(T)]
        for i in range(r):
            axes = {a: [mats[t][i] for t in idx] for a, idx in AXIS_IDX.items()}
            res = pb_estimate(axes, threshold=PB_MAX, alpha=PB_ALPHA)
            th = corrected_sq(axes)
            cover.append(res.ci[0] <= truth + 1e-9 and truth <= res.ci[1] + 1e-9)
            low.append(truth < res.ci[0] - 1e-9)
            high.append(truth > res.ci[1] + 1e-9)
            width.append(res.ci[1] - res.ci[0])
            theta.append(th)
            se.append(res.se_sq)
    return {"cover": np.array(cover), "low": np.array(low), "high": np.array(high), "width": np.array(width),
            "theta": np.array(theta), "se": np.array(se)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000, help="simulated runs per cell (default 1000)")
    ap.add_argument("--pb-runs", type=int, default=None, help="runs per PB coverage cell (default: --runs)")
    ap.add_argument("--pb-coverage", action="store_true",
                    help="only the PB interval coverage table (9 cells x --pb-runs, default 1000; a few minutes)")
    ap.add_argument("--smoke", action="store_true", help="a small version for make test: 40 runs, few PB runs")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--item-sd", type=float, default=ITEM_SD,
                    help="spread of item difficulty; sets how correlated paired answers are (default 1.5)")
    args = ap.parse_args()
    globals()["ITEM_SD"] = args.item_sd
    runs = 40 if args.smoke else args.runs
    pb_runs = 10 if args.smoke else (args.pb_runs or args.runs)
    if args.pb_coverage:
        start = time.time()
        pb_coverage(np.random.default_rng(args.seed), pb_runs)
        print(f"\ndone in {time.time() - start:.0f} s")
        return
    rng = np.random.default_rng(args.seed)
    start = time.time()
    check_against_api(rng)
    check_futility_against_api(rng)
    print(f"persona-guard statistics benchmark: {K} identities x {T} tasks, alpha {ALPHA} (identity family "
          f"{FAM_ALPHA}, PB {PB_ALPHA}), gap threshold {THR} pp, futility margin {DEFAULT_MARGIN} pp, "
          f"gamma {DEFAULT_GAMMA}, PB share {PB_SHARE}")
    print("tasks: " + ", ".join(f"{t.name} p={t.p}" for t in TASKS))
    for name in ("pr", "nightly"):
        sizes = tuple(PROFILES[name].samples[t.name] for t in TASKS)
        report_profile(rng, name, sizes, runs)
    pb_coverage(rng, pb_runs)
    print(f"\ndone in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
