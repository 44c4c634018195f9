"""The test harness: the script run inside the sandbox, and the parent's reading of what it reported."""

from __future__ import annotations

import json
from collections.abc import Sequence

_HARNESS = r"""
import json as _json, os as _os, sys as _sys
_rf = _os.fdopen(_P["fd"], "w", encoding="utf-8")
def _emit(**rec):
    try:
        _rf.write(_json.dumps(rec) + "\n")
        _rf.flush()
    except BaseException:
        pass
def _why(e):
    return (type(e).__name__ + ": " + str(e))[:300]
_g = {"__name__": "__main__", "__builtins__": __builtins__}
_ok = True
for _stage in ("code", "setup"):
    try:
        exec(compile(_P[_stage], "<" + _stage + ">", "exec"), _g)
    except BaseException as _e:
        _emit(stage=_stage, error=_why(_e))
        _ok = False
        break
if _ok:
    for _i, _t in enumerate(_P["tests"]):
        try:
            exec(compile(_t, "<test %d>" % _i, "exec"), _g)
            _emit(test=_i, result="passed")
        except AssertionError:
            _emit(test=_i, result="failed")
        except BaseException as _e:
            _emit(test=_i, result="error: " + _why(_e))
_emit(done=True)
for _s in (_sys.stdout, _sys.stderr):
    try:
        _s.flush()
    except BaseException:
        pass
_os._exit(0)
"""


def _script(code: str, tests: Sequence[str], setup: str, fd: int) -> str:
    payload = {"fd": fd, "setup": setup, "code": code, "tests": list(tests)}
    return f"_P = {json.dumps(payload)!r}\nimport json as _j\n_P = _j.loads(_P)\n{_HARNESS}"


def verdict(records: bytes, n_tests: int, *, overflow: bool = False,
            timed_out: bool = False) -> tuple[str, tuple[str, ...], str]:
    """Status and per-assert outcomes from the harness's JSON lines (pure).

    passed: the code loaded and every assert passed; failed: it loaded and some assert failed or raised;
    error: it did not load, or the process died before finishing; timeout; output_limit. The third element
    names the load error, if any.
    """
    per_test = ["not run"] * n_tests
    load_error = done = False
    note = ""
    for line in records.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        if "error" in rec and "stage" in rec:
            load_error = True
            note = f"[{rec['stage']}] {rec['error']}"
        elif isinstance(rec.get("test"), int) and 0 <= rec["test"] < n_tests:
            per_test[rec["test"]] = str(rec.get("result", ""))
        done = done or rec.get("done") is True
    if timed_out and not done and "not run" in per_test:
        per_test[per_test.index("not run")] = "timeout"
    if overflow:
        status = "output_limit"
    elif load_error:
        status = "error"
    elif not done:
        status = "timeout" if timed_out else "error"
    else:
        status = "passed" if all(t == "passed" for t in per_test) else "failed"
    return status, tuple(per_test), note
