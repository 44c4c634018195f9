"""The `guards` command. Each subcommand lives in its own module and is imported only when used.

Exit codes follow one table for every command and `pytest suites/` (guards.core.exitcodes): 0 pass, 1 fail,
4 usage/configuration/data error (argparse's own 2 included), 6 the `error` verdict.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from guards.config.settings import OVERRIDES, ConfigError
from guards.core import exitcodes

COMMANDS = {  # name -> (module, help)
    "init": ("guards.cli.init", "scaffold thresholds.toml, the gate tests, .gitignore entries and a CI workflow"),
    "data": ("guards.cli.data", "download the evaluation data (guards data download) into the user cache folder"),
    "run": ("guards.cli.run", "evaluate the matrix (or one shard) and write a report and its outcomes"),
    "merge": ("guards.cli.run", "join shard outcomes into one report"),
    "plan": ("guards.cli.run", "requests, cost and detectable gaps of a run, before any request"),
    "judge": ("guards.cli.judge", "judge JSONL {prompt, response} lines with a safety judge"),
    "report": ("guards.cli.reports", "render a saved run: Markdown summary, PR comment, HTML, plots"),
    "compare": ("guards.cli.reports", "base vs head on per-item outcomes: whose gap grew or shrank, PB before/after"),
    "drift": ("guards.cli.reports", "latest run vs history, paired per item; trend chart per identity"),
    "defend": ("guards.cli.mitigate", "rank defence system prompts by PB against the current one (--apply)"),
    "export-pairs": ("guards.cli.mitigate", "DPO preference pairs (TRL format) from a finished run"),
    "comment": ("guards.cli.github", "post or update the one persona-guard comment on a pull request"),
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
        out = sys.stdout if not argv or argv[0] in ("-h", "--help") else sys.stderr
        if argv and argv[0] not in ("-h", "--help"):
            print(f"guards: unknown command {argv[0]!r}", file=out)
        print("usage: guards COMMAND [options]\n\ncommands:", file=out)
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:<13} {text}", file=out)
        print("\nexit codes: " + ", ".join(f"{code} {text}" for code, text in exitcodes.TABLE), file=out)
        return exitcodes.PASS if out is sys.stdout else exitcodes.USAGE
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    entry = getattr(module, f"cmd_{name.replace('-', '_')}", None) or module.main
    from guards.core.outcomes import OutcomesError
    from guards.report.build import ReportError
    from guards.tasks.data import DataUnavailable

    try:
        code = int(entry(rest) or 0)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for a usage error
        return usage_code(exc.code)
    except (ConfigError, ReportError, OutcomesError, DataUnavailable, FileNotFoundError) as exc:
        print(f"guards {name}: {' '.join(str(exc).split())}", file=sys.stderr)
        return exitcodes.USAGE
    return code


def usage_code(code: object) -> int:
    """argparse's exit status on the table: --help is 0, anything else it rejects is a usage error (4)."""
    return exitcodes.PASS if code in (0, None) else exitcodes.USAGE


if __name__ == "__main__":
    raise SystemExit(main())
