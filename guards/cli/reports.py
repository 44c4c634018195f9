"""`guards report`, `guards compare`, `guards drift`: render a saved run, compare two, watch a history."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guards.config.settings import ConfigError, load_settings
from guards.core.outcomes import Outcomes, outcomes_path
from guards.report.build import ReportError, load_report


def _report(path: Path) -> dict[str, Any]:
    try:
        return load_report(path)
    except ReportError as exc:
        raise ConfigError(str(exc)) from exc


def _outcomes(path: Path) -> Outcomes | None:
    beside = outcomes_path(path)
    return Outcomes.read(beside) if beside.exists() else None


def _write(text: str, target: str | None) -> None:
    """Write to a file, or to stdout for "-"."""
    if target is None:
        return
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(text, encoding="utf-8")


def _settings(config: Path | None) -> Any:
    return load_settings(config, {}) if config is not None else None


def responses_for(report_path: Path, outcomes: Outcomes, cache_dir: Path | None) -> dict[str, str]:
    """Response texts by response key: a `<stem>.responses.jsonl` beside the report, else the response cache."""
    side = report_path.with_name(report_path.stem + ".responses.jsonl")
    if side.exists():
        rows = (json.loads(x) for x in side.read_text(encoding="utf-8").splitlines() if x.strip())
        return {r["key"]: r["text"] for r in rows}
    from guards.report.html import responses_from_cache

    folder = cache_dir or Path(os.environ.get("GUARDS_CACHE_DIR", ".guards/cache"))
    return responses_from_cache(folder / "cache.sqlite", outcomes.cells)


def cmd_report(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards report", description="render a saved run: Markdown, PR comment, "
                                     "HTML, plots (with no output option: the Markdown summary on stdout)")
    parser.add_argument("report", type=Path)
    parser.add_argument("--markdown", help="the job summary (Markdown) to this file, or - for stdout")
    parser.add_argument("--step-summary", action="store_true", help="append the summary to $GITHUB_STEP_SUMMARY")
    parser.add_argument("--comment", help="the PR comment (with its update-in-place marker) to this file")
    parser.add_argument("--base", type=Path, help="the base branch's report: the comment says what changed")
    parser.add_argument("--margin", type=float, help="with --base: change (pp) that counts (default: thresholds)")
    parser.add_argument("--html", help="one self-contained HTML file")
    parser.add_argument("--plots", type=Path, help="folder for identities.png and identities.svg")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("GUARDS_DATA_DIR"),
                        help="data folder, to show prompts in the HTML (GUARDS_DATA_DIR)")
    parser.add_argument("--cache-dir", type=Path, help="response cache, for response texts (GUARDS_CACHE_DIR)")
    parser.add_argument("--include-harmful", action="store_true",
                        help="show responses to harmful prompts in the HTML (redacted by default)")
    parser.add_argument("--config", type=Path, help="thresholds.toml (its run.redact_harmful)")
    args = parser.parse_args(argv)
    report = _report(args.report)
    outcomes = _outcomes(args.report)
    from guards.report.markdown import markdown_summary, pr_comment

    summary = markdown_summary(report)
    _write(summary, args.markdown)
    if args.step_summary and os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
            handle.write(summary + "\n")
    if args.comment:
        base = _report(args.base) if args.base else None
        changes = None
        if base is not None and args.base is not None:
            base_outcomes = _outcomes(args.base)
            if base_outcomes is not None and outcomes is not None:
                changes = _compare(base, base_outcomes, report, outcomes, args.margin)
        _write(pr_comment(report, base, changes), args.comment)
    png = None
    if args.plots:
        from guards.report.plots import identity_plot

        png = identity_plot(report, args.plots / "identities").png
    if args.html:
        from guards.report.html import divergent_items, item_prompts, write_html

        settings = _settings(args.config)
        redact = not args.include_harmful and (settings is None or settings.redact_harmful)
        responses: dict[str, str] = {}
        prompts: dict[tuple[str, str], str] = {}
        if outcomes is not None:
            responses = {} if redact and not _utility_tasks(report) else responses_for(
                args.report, outcomes, args.cache_dir)
            if args.data_dir is not None:
                wanted: dict[str, set[str]] = {}
                for ident in report["identities"]:
                    for task in outcomes.items:
                        wanted.setdefault(task, set()).update(
                            r["item"] for r in divergent_items(outcomes, ident["id"], task))
                prompts = item_prompts(report, args.data_dir, wanted)
        write_html(report, Path(args.html), outcomes, responses=responses, prompts=prompts, redact_harmful=redact,
                   plot_png=png)
    if not any((args.markdown, args.comment, args.html, args.plots, args.step_summary)):
        sys.stdout.write(summary)
    return 0


def _utility_tasks(report: dict[str, Any]) -> bool:
    from guards.report.fields import task_axes

    return "utility" in task_axes(report).values()


def _compare(base: dict[str, Any], base_outcomes: Outcomes, head: dict[str, Any], head_outcomes: Outcomes,
             margin: float | None, alpha: float | None = None) -> dict[str, Any]:
    from guards.analysis.compare import compare_runs, summarize
    from guards.report.fields import report_axes, report_margins

    rec = head.get("record", {})
    changes = compare_runs(base_outcomes, head_outcomes, axes=report_axes(head), margins=report_margins(head, margin),
                           alpha=float(alpha if alpha is not None else rec.get("alpha", 0.05)),
                           method=str(rec.get("correction", "holm")))
    return summarize(base, head, changes)


def cmd_compare(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards compare", description="what a change did: base vs head, paired "
                                     "on per-item outcomes (exit 1 with --fail-on-regression when a gap grew)")
    parser.add_argument("base", type=Path)
    parser.add_argument("head", type=Path)
    parser.add_argument("--margin", type=float, help="change (pp) that counts; default: each test's threshold")
    parser.add_argument("--alpha", type=float, help="default: the head run's alpha")
    parser.add_argument("--all", action="store_true", help="list every identity x task, not only those that moved")
    parser.add_argument("--markdown", help="write the Markdown here (- for stdout; default stdout)")
    parser.add_argument("--json", help="write the comparison as JSON here")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 when a gap grew with evidence (also thresholds.fail_on_regression in --config)")
    parser.add_argument("--config", type=Path, help="thresholds.toml")
    args = parser.parse_args(argv)
    base, head = _report(args.base), _report(args.head)
    base_outcomes, head_outcomes = _outcomes(args.base), _outcomes(args.head)
    for path, found in ((args.base, base_outcomes), (args.head, head_outcomes)):
        if found is None:
            raise ConfigError(f"no per-item outcomes beside {path} ({outcomes_path(path).name}): cannot pair")
    assert base_outcomes is not None and head_outcomes is not None
    summary = _compare(base, base_outcomes, head, head_outcomes, args.margin, args.alpha)
    from guards.report.markdown import changes_markdown

    _write(changes_markdown(summary, all_rows=args.all), args.markdown or "-")
    _write(json.dumps(summary, indent=2) + "\n", args.json)
    settings = _settings(args.config)
    gate = args.fail_on_regression or (settings is not None and settings.thresholds.fail_on_regression)
    if gate and summary["worse"]:
        print(f"guards compare: made it worse for {', '.join(summary['worse'])}", file=sys.stderr)
        return 1
    return 0


def cmd_drift(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="guards drift", description="compare the latest run with the history, "
                                     "paired on per-item outcomes; trend chart per identity")
    parser.add_argument("--history", type=Path, required=True, help="the history folder")
    parser.add_argument("--report", type=Path, help="the latest run (default: the history's last run)")
    parser.add_argument("--append", action="store_true", help="append --report (and its outcomes) to the history")
    parser.add_argument("--against", default="previous", help="previous (default), first, or a run id")
    parser.add_argument("--margin", type=float, help="change (pp) that counts; default: each test's threshold")
    parser.add_argument("--alpha", type=float, help="default: the run's alpha")
    parser.add_argument("--plots", type=Path, help="folder for trend-<identity>.png")
    parser.add_argument("--markdown", help="write the Markdown here (- for stdout; default stdout)")
    parser.add_argument("--json", help="write the result as JSON here")
    parser.add_argument("--fail-on-drift", action="store_true", help="exit 1 when drift is found")
    args = parser.parse_args(argv)
    from guards.report.history import append_history, drift, drift_markdown, run_id, trend_charts

    if args.append and args.report is None:
        raise ConfigError("--append needs --report")
    try:
        if args.report is not None:
            report = _report(args.report)
            if args.append:
                append_history(args.history, report, _outcomes(args.report))
                result = drift(args.history, latest=run_id(report), against=args.against, margin=args.margin,
                               alpha=args.alpha)
            else:
                result = drift(args.history, report=report, outcomes=_outcomes(args.report), against=args.against,
                               margin=args.margin, alpha=args.alpha)
        else:
            result = drift(args.history, against=args.against, margin=args.margin, alpha=args.alpha)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if args.plots:
        trend_charts(args.history, args.plots, result)
    _write(drift_markdown(result), args.markdown or "-")
    _write(json.dumps(result.as_dict(), indent=2) + "\n", args.json)
    return 1 if args.fail_on_drift and result.flagged else 0
