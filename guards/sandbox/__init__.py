"""Sandbox: runs generated code under the best isolation level available (bubblewrap, namespaces, a process).

Public: ``run_tests(code, tests, timeout_s, mode=...)`` returns an object with ``.passed``; ``detect_level()``."""

from guards.sandbox.harness import Check, parse_test, verdict
from guards.sandbox.levels import (
    LEVELS,
    SandboxResult,
    SandboxUnavailable,
    available_levels,
    cache_key,
    detect_level,
    probe_levels,
    run_tests,
)

__all__ = ["LEVELS", "Check", "SandboxResult", "SandboxUnavailable", "available_levels", "cache_key",
           "detect_level", "parse_test", "probe_levels", "run_tests", "verdict"]
