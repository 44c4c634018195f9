"""Adaptive sampling: a group-sequential design over the prefix-stable item order.

Items are a seeded permutation per task and N items are the first N, so a look at n items is a prefix.
The runner evaluates in ``rounds`` looks and stops asking for an identity once its decisions are
settled. Error control:

- false ``fail``: each of the M tests in the identity x task family has alpha/M (Bonferroni), spread
  over the looks by the O'Brien-Fleming-type Lan-DeMets spending function; ``look_alpha`` returns M
  times the test's share at a look, for ``decide_family(..., method="bonferroni", family_size=M)``.
  The shares sum to alpha/M per test, so by the union bound over tests and looks the family-wise
  false-fail rate stays <= alpha whatever the looks' correlation; at alpha/M ~ 1e-4 the O'Brien-Fleming
  shape keeps about 90% of it for the last look, so the last look loses little against a fixed design.
- stopping for ``pass`` at any look: the harm's upper bound at that look's level is below the threshold
  (the same spending as ``fail``, mirrored: a false ``pass`` at a gap >= threshold is as rare as a false
  ``fail`` at a gap <= threshold).
- stopping for futility (non-binding, stochastic curtailment): a test that has neither failed nor passed
  stops when, given its data so far, *both* decisions are out of reach at the last look: the conditional
  chance of ``fail`` if the true gap were ``threshold + margin`` is below ``gamma / (rounds - 1)``, and
  the conditional chance of ``pass`` if the true gap were 0 is below the same. By the union bound over
  the interim looks this costs at most ``gamma`` power at a gap of threshold + margin and at most
  ``gamma`` of the pass rate at no gap (Lan, Simon & Halperin 1982). Futility only removes chances to
  decide, so it can never raise the false-fail rate. Such a test is ``inconclusive`` with
  ``stopped = "futility"``: futility is not a pass.

The runner's loop::

    looks = {task: plan_looks(n_max[task], rounds) for task in tasks}
    for j in range(1, rounds + 1):
        evaluate items [0, looks[task][j - 1]) for the baseline and every active identity
        decisions = decide_family(active comparisons, alpha=look_alpha(j, rounds, family_alpha, M),
                                  method="bonferroni", family_size=M)  # M: all identity x task tests
        for each active test: if stop_reason(decision, j, rounds, n_max=..., final_tail=...): keep it

The baseline answers the items up to the largest look any identity still needs; every identity answers
at least the items of the PB look (``pb_look``), fixed before the run, so PB's sample is not chosen by
the data. The reported ``p_adjusted`` of a decision made at look j is compared with ``look_alpha(j, ...)``,
not with alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from guards.stats.power import norm_isf, norm_sf

if TYPE_CHECKING:
    from guards.stats.paired import Decision

DEFAULT_MARGIN = 10.0
"""pp beyond the threshold: the gap an adaptive run must keep the power to catch (``[run] futility_margin``)."""
DEFAULT_GAMMA = 0.1
"""Futility's budget: at most this much power (at threshold + margin) and pass rate (at no gap) lost, by
the union bound; simulated (benchmarks/power.py) the losses are 1-1.5 points at pr and nightly sizes,
while 0.02 saved 36% of calls at pr sizes and 0.1 saves about 50%."""
DEFAULT_BETA = DEFAULT_GAMMA  # the old name


def plan_looks(n_max: int, rounds: int) -> list[int]:
    """Cumulative items per look: ``rounds`` equally spaced prefixes ending at ``n_max`` (non-decreasing)."""
    if n_max < 0 or rounds < 1:
        raise ValueError("n_max must be >= 0 and rounds >= 1")
    return [math.ceil(n_max * j / rounds) for j in range(1, rounds + 1)]


PB_SHARE = 0.25
"""Share of each task's items every identity answers in an adaptive run: PB's sample, fixed before the run.

