"""The test harness: the script run inside the sandbox, and the parent's reading of what it reported.

Trust boundary: the generated code runs in the same process as the harness script, so it can rewrite the
harness, replace builtins, and write anything to any file descriptor it finds. Nothing the child reports is
therefore trusted as a verdict. The parent splits every assert itself (`parse_test`):

- ``assert CALL == LITERAL`` (every assert of MBPP's test split, ids 11-510, has this shape): the child gets
  only ``CALL``, evaluates it and reports the value as a repr restricted to literal types (or the exception);
  the parent reads it back with ``ast.literal_eval`` and compares it with ``LITERAL``, which the child never
  sees. A forged report still has to equal a value the code was not given; an object whose ``__eq__`` is always
  True is not a literal and fails; a tuple never equals a list.
- other shapes (``assert A == B`` with no literal side, ``assert EXPR``, a plain statement) are handled
  explicitly but are weaker: the child evaluates them and the parent checks the reported values (both sides of
  ``==``, ``True`` for a truth test, completion for a statement). MBPP's test split has none of them.

Records travel over a pipe on a channel fd, each line tagged with a per-run random nonce. A line with the nonce
that does not parse, a second record for the same check, a missing end record, a non-zero exit status or an
early exit all make the run an error, never a pass.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["literal", "compare", "truth", "statement", "invalid"]
Mode = Literal["lenient", "paper"]
MAX_CHANNEL = 1 << 20  # bytes of result records read; more is an output_limit


@dataclass(frozen=True, slots=True)
class Check:
    """One assert as the parent understands it: what the child evaluates, and what the parent expects."""

    kind: Kind
    exprs: tuple[str, ...]  # evaluated by the child, in order
    expected: Any = None  # the literal (kind "literal")
    note: str = ""  # why a test is invalid

    @property
    def strong(self) -> bool:
        """True when a forged report cannot pass the check without knowing the expected value."""
        return self.kind == "literal"


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def parse_test(test: str) -> Check:
    """Split one test line into what the child evaluates and what the parent compares (pure)."""
    try:
        tree = ast.parse(test.strip().replace("\r\n", "\n"))
    except (SyntaxError, ValueError) as exc:
        return Check("invalid", (), note=f"the test does not parse: {exc}")
    if len(tree.body) != 1:
        return Check("statement", (test,))
    node = tree.body[0]
    if not isinstance(node, ast.Assert):
        return Check("statement", (ast.unparse(node),))
    # `assert X == 1, 2` (MBPP 313, 436): the message does not change what is checked
    cond = node.test
    if isinstance(cond, ast.Compare) and len(cond.ops) == 1 and isinstance(cond.ops[0], ast.Eq):
        left, right = cond.left, cond.comparators[0]
        ok_r, value_r = _literal(right)
        if ok_r:
            return Check("literal", (ast.unparse(left),), value_r)
        ok_l, value_l = _literal(left)
        if ok_l:
            return Check("literal", (ast.unparse(right),), value_l)
        return Check("compare", (ast.unparse(left), ast.unparse(right)))
    return Check("truth", (f"(True if ({ast.unparse(cond)}) else False)",))


def checks_of(tests: Sequence[str]) -> list[Check]:
    return [parse_test(t) for t in tests]


# The script run inside the sandbox. `_P` (prepended) holds: fd, nonce, code, setup, exprs (a list per check of
# the expressions to evaluate, or None for a statement), mode. Everything the harness needs from builtins is bound
# before the generated code runs; the code may still reach it, which is why the parent trusts none of it.
_HARNESS = r"""
def _harness(_P):
    import builtins, os, sys
    _dumps, _exit, _write, _type, _repr, _isfin = __import__("json").dumps, os._exit, os.write, type, repr, None
    _exec, _compile, _eval, _len, _range, _str, _base = exec, compile, eval, len, range, str, BaseException
    sub = issubclass
    import math
    _isfin = math.isfinite
    fd = os.dup(_P["fd"])  # not inheritable: an exec'd child of the code does not get the channel
    os.close(_P["fd"])
    tag = _P["nonce"].encode() + b" "
    def emit(rec):
        try:
            _write(fd, tag + _dumps(rec).encode() + b"\n")
        except _base:
            pass
    emit({"ready": 1})  # before any generated code: the parent starts the test clock here, not at spawn
    def why(e):
        try:
            return (_type(e).__name__ + ": " + _str(e))[:300]
        except _base:
            return "unprintable exception"
    def lit(v, depth=0):
        # Subclasses (Counter, OrderedDict, an int subclass) are read through the base type's own methods: their
        # contents count, never their overridden __eq__, __iter__ or __repr__.
        t = _type(v)
        if depth > 60:
            raise ValueError("nested too deeply")
        if v is None or t is bool:
            return _repr(v)
        if sub(t, int):
            return int.__repr__(v)
        if sub(t, float):
            x = float.__float__(v)
            if _isfin(x):
                return float.__repr__(x)
            if x != x:
                raise ValueError("nan never equals anything")
            return "1e999" if x > 0 else "-1e999"
        if sub(t, complex):
            return complex.__repr__(v)
        if sub(t, str):
            return _repr(str.__str__(v))
        if sub(t, bytes):
            return _repr(bytes.__getitem__(v, slice(None)))
        if sub(t, list):
            return "[" + ", ".join(lit(x, depth + 1) for x in list.__getitem__(v, slice(None))) + "]"
        if sub(t, tuple):
            inner = [lit(x, depth + 1) for x in tuple.__getitem__(v, slice(None))]
            return "(" + ", ".join(inner) + ("," if _len(inner) == 1 else "") + ")"
        if sub(t, (set, frozenset)):
            inner = [lit(x, depth + 1) for x in (set.__iter__(v) if sub(t, set) else frozenset.__iter__(v))]
            return "{" + ", ".join(inner) + "}" if inner else "set()"
        if sub(t, dict):
            return "{" + ", ".join(lit(k, depth + 1) + ": " + lit(x, depth + 1) for k, x in dict.items(v)) + "}"
        raise TypeError("not a literal value: " + t.__name__)
    def _no_input(*a, **k):
        raise EOFError("no input in the sandbox")
    paper = _P["mode"] == "paper"
    if not paper:
        builtins.input = _no_input
    def run(source, name):
        g = {"__name__": "__main__" if paper else "solution", "__builtins__": builtins}
        _exec(_compile(source, name, "exec"), g)
        return g
    def definitions(source):
        import ast
        tree = ast.parse(source)
        keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        g = {"__name__": "solution", "__builtins__": builtins}
        for node in tree.body:
            if isinstance(node, keep) or isinstance(node, (ast.Assign, ast.AnnAssign)):
                try:
                    _exec(_compile(ast.Module([node], []), "<code>", "exec"), g)
                except _base:
                    if isinstance(node, keep):
                        raise
        return g
    try:
        g = run(_P["code"], "<code>")
    except _base as e:
        first = why(e)
        g = None
        if not paper:
            try:
                g = definitions(_P["code"])
            except _base:
                g = None
        if g is None:
            emit({"load": "[code] " + first})
            _exit(0)
    if _P["setup"]:
        try:
            _exec(_compile(_P["setup"], "<setup>", "exec"), g)
        except _base as e:
            emit({"load": "[setup] " + why(e)})
            _exit(0)
    n = 0
    for i in _range(_len(_P["checks"])):
        for j, expr in enumerate(_P["checks"][i]):
            try:
                if expr is None:
                    raise ValueError("no expression")
                if _P["kinds"][i] == "statement":
                    _exec(_compile(expr, "<test %d>" % i, "exec"), g)
                    rec = {"i": i, "j": j, "v": "None"}
                else:
                    rec = {"i": i, "j": j, "v": lit(_eval(_compile(expr, "<test %d>" % i, "eval"), g))}
            except _base as e:
                rec = {"i": i, "j": j, "x": why(e)}
            emit(rec)
            n += 1
    emit({"end": n})
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except _base:
            pass
    _exit(0)
