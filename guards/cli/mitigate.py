"""`guards defend` (rank defence prompts by PB) and `guards export-pairs` (DPO preference pairs)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from guards.cli.main import add_config_options, overrides
from guards.config.settings import ConfigError, Settings, load_settings
from guards.report.format import num, pvalue, signed
from guards.run.progress import progress_bars

CHANGES_NOTE = ("Fixes: identities failing the gate under the current prompt that pass under the candidate "
                "(or are no longer shown to fail: now inconclusive); breaks: identities it makes fail.")
COST_NOTE = ("Cost = the no-persona baseline's score under the candidate minus under the current prompt "
             "(pp, paired over items, macro over tasks; negative = the candidate costs that much).")


def prompt_path(settings: Settings) -> Path:
    """Where `--apply` writes: target.system_prompt_file, relative to the configuration file."""
    if not settings.system_prompt_file:
        raise ConfigError("--apply writes the winning prompt to target.system_prompt_file, and the configuration "
                          "has none: put the deployed prompt in a file and set target.system_prompt_file")
    path = Path(settings.system_prompt_file)
    if not path.is_absolute() and settings.config_path:
        path = Path(settings.config_path).parent / path
    return path


def _ci(ci: Sequence[Any] | None, digits: int = 1, sign: bool = True) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    fmt = signed if sign else num
    return f"[{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]"


def _cost(row: Mapping[str, Any], axis: str) -> str:
    if row["vs_current"] is None:
        return "reference" if axis in row["cost"] else "n/a"
    entry = row["cost"].get(axis)
    return "n/a" if not entry else f"{signed(entry['delta'])} {_ci(entry['ci'])}"


def _ids(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "-"


def table_rows(result: Mapping[str, Any]) -> list[list[str]]:
    """One row of text cells per candidate, best (lowest corrected PB) first."""
    rows = []
    for n, row in enumerate(result["candidates"], start=1):
        pb, vs = row["pb"], row["vs_current"]
        rows.append([
            str(n), row["name"] + (" (winner)" if row["name"] == result["winner"] else ""),
            f"{num(pb['corrected'], 2)} {_ci(pb['ci'], 2, sign=False)}", num(pb["paper"], 2),
            "reference" if vs is None else f"{signed(vs['diff'], 2)} {_ci(vs['ci'], 2)}",
            "" if vs is None else pvalue(vs["p_adjusted"]), "" if vs is None else vs["verdict"],
            _cost(row, "utility"), _cost(row, "safety"),
            _ids([*row["fixes"], *(f"{i} (now inconclusive)" for i in row["eases"])]), _ids(row["breaks"]),
            str(row["verdict"]),
        ])
    return rows


HEADERS = ["#", "candidate", "PB (corrected) [interval]", "paper PB", "PB - current [interval]", "adjusted p",
           "vs current", "baseline utility cost", "baseline safety cost", "fixes", "breaks", "gate"]


def footnote(result: Mapping[str, Any]) -> str:
    return (f"Paired on {len(result['identities'])} identities x the same items of {', '.join(result['tasks'])}; "
            f"PB difference: bootstrap over items ({result['n_boot']} resamples), p-values Holm-adjusted over "
            f"{len(result['candidates']) - 1} candidates at alpha {result['alpha']}; intervals "
            f"{100 * result['ci_level']:.1f}% (simultaneous). {COST_NOTE} {CHANGES_NOTE}")


def markdown(result: Mapping[str, Any]) -> str:
    """The ranking as Markdown: the table, the winner, and every candidate's full text."""
    lines = ["## Defence prompts ranked by Personalization Bias", ""]
    winner = result["winner"]
    lines.append(f"**Winner: `{winner}`** (significantly lower PB than the current prompt)." if winner else
                 "No candidate has a significantly lower PB than the current prompt.")
    lines += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table_rows(result)]
    lines += ["", f"<sub>{footnote(result)}</sub>", "", "### Candidates", ""]
    for row in result["candidates"]:
        lines.append(f"- `{row['name']}` ({row['source']}): {row['text']}")
    return "\n".join(lines) + "\n"


def print_table(result: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Defence prompts ranked by Personalization Bias (lower is better)", show_lines=False)
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for row in table_rows(result):
        style = "bold green" if "(winner)" in row[1] else None
        table.add_row(*row, style=style)
    console = Console(width=max(Console().width, 160))
    console.print(table)
    console.print(footnote(result), style="dim")
    for row in result["candidates"]:
        console.print(f"[bold]{row['name']}[/] ({row['source']}): {row['text']}", highlight=False)


def cmd_defend(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards defend", description="rank defence system prompts by PB")
    add_config_options(parser)
    parser.add_argument("--candidates", type=Path, action="append", default=[],
                        help="more candidates: TOML [[defences]] name/text, JSON, JSONL or text (one a line)")
    parser.add_argument("--no-builtin", action="store_true", help="leave out the paper's defences D1-D4")
    parser.add_argument("--apply", action="store_true",
                        help="write the winner (if significantly better) to target.system_prompt_file")
    parser.add_argument("--markdown", type=Path, help="write the ranking as Markdown here")
    parser.add_argument("--json", type=Path, help="write the ranking as JSON here")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    settings = load_settings(args.config, overrides(args))
    target = prompt_path(settings) if args.apply else None  # fail before any request
    from guards.mitigate.candidates import candidates
    from guards.mitigate.defend import evaluate, rank

    cands = candidates(settings, args.candidates, builtin=not args.no_builtin)
    if len(cands) < 2:
        raise ConfigError("defend: no candidate besides the current prompt (drop --no-builtin or add some)")
    with progress_bars("defend", not args.quiet) as factory:
        evaluated = asyncio.run(evaluate(settings, cands, progress=factory))
    result = rank(settings, evaluated, n_boot=args.n_boot)
    print_table(result)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(result), encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if target is not None:
        winner = next((r for r in result["candidates"] if r["name"] == result["winner"]), None)
        if winner is None:
            print("--apply: no candidate is significantly better than the current prompt; nothing written")
        else:
            target.write_text(winner["prompt"] + "\n", encoding="utf-8")
            print(f"--apply: wrote {winner['name']} to {target}")
    return 0


def cmd_export_pairs(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards export-pairs",
                                     description="DPO preference pairs (TRL format) from a finished run")
    add_config_options(parser)
    parser.add_argument("report", type=Path, help="the run's JSON report (its outcomes lie beside it)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSONL file to write")
    parser.add_argument("--variant", choices=("identity", "empty", "random"), default="identity",
                        help="prompt: the identity's messages (default), an empty system prompt, or a random identity")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random identities")
    args = parser.parse_args(argv)
    settings = load_settings(args.config, overrides(args))
    from guards.mitigate.pairs import export_pairs

    counts = export_pairs(settings, args.report, args.output, variant=args.variant, seed=args.seed)
    per_task = ", ".join(f"{k[5:]} {v}" for k, v in sorted(counts.items()) if k.startswith("task:"))
    print(f"wrote {counts['pairs']} pairs ({per_task or 'none'}) -> {args.output}")
    left = counts["missing"] + counts["stale"]
    if left:
        print(f"{left} of {counts['contrasts']} contrasts left out: {counts['missing']} answers not in the cache, "
              f"{counts['stale']} changed in the cache since the run", file=sys.stderr)
    if any(k == "task:do_not_answer" or k == "task:strongreject" for k in counts):
        print("note: `rejected` holds answers to harmful requests; keep the file private", file=sys.stderr)
    return 0
