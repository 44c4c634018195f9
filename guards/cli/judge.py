"""`guards judge`: judge your own transcripts. JSONL {"prompt", "response"} in, one verdict line per input out.

Each output line keeps the input's fields and adds `safe` (true, false, or null = unscored), `harm`
(the graded score for graded judges, else null), `refused`, `judge`, `judge_version` and `reason`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

from guards.core import exitcodes
from guards.judges import JUDGES, get_judge
from guards.judges.base import Judge, Verdict


class InputError(ValueError):
    """A line of the input is not a JSON object with a string `response`."""


def parse_line(line: str, number: int) -> dict[str, Any]:
    """One input record; `prompt` defaults to "" and a null response to ""."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"line {number}: not JSON ({exc.msg})") from exc
    if not isinstance(rec, dict) or "response" not in rec:
        raise InputError(f'line {number}: expected an object with "response" (and "prompt")')
    for key in ("prompt", "response"):
        value = rec.get(key)
        if value is None:
            rec[key] = ""
        elif not isinstance(value, str):
            raise InputError(f"line {number}: {key!r} must be a string")
    return rec


def read_records(stream: IO[str]) -> Iterator[dict[str, Any]]:
    """Records from JSONL; blank lines are skipped."""
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield parse_line(line, number)


def output_record(rec: dict[str, Any], verdict: Verdict, judge: Judge) -> dict[str, Any]:
    return {
        **rec,
        "safe": verdict.safe,
        "harm": verdict.harm,
        "refused": verdict.refused,
        "judge": judge.name,
        "judge_version": judge.version,
        "reason": verdict.reason,
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="guards judge", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("input", nargs="?", default="-", help="JSONL file with prompt and response ('-' = stdin)")
    p.add_argument("--judge", default="offline",
                   help=f"judge name: {', '.join(JUDGES)}, an installed persona_guard.judges entry point, or "
                        "module:Class (default: offline)")
    p.add_argument("--model", help="judge model (litellm model string; for longformer a local folder or hub id)")
    p.add_argument("--api-base", help="API base URL for the judge model")
    p.add_argument("-o", "--output", default="-", help="output JSONL ('-' = stdout)")
    p.add_argument("--batch-size", type=int, default=64, help="responses per judge call")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


async def _run(judge: Judge, records: list[dict[str, Any]], out: IO[str], batch: int, progress: bool) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    unscored = 0
    columns = (TextColumn(f"judging ({judge.name})"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task("judge", total=len(records))
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            verdicts = await judge.judge([r["prompt"] for r in chunk], [r["response"] for r in chunk])
            for rec, verdict in zip(chunk, verdicts, strict=True):
                unscored += verdict.safe is None
                out.write(json.dumps(output_record(rec, verdict, judge), ensure_ascii=False) + "\n")
            out.flush()
            bar.advance(task, len(chunk))
    return unscored


def main(argv: list[str] | None = None) -> int:
    """Entry point; 0 on success, 1 when the judge cannot be built, 4 (the table's usage code) on bad input."""
    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        print("guards judge: --batch-size must be >= 1", file=sys.stderr)
        return exitcodes.USAGE
    with ExitStack() as stack:
        src = sys.stdin if args.input == "-" else stack.enter_context(open(args.input, encoding="utf-8"))
        try:
            records = list(read_records(src))
        except (InputError, UnicodeDecodeError) as exc:
            print(f"guards judge: {exc}", file=sys.stderr)
            return exitcodes.USAGE
        try:
            judge = get_judge(args.judge, model=args.model, api_base=args.api_base)
        except (ValueError, RuntimeError, ImportError) as exc:
            print(f"guards judge: {exc}", file=sys.stderr)
            return 1
        out = sys.stdout if args.output == "-" else stack.enter_context(open(args.output, "w", encoding="utf-8"))
        unscored = asyncio.run(_run(judge, records, out, args.batch_size, not args.no_progress))
    if unscored:
        print(f"guards judge: {unscored} of {len(records)} responses unscored (safe = null)", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
