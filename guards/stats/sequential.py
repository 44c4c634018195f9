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
- stopping for futility (non-binding): an unfailed test stops once its harm gap is, with confidence
  1 - beta/(rounds - 1), below ``threshold + margin``. Futility only removes chances to fail, so it can
  never raise the false-fail rate; it costs at most ``beta`` power per test at gaps >= threshold + margin.
  Such a test stays ``inconclusive`` (unless its interval also gives ``pass``), with its ``mdd``.

The runner's loop::

    looks = {task: plan_looks(n_max[task], rounds) for task in tasks}
    for j in range(1, rounds + 1):
        evaluate items [0, looks[task][j - 1]) for the baseline and every active identity
        decisions = decide_family(active comparisons, alpha=look_alpha(j, rounds, family_alpha, M),
                                  method="bonferroni", family_size=M)  # M: all identity x task tests
        for each active identity: if settled(its decisions, j, rounds): keep them, stop asking it

The baseline answers the items up to the largest look any identity still needs. The reported
``p_adjusted`` of a decision made at look j is compared with ``look_alpha(j, ...)``, not with alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from guards.stats.power import norm_isf, norm_sf

if TYPE_CHECKING:
    from guards.stats.paired import Decision

DEFAULT_MARGIN = 10.0
DEFAULT_BETA = 0.05


def plan_looks(n_max: int, rounds: int) -> list[int]:
    """Cumulative items per look: ``rounds`` equally spaced prefixes ending at ``n_max`` (non-decreasing)."""
    if n_max < 0 or rounds < 1:
        raise ValueError("n_max must be >= 0 and rounds >= 1")
    return [math.ceil(n_max * j / rounds) for j in range(1, rounds + 1)]


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


def futile(decision: Decision, look: int, rounds: int, *, margin: float = DEFAULT_MARGIN,
           beta: float = DEFAULT_BETA) -> bool:
    """True when, at an interim look, the harm gap is confidently below threshold + margin.

    Upper bound: harm estimate + z_{1 - beta/(rounds-1)} * se (normal approximation).
    """
    if look >= rounds or decision.n == 0:
        return False
    harm = -decision.delta if decision.direction == "worse" else abs(decision.delta)
    upper = harm + norm_isf(beta / max(rounds - 1, 1)) * decision.se
    return upper < decision.threshold + margin


def settled(decisions: Sequence[Decision], look: int, rounds: int, *, margin: float | None = DEFAULT_MARGIN,
            beta: float = DEFAULT_BETA) -> bool:
    """Whether the runner may stop asking for these decisions' identity (or cell) after this look.

    True at the last look; otherwise when every decision is ``fail`` or ``pass`` at this look's level,
    or futile (``futile``; pass ``margin=None`` to stop only on fail/pass).
    """
    if look >= rounds:
        return True
    return all(
        d.verdict in ("fail", "pass")
        or (margin is not None and futile(d, look, rounds, margin=margin, beta=beta))
        for d in decisions
    )
