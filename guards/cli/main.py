"""The `guards` command. Each subcommand lives in its own module and is imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from guards.config.settings import OVERRIDES, ConfigError

COMMANDS = {  # name -> (module, help)
    "run": ("guards.cli.run", "evaluate the matrix (or one shard) and write a report and its outcomes"),
    "merge": ("guards.cli.run", "join shard outcomes into one report"),
    "plan": ("guards.cli.run", "requests, cost and detectable gaps of a run, before any request"),
    "judge": ("guards.cli.judge", "judge JSONL {prompt, response} lines with a safety judge"),
    "report": ("guards.cli.reports", "render a saved run: Markdown summary, PR comment, HTML, plots"),
    "compare": ("guards.cli.reports", "base vs head on per-item outcomes: whose gap grew or shrank, PB before/after"),
    "drift": ("guards.cli.reports", "latest run vs history, paired per item; trend chart per identity"),
    "defend": ("guards.cli.mitigate", "rank defence system prompts by PB against the current one (--apply)"),
    "export-pairs": ("guards.cli.mitigate", "DPO preference pairs (TRL format) from a finished run"),
}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options every settings-reading command takes (same names as the GUARDS_* variables)."""
    parser.add_argument("--config", type=Path, help="thresholds.toml (GUARDS_CONFIG)")
    for o in CLI_OVERRIDES:
        parser.add_argument(f"--{o.flag}", dest=o.key, default=None, help=f"{o.help} ({o.env_var})")


CLI_OVERRIDES = tuple(o for o in OVERRIDES if o.cli)


def overrides(args: argparse.Namespace) -> dict[str, object]:
    return {o.key: getattr(args, o.key) for o in CLI_OVERRIDES if getattr(args, o.key, None) is not None}


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
