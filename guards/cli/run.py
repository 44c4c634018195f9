"""`guards run`, `guards merge`, `guards plan`: evaluation outside pytest, sharding, and planning."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from guards.cli.main import add_config_options, overrides
from guards.config.settings import ConfigError, load_settings
from guards.core import exitcodes
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
        run = evaluate(settings, show_progress=not args.quiet, shard=shard, report_path=args.report)
        assert run.outcomes is not None
        print(f"shard {args.shard}: {len(run.outcomes.cells)} cells -> {args.report} and {outcomes_path(args.report)}"
              f"{_aborted(run.aborted)}")
        # a shard's job is its outcomes (the merge gates): it fails only when it could not ask
        return exitcodes.ERROR if run.aborted else exitcodes.PASS
    run = evaluate(dataclasses.replace(settings, report=str(args.report)), show_progress=not args.quiet)
    print(f"verdict: {run.report['verdict']} -> {args.report}{_aborted(run.aborted)}")
    return exitcodes.for_verdict(run.report["verdict"], settings.thresholds.on_inconclusive)


def _aborted(reason: str | None) -> str:
    return f" (run aborted: {reason})" if reason else ""


def shard_set(parts: Sequence[tuple[Path, Outcomes]]) -> tuple[int, list[int]]:
    """(n, missing shard numbers) of a set of shard outcomes; ConfigError naming a duplicated, mixed or unsharded
    file. Pure: the merge decides from this whether the set is whole."""
    seen: dict[int, Path] = {}
    counts = set()
    for path, part in parts:
        shard = part.meta.get("shard")
        if not (isinstance(shard, list) and len(shard) == 2):
            raise ConfigError(f"{path}: not a shard's outcomes (run it with guards run --shard i/n)")
        index, count = int(shard[0]), int(shard[1])
        counts.add(count)
        if index in seen:
            raise ConfigError(f"shard {index}/{count} given twice: {seen[index]} and {path}")
        seen[index] = path
    if len(counts) != 1:
        raise ConfigError(f"shards of different splits: n = {sorted(counts)}")
    count = counts.pop()
    return count, [i for i in range(1, count + 1) if i not in seen]


def cmd_merge(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards merge", description="join shard outcomes into one report")
    add_config_options(parser)
    parser.add_argument("shards", nargs="+", type=Path, help="shard reports or their .outcomes.jsonl files")
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--allow-partial", action="store_true",
                        help="merge although shards are missing: the report is marked partial and never gates green")
    args = parser.parse_args(argv)
    settings = load_settings(args.config, overrides(args))
    paths = [p if p.name.endswith(".outcomes.jsonl") else outcomes_path(p) for p in args.shards]
    for path in paths:
        if not path.exists():
            raise ConfigError(f"{path} not found (guards run --shard i/n --report R writes R and R's outcomes)")
    parts = [(path, Outcomes.read(path)) for path in paths]
    count, missing = shard_set(parts)
    if missing and not args.allow_partial:
        raise ConfigError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: merge every shard "
                          "(or --allow-partial, which can never gate green)")
    try:
        merged = Outcomes.merge([part for _, part in parts])
    except ValueError as exc:
        raise ConfigError(f"guards merge: {exc}") from None
    merged.meta.pop("partial", None)  # each shard is partial on its own; the set decides
    if missing:
        merged.meta["partial"] = {"missing": [f"{i}/{count}" for i in missing], "of": count}
    aborted = [str(part.meta["aborted"]) for _, part in parts if part.meta.get("aborted")]
    merged.meta["aborted"] = aborted[0] if aborted else None
    merged.meta["request_errors"] = [e for _, part in parts for e in list(part.meta.get("request_errors") or [])][:5]  # type: ignore[call-overload]
    from guards.report.build import build_report, write_report
    from guards.run.session import finalize

    report = finalize(build_report(settings, merged), merged)
    write_report(report, args.report, merged)
    note = f" (PARTIAL: missing {', '.join(f'{i}/{count}' for i in missing)})" if missing else ""
    print(f"merged {len(parts)} shards ({len(merged.cells)} cells): verdict {report['verdict']} -> {args.report}"
          f"{note}")
    return exitcodes.for_verdict(report["verdict"], settings.thresholds.on_inconclusive)


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