_harness(_P)
"""


def script(code: str, checks: Sequence[Check], setup: str, fd: int, nonce: str, mode: Mode) -> str:
    """The child's program: the payload (JSON, so no code of ours is built from the answer) plus the harness."""
    payload = {"fd": fd, "nonce": nonce, "setup": setup, "code": code, "mode": mode,
               "checks": [list(c.exprs) for c in checks], "kinds": [c.kind for c in checks]}
    return f"import json as _j\n_P = _j.loads({json.dumps(payload)!r})\ndel _j\n{_HARNESS}"


def _read_value(text: Any) -> tuple[bool, Any]:
    if not isinstance(text, str) or len(text) > MAX_CHANNEL:
        return False, None
    try:
        return True, ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _same(got: Any, expected: Any) -> bool:
    """Literal values compared as Python compares them (no user code can run here: both sides are literals)."""
    try:
        return bool(got == expected)
    except (RecursionError, TypeError, ValueError):
        return False


def _judge(check: Check, recs: dict[int, dict[str, Any]]) -> str:
    if check.kind == "invalid":
        return f"error: {check.note}"
    if len(recs) != len(check.exprs):
        return "not run"
    for rec in recs.values():
        if "x" in rec:
            message = str(rec["x"])[:300]
            return "failed" if message.startswith("AssertionError") else f"error: {message}"
    values = []
    for j in range(len(check.exprs)):
        ok, value = _read_value(recs[j].get("v"))
        if not ok:
            return "failed"  # not a literal: e.g. an object whose __eq__ is always True
        values.append(value)
    if check.kind == "literal":
        return "passed" if _same(values[0], check.expected) else "failed"
    if check.kind == "compare":
        return "passed" if _same(values[0], values[1]) else "failed"
    if check.kind == "truth":
        return "passed" if values[0] is True else "failed"
    return "passed"  # a statement that completed