A quarter keeps the calls saved above 40% (at a half, 31 identities could save at most 48%, and a run with
few identities less); the price is a PB interval about twice as wide as a fixed run's (PB's noise scales
as 1/sqrt(items)). A PB verdict that matters should come from a fixed run."""


def pb_look(rounds: int, share: float = PB_SHARE) -> int:
    """The look whose items every identity answers, whatever its decisions (PB's fixed sample)."""
    return min(rounds, max(1, math.ceil(rounds * share)))


def spent_alpha(t: float, alpha: float) -> float:
    """Lan-DeMets O'Brien-Fleming-type spending: one-sided alpha spent by information fraction t.

    alpha(t) = 2 * (1 - Phi(z_{1 - alpha/2} / sqrt(t))); 0 at t = 0, alpha at t = 1.
    """
    if t <= 0:
        return 0.0
    if t >= 1:
        return alpha
    return min(alpha, float(2.0 * norm_sf(norm_isf(alpha / 2.0) / math.sqrt(t))))


def look_alpha(look: int, rounds: int, alpha: float, family_size: int = 1) -> float:
    """The family alpha to use at look ``look`` (1-based) of ``rounds`` with Bonferroni over ``family_size``.

    M * (a(j/K) - a((j-1)/K)) with a = spent_alpha(., alpha / M): each test spends its own alpha/M.
    """
    if not 1 <= look <= rounds or family_size < 1:
        raise ValueError(f"look must be in 1..{rounds} and family_size >= 1, got {look}, {family_size}")
    per_test = alpha / family_size
    return family_size * (spent_alpha(look / rounds, per_test) - spent_alpha((look - 1) / rounds, per_test))


def conditional_power(harm: float, se: float, n: int, n_max: int, target: float, bound: float,
                      side: str) -> float:
    """Chance that the last look's estimate crosses ``bound`` given this look's, if the true harm were ``target``.

    Harm estimate ``harm`` with standard error ``se`` on ``n`` items now; ``n_max`` at the last look. With
    per-item spread sigma = se * sqrt(n), the last estimate is (n * harm + (n_max - n) * Y) / n_max,
    Y ~ N(target, sigma^2 / (n_max - n)). ``side``: "above" (fail: estimate > bound) or "below" (pass).
    """
    if n_max <= n or se <= 0:
        now = harm > bound if side == "above" else harm < bound
        return 1.0 if now else 0.0
    sigma = se * math.sqrt(n)
    mean = (n * harm + (n_max - n) * target) / n_max
    sd = sigma * math.sqrt(n_max - n) / n_max
    z = (mean - bound) / sd if side == "above" else (bound - mean) / sd
    return float(norm_sf(-z))


def futile(decision: Decision, look: int, rounds: int, *, margin: float = DEFAULT_MARGIN,
           gamma: float = DEFAULT_GAMMA, n_max: int | None = None, final_tail: float | None = None,
           beta: float | None = None) -> bool:
    """True when, at an interim look, neither ``fail`` nor ``pass`` is within reach at the last look.

    ``fail`` out of reach: conditional power below gamma / (rounds - 1) if the true harm gap were
    threshold + margin. ``pass`` out of reach: the same if the true gap were 0. The last look decides at
    one-sided level ``final_tail`` (default: this decision's own level, which is stricter) with ``n_max``
    items (default: this look's items scaled to the last look). Everything in pp.
    """
    if beta is not None:
        gamma = beta
    if look >= rounds or decision.n == 0:
        return False
    n_last = n_max if n_max is not None else math.ceil(decision.n * rounds / look)
    tail = final_tail if final_tail is not None else (1.0 - decision.ci_level) / (
        2.0 if decision.direction == "worse" else 1.0)
    z = norm_isf(tail)
    se_last = decision.se * math.sqrt(decision.n / max(n_last, 1))
    harm = -decision.delta if decision.direction == "worse" else abs(decision.delta)
    cut = gamma / max(rounds - 1, 1)
    reach_fail = conditional_power(harm, decision.se, decision.n, n_last, decision.threshold + margin,
                                   decision.threshold + z * se_last, "above")
    reach_pass = conditional_power(harm, decision.se, decision.n, n_last, 0.0,
                                   decision.threshold - z * se_last, "below")
    return reach_fail < cut and reach_pass < cut


def stop_reason(decision: Decision, look: int, rounds: int, *, margin: float | None = DEFAULT_MARGIN,
                gamma: float = DEFAULT_GAMMA, n_max: int | None = None, final_tail: float | None = None
                ) -> str | None:
    """Why the runner may stop asking for this decision after this look: "fail", "pass", "futility",
    "last" (the last look), or None to keep asking. ``margin=None`` stops only on fail or pass."""
    if decision.verdict in ("fail", "pass"):
        return decision.verdict
    if look >= rounds:
        return "last"
    if margin is not None and futile(decision, look, rounds, margin=margin, gamma=gamma, n_max=n_max,
                                     final_tail=final_tail):
        return "futility"
    return None


def settled(decisions: Sequence[Decision], look: int, rounds: int, *, margin: float | None = DEFAULT_MARGIN,
            gamma: float = DEFAULT_GAMMA, n_max: int | None = None, final_tail: float | None = None,
            beta: float | None = None) -> bool:
    """Whether every one of these decisions may stop after this look (see ``stop_reason``)."""
    if beta is not None:
        gamma = beta
    return all(stop_reason(d, look, rounds, margin=margin, gamma=gamma, n_max=n_max, final_tail=final_tail)
               is not None for d in decisions)
