"""Statistics of the gate: pure functions over arrays, no I/O; percent and percentage points at the interface.

Modules, bottom up: ``power`` (Tango's paired score test, detectable gaps, sample sizes), ``pb`` (the paper's
PB and the noise-corrected PB), ``paired`` (the identity x task family: tests, corrections, axis summaries),
``sequential`` (group-sequential looks for adaptive runs). This package re-exports their public names::

    from guards import stats
    decisions = stats.decide_family(comparisons, alpha=0.025)
"""

from guards.stats.paired import (
    ALPHA_SPLIT,
    FAMILIES,
    METHODS,
    AxisSummary,
    Comparison,
    Decision,
    adjust,
    adjust_array,
    combine_axis,
    decide_axes,
    decide_family,
    needed_items,
)
from guards.stats.pb import PBResult, pb, pb_estimate
from guards.stats.power import detect_power, mdd, required_n
from guards.stats.sequential import (
    DEFAULT_GAMMA,
    DEFAULT_MARGIN,
    look_alpha,
    pb_look,
    plan_looks,
    settled,
    spent_alpha,
    stop_reason,
)

__all__ = [
    "ALPHA_SPLIT", "DEFAULT_GAMMA", "DEFAULT_MARGIN", "FAMILIES", "METHODS", "AxisSummary", "Comparison", "Decision",
    "PBResult", "adjust", "adjust_array", "combine_axis", "decide_axes", "decide_family", "detect_power",
    "look_alpha", "mdd", "needed_items", "pb", "pb_estimate", "pb_look", "plan_looks", "required_n", "settled",
    "spent_alpha", "stop_reason",
]
