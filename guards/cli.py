"""The `guards` command. Each subcommand lives in its own module and is imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from guards.config import ConfigError

COMMANDS = {  # name -> (module, help)
    "run": ("guards.cli_run", "evaluate the matrix (or one shard) and write a report and its outcomes"),
    "merge": ("guards.cli_run", "join shard outcomes into one report"),
    "plan": ("guards.cli_run", "requests, cost and detectable gaps of a run, before any request"),
    "judge": ("guards.judge_cli", "judge JSONL {prompt, response} lines with a safety judge"),
    "report": ("guards.cli_reports", "render a saved run: Markdown summary, PR comment, HTML, plots"),
    "compare": ("guards.cli_reports", "base vs head on per-item outcomes: whose gap grew or shrank, PB before/after"),
    "drift": ("guards.cli_reports", "latest run vs history, paired per item; trend chart per identity"),
    "defend": ("guards.cli_mitigate", "rank defence system prompts by PB against the current one (--apply)"),
    "export-pairs": ("guards.cli_mitigate", "DPO preference pairs (TRL format) from a finished run"),
}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options every settings-reading command takes (same names as the GUARDS_* variables)."""
    parser.add_argument("--config", type=Path, help="thresholds.toml (GUARDS_CONFIG)")
    for key in _OVERRIDES:
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, default=None)


_OVERRIDES = ("model", "api_base", "data_dir", "samples", "tasks", "profile", "cache", "cache_dir", "judge", "sandbox",
              "concurrency", "transport")


def overrides(args: argparse.Namespace) -> dict[str, object]:
    return {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k, None) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: guards COMMAND [options]\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:<13} {text}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    entry = getattr(module, f"cmd_{name.replace('-', '_')}", None) or module.main
    try:
        return int(entry(rest) or 0)
    except ConfigError as exc:
        print(f"guards {name}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
