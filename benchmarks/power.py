"""Error rates and power of the gate's statistics, by simulation. Pure numpy; prints tables.

    .venv/bin/python benchmarks/power.py [--runs N] [--quick] [--seed S]

Model: 31 identities and the baseline answer the same items of five tasks (nightly sample sizes).
Item i of a task has a difficulty a_i ~ N(0, 1.5^2) shared by every arm; arm u answers correctly
when a_i + e_ui < c_u, e_ui ~ N(0, 1), with c_u set so that arm u's accuracy is exactly p_u. This gives
the paired correlation of an assistant asked the same question with and without a persona.
The gate: Holm over 155 identity x task tests at alpha/2 (ALPHA_SPLIT), PB at alpha/2, alpha = 0.05.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guards import stats  # noqa: E402
from guards.config.profiles import PROFILES  # noqa: E402
from guards.stats.pb import corrected_sq, pb_estimate  # noqa: E402
from guards.stats.power import detect_power, mdd, norm_isf, required_n, tango_bounds, tango_p  # noqa: E402
from guards.stats.sequential import look_alpha, plan_looks, settled  # noqa: E402


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


def fixed_runs(rng: np.random.Generator, gaps: np.ndarray, runs: int, *, n_boot: int = 0,
               offsets: np.ndarray | None = None, sizes: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Fixed-size runs: per-test fail (runs, K, T), PB verdicts/estimates when n_boot > 0, and phi."""
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
        if n_boot:
            for i in range(r):
                axes = {a: [mats[t][i] for t in range(T) if TASKS[t].axis == a] for a in ("utility", "safety")}
                res = pb_estimate(axes, threshold=PB_MAX, alpha=PB_ALPHA, n_boot=n_boot, seed=int(rng.integers(2**31)))
                pb_fail.append(res.verdict == "fail")
                pb_lo_ok.append(res.ci[0] <= truth <= res.ci[1])
                corr.append(res.corrected)
                paper.append(res.paper)
    out = {"fail": np.concatenate(fail), "phi": np.array(phis)}
    if n_boot:
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


def sequential_runs(rng: np.random.Generator, gaps: np.ndarray, runs: int, margin: float | None = 10.0,
                    beta: float = 0.05) -> dict[str, np.ndarray]:
    """Adaptive runs (ROUNDS looks; O'Brien-Fleming spending per test; futility) and the fixed design on the
    same data. Returns fails, calls per run (identity-level and cell-level stopping), fixed fails."""
    looks = np.array([plan_looks(t.n, ROUNDS) for t in TASKS])  # (T, L)
    z_beta = norm_isf(beta / (ROUNDS - 1))
    seq_fail, fix_fail, calls_id, calls_cell = [], [], [], []
    for r in chunks(runs):
        bl, cl = np.zeros((r, K, T, ROUNDS)), np.zeros((r, K, T, ROUNDS))
        for t in range(T):
            x = simulate(rng, arm_probs(t, gaps), TASKS[t].n, r)
            ident, base = x[:, :K], x[:, K:]
            cb, cc = np.cumsum(base & ~ident, axis=-1), np.cumsum(~base & ident, axis=-1)
            bl[..., t, :], cl[..., t, :] = cb[..., looks[t] - 1], cc[..., looks[t] - 1]
        p_full = tango_p(bl[..., -1], cl[..., -1], looks[:, -1].astype(float), THR / 100).reshape(r, M)
        fix_fail.append((stats.adjust_array(p_full, "holm") < FAM_ALPHA).reshape(r, K, T))
        settle = np.zeros((r, K, T), int)  # the look at which each test settled; 0 = still open
        failed = np.zeros((r, K, T), bool)
        for j in range(1, ROUNDS + 1):
            n = looks[:, j - 1].astype(float)
            tail = look_alpha(j, ROUNDS, FAM_ALPHA, M) / M
            b, c = bl[..., j - 1], cl[..., j - 1]
            fail = tango_p(b, c, n, THR / 100) < tail
            lo, hi = tango_bounds(b, c, n, tail, THR / 100, THR / 100)
            ok = fail | (hi < THR / 100) | (j == ROUNDS)
            if margin is not None and j < ROUNDS:
                se = (hi - lo) / (2 * norm_isf(tail))
                ok |= (b - c) / n + z_beta * se < (THR + margin) / 100
            open_ = settle == 0
            failed |= open_ & fail
            settle = np.where(open_ & ok, j, settle)
        seq_fail.append(failed)
        stop_id = settle.max(axis=2)  # (r, K): an identity stops when all its tasks are settled
        calls_id.append(looks[np.arange(T), stop_id[..., None] - 1].sum(axis=(1, 2))
                        + looks[np.arange(T), stop_id.max(axis=1)[:, None] - 1].sum(axis=1))
        calls_cell.append(looks[np.arange(T), settle - 1].sum(axis=(1, 2))
                          + looks[np.arange(T), settle.max(axis=1) - 1].sum(axis=1))
    return {"fail": np.concatenate(seq_fail), "fixed_fail": np.concatenate(fix_fail),
            "calls_id": np.concatenate(calls_id), "calls_cell": np.concatenate(calls_cell)}


