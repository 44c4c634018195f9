"""The exit-code table, one for `pytest suites/` and every `guards` command (within pytest's own codes).

| code | meaning |
|---|---|
| 0 | pass (an `inconclusive` verdict too, unless `on_inconclusive = "fail"`) |
| 1 | fail: a gap or PB beyond its threshold, with evidence |
| 4 | usage, configuration or data error: nothing was asked (pytest's own code for usage errors) |
| 6 | `error` verdict: too many requests failed, the endpoint was unreachable, the run hit its deadline, or the
       evidence is partial (a merge of some shards) -- never a pass |

pytest itself uses 0-5 (2 interrupted, 3 internal error, 5 no tests collected); 6 is unused by it.
"""

from __future__ import annotations

from typing import Final

PASS: Final = 0
FAIL: Final = 1
USAGE: Final = 4
ERROR: Final = 6

TABLE: Final = ((PASS, "pass"), (FAIL, "fail"), (USAGE, "usage, configuration or data error (nothing asked)"),
                (ERROR, "`error` verdict: the gate could not decide (failed requests, unreachable endpoint, "
                        "deadline, partial shards)"))


def for_verdict(verdict: str, on_inconclusive: str = "warn") -> int:
    """The exit code of a finished run's overall verdict (`waived` fails count as passes upstream)."""
    if verdict == "pass":
        return PASS
    if verdict == "inconclusive":
        return FAIL if on_inconclusive == "fail" else PASS
    if verdict == "fail":
        return FAIL
    return ERROR
