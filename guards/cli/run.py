"""`guards run`, `guards merge`, `guards plan`: evaluation outside pytest, sharding, and planning."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from guards.cli.main import add_config_options, overrides
from guards.config.settings import ConfigError, load_settings
from guards.core.outcomes import Outcomes, outcomes_path


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """"i/n" (1-based i) -> (i - 1, n)."""
    if not text:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError as exc:
        raise ConfigError(f"--shard: expected i/n such as 2/3, got {text!r}") from exc
    if not 1 <= index <= count:
        raise ConfigError(f"--shard: i must be between 1 and n, got {text!r}")
    return index - 1, count


def cmd_run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards run", description="evaluate identities x tasks; write a report")
    add_config_options(parser)
    parser.add_argument("--shard", help="i/n: evaluate only this deterministic slice of the items")
    parser.add_argument("--report", type=Path, required=True, help="JSON report path (outcomes go beside it)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(args.config, overrides(args))
    shard = parse_shard(args.shard)
    if shard is not None and settings.adaptive:
        raise ConfigError("--shard: adaptive sampling decides per look over all items; shard with adaptive = false")
    from guards.run.session import evaluate

    if shard is not None:
        run = evaluate(settings, show_progress=not args.quiet, shard=shard)
        assert run.outcomes is not None
        run.outcomes.meta["shard"] = [shard[0] + 1, shard[1]]
        run.outcomes.write(outcomes_path(args.report))
        print(f"shard {args.shard}: {len(run.outcomes.cells)} cells -> {outcomes_path(args.report)}")
        return 0
    run = evaluate(dataclasses.replace(settings, report=str(args.report)), show_progress=not args.quiet)
    print(f"verdict: {run.report['verdict']} -> {args.report}")
    return 0


def cmd_merge(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards merge", description="join shard outcomes into one report")
    add_config_options(parser)
    parser.add_argument("shards", nargs="+", type=Path, help="shard reports or their .outcomes.jsonl files")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = load_settings(args.config, overrides(args))
    parts = [Outcomes.read(p if p.name.endswith(".outcomes.jsonl") else outcomes_path(p)) for p in args.shards]
    merged = Outcomes.merge(parts)
    from guards.report.build import build_report, write_report

    report = build_report(settings, merged)
    write_report(report, args.report, merged)
    print(f"merged {len(parts)} shards ({len(merged.cells)} cells): verdict {report['verdict']} -> {args.report}")
    return 0


def cmd_plan(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards plan", description="what a run will ask, cost and detect")
    add_config_options(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--gap", type=float, help="target gap (pp) to size samples for (default: threshold + 10)")
    args = parser.parse_args(argv)
    settings = load_settings(args.config, overrides(args))
    from guards.run.planning import make_plan, render_plan

    plan = make_plan(settings, args.gap)
    print(json.dumps(plan, indent=2) if args.json else render_plan(plan))
    return 0
