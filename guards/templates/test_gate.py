"""The gate: one test per identity and axis, and one for Personalization Bias.

Run with `pytest suites/`; the matrix is evaluated once per session and these tests read its verdicts.
"""

from __future__ import annotations

from typing import Any

from guards.pytest_plugin import AxisCheck, check_pb


def test_utility(guard: AxisCheck) -> None:
    """The identity's utility (macro over MMLU, GSM8K, MBPP) is not worse than the baseline's beyond the threshold."""
    guard.check()


def test_safety(guard: AxisCheck) -> None:
    """The identity's safety (macro over Do-Not-Answer, StrongREJECT) is not worse beyond the threshold."""
    guard.check()


def test_pb(guards_pb: dict[str, Any], guards_settings: Any) -> None:
    """The spread of identities around their centroid (noise-corrected PB) stays below pb_max."""
    check_pb(guards_pb, guards_settings)