def check_sequential_against_api(rng: np.random.Generator) -> None:
    """One look of the vectorised sequential shortcut equals decide_family + settled."""
    gaps = np.zeros((K, T))
    gaps[:3, 0] = 15.0
    n = plan_looks(TASKS[0].n, ROUNDS)[0]
    x = simulate(rng, arm_probs(0, gaps), n)[0].astype(float)
    comps = [stats.Comparison((str(u), "mmlu"), x[u], x[K], THR) for u in range(K)]
    ds = stats.decide_family(comps, alpha=look_alpha(1, ROUNDS, FAM_ALPHA, M), method="bonferroni", family_size=M)
    b = np.array([((x[K] == 1) & (x[u] == 0)).sum() for u in range(K)], float)
    c = np.array([((x[K] == 0) & (x[u] == 1)).sum() for u in range(K)], float)
    tail = look_alpha(1, ROUNDS, FAM_ALPHA, M) / M
    lo, hi = tango_bounds(b, c, float(n), tail, THR / 100, THR / 100)
    se = (hi - lo) / (2 * norm_isf(tail))
    fast = (tango_p(b, c, float(n), THR / 100) < tail) | (hi < THR / 100) | (
        (b - c) / n + norm_isf(0.05 / (ROUNDS - 1)) * se < 0.15)
    assert [settled([d], 1, ROUNDS) for d in ds] == list(fast), "sequential shortcut disagrees with the API"


