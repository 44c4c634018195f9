"""Statistics of the gate: pure functions over arrays, no I/O; percent and percentage points at the interface.

Modules, bottom up: ``power`` (Tango's paired score test, detectable gaps, sample sizes), ``pb`` (the paper's
PB and the noise-corrected PB), ``paired`` (the identity x task family: tests, corrections, axis summaries),
``sequential`` (group-sequential looks for adaptive runs). This package re-exports their public names::

    from guards import stats
    decisions = stats.decide_family(comparisons, alpha=0.025)
"""

from guards.stats.paired import (
    ALPHA_SPLIT,
    METHODS,
    AxisSummary,
    Comparison,
    Decision,
    adjust,
    adjust_array,
    combine_axis,
    decide_family,
)
from guards.stats.pb import PBResult, pb, pb_estimate
from guards.stats.power import detect_power, mdd, required_n
from guards.stats.sequential import look_alpha, plan_looks, settled, spent_alpha

__all__ = [
    "ALPHA_SPLIT", "METHODS", "AxisSummary", "Comparison", "Decision", "PBResult", "adjust", "adjust_array",
    "combine_axis", "decide_family", "detect_power", "look_alpha", "mdd", "pb", "pb_estimate", "plan_looks",
    "required_n", "settled", "spent_alpha",
]
