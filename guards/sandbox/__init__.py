"""Sandbox: runs generated code under the best isolation level available (bubblewrap, namespaces, a process).

Public: ``run_tests(code, tests, timeout_s)`` returns an object with ``.passed``; ``detect_level()``."""

from guards.sandbox.harness import verdict
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

__all__ = ["LEVELS", "SandboxResult", "SandboxUnavailable", "available_levels", "cache_key", "detect_level",
           "probe_levels", "run_tests", "verdict"]