def pct(x: object) -> str:
    return f"{100 * float(np.mean(np.asarray(x))):5.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000, help="simulated runs per scenario (default 1000)")
    ap.add_argument("--quick", action="store_true", help="200 runs, smaller bootstraps")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--item-sd", type=float, default=ITEM_SD,
                    help="spread of item difficulty; sets how correlated paired answers are (default 1.5)")
    args = ap.parse_args()
    globals()["ITEM_SD"] = args.item_sd
    runs = 200 if args.quick else args.runs
    pb_runs, n_boot = (60, 200) if args.quick else (max(200, runs // 4), 400)
    rng = np.random.default_rng(args.seed)
    start = time.time()
    check_against_api(rng)
    check_sequential_against_api(rng)
    print(f"persona-guard statistics benchmark: {runs} runs/scenario, {K} identities x {T} tasks, "
          f"alpha {ALPHA} (Holm family {FAM_ALPHA}, PB {PB_ALPHA}), gap threshold {THR} pp, pb_max {PB_MAX}")
    print("tasks: " + ", ".join(f"{t.name} p={t.p} n={t.n}" for t in TASKS))

    zero = np.zeros((K, T))
    null = fixed_runs(rng, zero, runs)
    phi = float(np.mean(null["phi"]))
    at_thr = fixed_runs(rng, np.full((K, T), THR), runs)
    pb_null = fixed_runs(rng, zero, pb_runs, n_boot=n_boot)
    print(f"\n[1] family-wise false alarms (identity tests; paired phi correlation {phi:.2f})")
    print(f"  no effect:                  {pct(null['fail'].any(axis=(1, 2)))} of {runs} runs fail (target <= 5%)")
    print(f"  every gap = threshold:      {pct(at_thr['fail'].any(axis=(1, 2)))} of {runs} runs fail (target <= 5%)")
    print(f"  PB test, no effect:         {pct(pb_null['pb_fail'])} of {pb_runs} runs (bootstrap {n_boot})")

    print("\n[2] power, nightly sizes: identity u has a gap of threshold + 10 pp on task u only (Holm family)")
    gaps = zero.copy()
    for t in range(T):
        gaps[t, t] = THR + 10
    hit = fixed_runs(rng, gaps, runs)["fail"]
    for t, task in enumerate(TASKS):
        plan = detect_power(THR + 10, task.n, task.p, alpha=FAM_ALPHA / M, rho=phi, threshold=THR)
        print(f"  {task.name:14s} n={task.n:5d}: caught {pct(hit[:, t, t])} "
              f"(planned {100 * plan:5.1f}%, target >= 90%)")

    axis_gaps = zero.copy()
    axis_gaps[0, :3], axis_gaps[1, 3:] = THR + 10, THR + 10  # identity 0: whole utility axis; 1: safety
    axis_hit = fixed_runs(rng, axis_gaps, runs)["fail"]
    print(f"  the same gap on every task of an axis: utility axis fails {pct(axis_hit[:, 0, :3].any(axis=1))}, "
          f"safety axis fails {pct(axis_hit[:, 1, 3:].any(axis=1))}")
    pr_sizes = tuple(PROFILES["pr"].samples[t.name] for t in TASKS)
    pr_thr = fixed_runs(rng, np.full((K, T), THR), runs, sizes=pr_sizes)["fail"]
    print(f"  (false alarms at pr sizes {pr_sizes}, every gap = threshold: {pct(pr_thr.any(axis=(1, 2)))})")

    print(f"\n[3] planned power vs gap beyond threshold and n (p_base 0.65, phi {phi:.2f}, level {FAM_ALPHA}/{M})")
    ns = (50, 100, 200, 300, 500, 1000, 2000)
    print("  gap-thr " + "".join(f"{n:>7d}" for n in ns))
    for extra in (2.5, 5, 7.5, 10, 15, 20):
        row = [detect_power(THR + extra, n, 0.65, alpha=FAM_ALPHA / M, rho=phi, threshold=THR) for n in ns]
        print(f"  {extra:6.1f} " + "".join(f"{100 * v:6.0f}%" for v in row))
    print("\n  items needed per task (rho = simulated phi | planner default 0.5) and what profiles detect:")
    for task in TASKS:
        need = [required_n(THR + 10, task.p, alpha=FAM_ALPHA / M, power=pw, rho=rho, threshold=THR)
                for pw in (0.8, 0.9) for rho in (phi, 0.5)]
        det = {name: mdd(PROFILES[name].samples.get(task.name, 0), task.p, alpha=FAM_ALPHA / M, rho=phi,
                         threshold=THR) for name in ("smoke", "pr", "nightly")}
        print(f"  {task.name:14s} gap thr+10 @80%: {need[0]:5d} | {need[1]:5d}   @90%: {need[2]:5d} | {need[3]:5d}"
              f"   mdd smoke {det['smoke']:5.1f}  pr {det['pr']:5.1f}  nightly {det['nightly']:5.1f} pp")

    print(f"\n[4] adaptive sampling: {ROUNDS} looks, O'Brien-Fleming spending per test (Bonferroni), futility "
          "margin 10 pp, beta 0.05; fixed design = Holm on all items")
    fixed_calls = (K + 1) * sum(t.n for t in TASKS)
    mix = zero.copy()
    mix[0, 0], mix[1, 3], mix[2, 2] = THR + 10, THR + 10, THR + 10  # 3 biased identities, 28 unbiased
    scenarios = (("mix: 3 biased, 28 unbiased", mix), ("no effect", zero),
                 ("every gap = threshold", np.full((K, T), THR)))
    for label, g in scenarios:
        s = sequential_runs(rng, g, runs)
        harmless = g <= THR
        fa_seq = (s["fail"] & harmless).any(axis=(1, 2))
        fa_fix = (s["fixed_fail"] & harmless).any(axis=(1, 2))
        line = (f"  {label:27s} false alarms adaptive {pct(fa_seq)} fixed {pct(fa_fix)}; calls saved "
                f"{pct(1 - s['calls_id'] / fixed_calls)} (identity stops) {pct(1 - s['calls_cell'] / fixed_calls)} "
                f"(cell stops)")
        if (~harmless).any():
            line += f"; power adaptive {pct(s['fail'][:, ~harmless])} fixed {pct(s['fixed_fail'][:, ~harmless])}"
        print(line)

    print("\n[5] PB: the paper's value vs the corrected one")
    print("  zero effect, mean over runs:  n/task   paper PB   corrected PB   corrected PB^2 (bias, se)")
    for n in (25, 50, 100, 300, None):
        sizes = tuple(n or t.n for t in TASKS)
        vals, papers = [], []
        for _ in range(pb_runs):
            mats = [simulate(rng, arm_probs(t, zero), sizes[t])[0, :K].astype(float) for t in range(T)]
            axes = {a: [mats[t] for t in range(T) if TASKS[t].axis == a] for a in ("utility", "safety")}
            vals.append(corrected_sq(axes))
            pts = np.column_stack([np.mean([m.mean(1) for m, tk in zip(mats, TASKS, strict=True) if tk.axis == a],
                                           axis=0) * 100 for a in ("utility", "safety")])
            papers.append(stats.pb(pts))
        v = np.array(vals)
        print(f"  {'nightly' if n is None else n:>30} {np.mean(papers):9.2f} {np.mean(np.sqrt(np.maximum(v, 0))):12.2f}"
              f" {v.mean():14.3f} ({v.std(ddof=1) / math.sqrt(len(v)):.3f})")
    raw = np.random.default_rng(1).normal(size=(K, 2))
    raw -= raw.mean(axis=0)
    for target in (PB_MAX, 5.0):
        offsets = raw * (target / 100) / math.sqrt((raw**2).sum(axis=1).mean())
        res = fixed_runs(rng, zero, pb_runs, n_boot=n_boot, offsets=offsets)
        print(f"  true PB {float(res['pb_truth']):.2f} (nightly): corrected mean {res['pb_corrected'].mean():.2f} "
              f"(paper {res['pb_paper'].mean():.2f}); {100 * (1 - 2 * PB_ALPHA):.0f}% interval covers in "
              f"{pct(res['pb_cover'])}; PB fails in {pct(res['pb_fail'])} of {pb_runs} runs")
    print(f"\ndone in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
