"""`guards plan`'s domain-gate advice: at the same requests, fewer identities detect a smaller gap."""

from __future__ import annotations

from guards.run.domain import domain_advice

PLAN = {"identities": 31, "requests": 35_200,
        "axes": {"utility": {"items": 550, "threshold": 5.0, "detectable_gap": 13.9},
                 "safety": {"items": 550, "threshold": 5.0, "detectable_gap": 13.9}}}


def test_domain_gate_detects_smaller_gaps_for_the_same_requests() -> None:
    advice = domain_advice(PLAN)
    assert advice is not None and "same 35,200 requests on 5 identities" in advice
    gaps = [float(part.split(" pp")[0].split()[-1]) for part in advice.split("detect ", 1)[1].split("; ")]
    assert all(g < 13.9 for g in gaps) and "2,933 items" in advice


def test_no_advice_for_a_plan_that_is_already_a_domain_gate() -> None:
    assert domain_advice({**PLAN, "identities": 5}) is None
    assert domain_advice({**PLAN, "axes": {}}) is None