READY = {"ready": 1}


def ready_line(nonce: str) -> bytes:
    """The record the harness writes before any generated code runs (json.dumps of READY, tagged)."""
    return nonce.encode() + b" " + json.dumps(READY).encode() + b"\n"


def verdict(records: bytes, checks: Sequence[Check], nonce: str, *, exit_code: int | None = 0,
            overflow: bool = False, timed_out: bool = False) -> tuple[str, tuple[str, ...], str]:
    """Status and per-assert outcomes from the child's tagged records (pure).

    passed: the code loaded, the child ended cleanly and every check holds as the parent compares it;
    failed: it loaded and some check does not hold; error: it did not load, died or exited early, exited
    non-zero, the channel holds forged or malformed records, or the harness never started (no ready record
    before the deadline: nothing of the code was timed); timeout; output_limit. The third element is a
    note (the load error, or why the channel was not trusted).
    """
    n = len(checks)
    tag = nonce.encode() + b" "
    got: dict[int, dict[int, dict[str, Any]]] = {}
    load_error = forged = ""
    end: int | None = None
    started = False
    for line in records.split(b"\n"):
        if not line.startswith(tag):
            continue  # the code's own writes: not ours (and never trusted)
        try:
            rec = json.loads(line[len(tag):].decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            forged = forged or "a malformed record on the result channel"
            continue
        if not isinstance(rec, dict):
            forged = forged or "a malformed record on the result channel"
        elif rec == READY:
            started = True  # the harness started (the parent's clock); code that repeats it changes nothing
        elif "load" in rec and load_error == "" and end is None:
            load_error = str(rec["load"])[:400]
        elif "end" in rec and end is None:
            end = rec["end"] if isinstance(rec["end"], int) and not isinstance(rec["end"], bool) else -1
        elif _valid_value_record(rec, checks) and end is None and not load_error:
            slot = got.setdefault(rec["i"], {})
            if rec["j"] in slot:
                forged = forged or f"two records for test {rec['i']}"
            slot[rec["j"]] = rec
        else:
            forged = forged or "an unexpected record on the result channel"
    per_test = [_judge(check, got.get(i, {})) for i, check in enumerate(checks)]
    expected_records = sum(len(c.exprs) for c in checks)
    complete = end is not None and end == expected_records == sum(len(v) for v in got.values())
    if timed_out and not started:
        return "error", ("not run",) * n, "the sandbox did not start in time (an overloaded machine?)"
    if timed_out and "not run" in per_test:
        per_test[per_test.index("not run")] = "timeout"
    if overflow:
        return "output_limit", tuple(per_test), ""
    if forged:
        return "error", tuple("not run" if t == "passed" else t for t in per_test), f"untrusted result: {forged}"
    if load_error:
        return "error", ("not run",) * n, load_error
    if not complete:
        if timed_out:
            return "timeout", tuple(per_test), ""
        why = "the code exited before every test had run" if exit_code == 0 else f"exit status {exit_code}"
        return "error", tuple(per_test), why
    if exit_code != 0:
        return "error", tuple(per_test), f"exit status {exit_code}"
    if any(c.kind == "invalid" for c in checks):
        return "error", tuple(per_test), next(c.note for c in checks if c.kind == "invalid")
    status = "passed" if all(t == "passed" for t in per_test) else "failed"
    return status, tuple(per_test), ""


def _valid_value_record(rec: dict[str, Any], checks: Sequence[Check]) -> bool:
    i, j = rec.get("i"), rec.get("j")
    if type(i) is not int or type(j) is not int or not 0 <= i < len(checks) or not 0 <= j < len(checks[i].exprs):
        return False
    return ("v" in rec) != ("x" in rec)


__all__ = ["Check", "checks_of", "parse_test", "script", "verdict"]
