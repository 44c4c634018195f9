"""Where a loopback gate run's wall time goes: start-up and imports, requests, judging, scoring, statistics, report.

    .venv/bin/python benchmarks/gate_breakdown.py [--samples 60] [--latency 0.05] [--concurrency 32]
        [--variants new,old,direct] [--pr]  # --pr: the `pr` profile's own matrix (35,200 requests)
        [--at REV]                       # also `pytest suites/` with git revision REV's code, e.g. 2b062e3

A ScriptedAssistant on 127.0.0.1 answers with a fixed latency; its Do-Not-Answer answers are replayed
from the dataset's real responses (one of the six models', by prompt and identity), so the judge sees
real lengths. For each variant, in one run and in this order:
- `pytest suites/` as a user runs it (wall, subprocess);
- the same gate in an instrumented child (`--child`), which prints its phases: imports, requests
  (asking, answers cached), scoring and judging after the last answer (what judging while requests
  were in flight left over), judging in all (wall of the judging calls, overlapping requests or not),
  utility scoring, statistics (build_report), report (writing it);
- a bare `litellm.acompletion` script sending the same number of requests (import included; once per request
  count, as every variant asks the same requests).
`--pr` runs the `pr` profile as a pull request gets it: 31 identities + baseline x the five tasks at the
profile's sizes (300 MMLU, 150 GSM8K, 100 MBPP, 400 Do-Not-Answer, 150 StrongREJECT items: 35,200 requests,
17,600 of them safety answers for the judge); `--variants new,direct --skip-child` keeps it to the walls.
Variants: "new" = the shipped defaults (ONNX judge, judging while requests are in flight); "old" =
GUARDS_JUDGE_ENGINE=torch and GUARDS_SCORE_AHEAD=0 (the torch judge and all scoring after the last request);
"direct" = the shipped defaults with `transport = "direct"` (no litellm).
`--at REV` adds the gate as it was at git revision REV (its `guards`, `suites` and pytest configuration,
extracted to a temporary folder that comes first on PYTHONPATH), run with that revision's defaults: the
`pytest suites/` wall and the bare script only (the instrumented child needs today's modules).
The load average is printed: the machine is shared, so compare within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-key")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PR_TASKS = "mmlu,gsm8k,mbpp,do_not_answer,strongreject"
VARIANTS = {"new": {}, "old": {"GUARDS_JUDGE_ENGINE": "torch", "GUARDS_SCORE_AHEAD": "0"},
            "direct": {"GUARDS_TRANSPORT": "direct"}}


def config_text(url: str, tasks: str, concurrency: int, cache_dir: str) -> str:
    names = ", ".join(f'"{t}"' for t in tasks.split(","))
    return (f'[target]\nmodel = "openai/scripted"\napi_base = "{url}"\n[tasks]\nnames = [{names}]\n'
            f'[judge]\nname = "offline"\n[run]\nprofile = "pr"\nconcurrency = {concurrency}\n'
            f'cache_dir = "{cache_dir}"\n')


# ---------------------------------------------------------------- the instrumented child


def child(config: str) -> None:
    """Run the gate once with timers around each phase; print them as one JSON line."""
    start = time.perf_counter()
    from guards.config.settings import load_settings
    from guards.run import runner, session

    phases: dict[str, float] = {"imports": time.perf_counter() - start}

    def timed(name: str, fn: Any, is_async: bool) -> Any:
        if is_async:
            async def wrapper_async(*a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                try:
                    return await fn(*a, **k)
                finally:
                    phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
            return wrapper_async

        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
        return wrapper

    runner.ask_all = timed("requests", runner.ask_all, True)
    runner.judge_safety = timed("judging (all calls, overlapping requests or not)", runner.judge_safety, True)
    runner.score_all = timed("scoring and judging after requests", runner.score_all, True)
    runner.score_utility = timed("utility scoring", runner.score_utility, False)
    session.build_report = timed("statistics (build_report)", session.build_report, False)
    session.write_report = timed("report (write)", session.write_report, False)
    t = time.perf_counter()
    settings = load_settings(Path(config), {}, environ=dict(os.environ))
    phases["settings"] = time.perf_counter() - t
    t = time.perf_counter()
    run = session.evaluate(settings, show_progress=False)
    phases["evaluate (all)"] = time.perf_counter() - t
    out = {"phases": {k: round(v, 2) for k, v in phases.items()}, "verdict": run.report.get("verdict"),
           "cells": len(run.outcomes.cells) if run.outcomes else 0,
           "child_wall": round(time.perf_counter() - T0, 2)}
    print("BREAKDOWN " + json.dumps(out))


# ---------------------------------------------------------------- the parent


def dna_replies(data_dir: Path) -> dict[str, list[str]]:
    """Do-Not-Answer prompt -> the six models' real responses."""
    from guards.judges.labels import load_labelled

    out: dict[str, list[str]] = {}
    for split in ("dev", "holdout"):
        for row in load_labelled(data_dir, split):
            out.setdefault(row.prompt, []).append(row.response)
    return out


def replay_safety(replies: dict[str, list[str]]) -> None:
    """Make the scripted server answer Do-Not-Answer prompts with real responses (by prompt and identity)."""
    import zlib

    from guards.testing import server as srv

    original = srv.decide

    def decide(script: Any, messages: Any, request_seed: object = None) -> Any:
        d = original(script, messages, request_seed)
        options = replies.get(d.prompt)
        if d.task == "safety" and options:
            pick = zlib.crc32(f"{d.prompt}|{d.identity}".encode()) % len(options)
            return dataclasses.replace(d, text=options[pick])
        return d

    srv.decide = decide


def bare_litellm(url: str, n: int, concurrency: int) -> float:
    """Wall of a bare litellm script sending n requests (its import included), in a subprocess."""
    code = (
        "import asyncio, sys, time\n"
        "t = time.perf_counter()\n"
        "import litellm\n"
        "litellm.suppress_debug_info = True\n"
        f"sem = asyncio.Semaphore({concurrency})\n"
        "async def one(i):\n"
        "    async with sem:\n"
        f"        await litellm.acompletion(model='openai/scripted', api_base='{url}', max_tokens=300,\n"
        "            messages=[{'role': 'user', 'content': f'Question {i}: what is 2+2?'}])\n"
        "async def main():\n"
        f"    await asyncio.gather(*(one(i) for i in range({n})))\n"
        "asyncio.run(main())\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())
    return time.perf_counter() - start


def extract(rev: str, folder: Path) -> None:
    """The gate's code of git revision `rev` into `folder` (what `pytest suites/` imports and configures)."""
    names = [n for n in ("guards", "suites", "conftest.py", "pyproject.toml") if subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{rev}:{n}"], capture_output=True, check=False).returncode == 0]
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, *names], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--samples", type=int, default=60, help="items per task")
    ap.add_argument("--tasks", default="mmlu,do_not_answer")
    ap.add_argument("--pr", action="store_true", help="the pr profile's own sizes (35,200 requests)")
    ap.add_argument("--skip-child", action="store_true", help="walls only: no instrumented child run")
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--variants", default="new,old")
    ap.add_argument("--at", metavar="REV", help="also run `pytest suites/` with git revision REV's code")
    ap.add_argument("--json", type=Path)
    default_data = Path(os.environ.get("GUARDS_DATA_DIR", REPO.parent / "shared/data"))
    ap.add_argument("--data-dir", type=Path, default=default_data)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    from guards.testing import Script, ScriptedAssistant

    tasks, samples = (PR_TASKS, None) if args.pr else (args.tasks, args.samples)
    bare: dict[int, float] = {}
    replay_safety(dna_replies(args.data_dir))
    results: dict[str, Any] = {"tasks": tasks, "samples": samples, "latency_s": args.latency,
                               "concurrency": args.concurrency, "variants": {}}
    variants_asked = [v for v in args.variants.split(",") if v] + ([f"at {args.at}"] if args.at else [])
    with ScriptedAssistant(Script(), latency_s=args.latency) as server:
        for variant in variants_asked:
            row: dict[str, Any] = {"loadavg_start": os.getloadavg()[0]}
            with tempfile.TemporaryDirectory() as tmp:
                env = {**os.environ, **VARIANTS.get(variant, {}), "GUARDS_DATA_DIR": str(args.data_dir)}
                env.pop("GUARDS_SAMPLES", None)  # --pr: the profile's own sizes
                if samples:
                    env["GUARDS_SAMPLES"] = str(samples)
                code = REPO
                if variant.startswith("at "):
                    code = Path(tmp) / "code"
                    code.mkdir()
                    extract(args.at, code)
                    env["PYTHONPATH"] = str(code)
                for name in ("pytest", "child") if code == REPO and not args.skip_child else ("pytest",):
                    config = Path(tmp) / f"{name}.toml"
                    config.write_text(config_text(server.url, tasks, args.concurrency, f"{tmp}/{name}-cache"))
                    before = server.requests
                    cmd = ([sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
                            "-p", "no:hypothesispytest", "--guards-config", str(config)] if name == "pytest"
                           else [sys.executable, __file__, "--child", str(config)])
                    start = time.perf_counter()
                    proc = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, check=False)
                    wall = time.perf_counter() - start
                    row[f"{name}_wall_s"] = round(wall, 2)
                    row[f"{name}_requests"] = server.requests - before
                    if name == "child":
                        line = next((x for x in proc.stdout.splitlines() if x.startswith("BREAKDOWN ")), None)
                        if line is None:
                            raise SystemExit(f"child failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
                        row.update(json.loads(line.removeprefix("BREAKDOWN ")))
                        row["startup_before_imports_s"] = round(wall - row["child_wall"], 2)
                    else:
                        row["pytest_last_line"] = (proc.stdout.strip().splitlines() or [""])[-1][:160]
                n = row["pytest_requests"]
                if n not in bare:
                    bare[n] = round(bare_litellm(server.url, n, args.concurrency), 2)
                row["bare_litellm_wall_s"] = bare[n]
            row["loadavg_end"] = os.getloadavg()[0]
            results["variants"][variant] = row
            print(variant, json.dumps(row, indent=1), flush=True)
    variants = results["variants"]
    size = f"{samples} items" if samples else "the pr profile's sizes"
    print(f"\nloopback gate, {tasks} x {size}, latency {args.latency * 1000:.0f} ms, "
          f"{args.concurrency} in flight; {os.cpu_count()} cores")
    print(f"{'variant':<8}{'pytest wall':>12}{'bare litellm':>14}{'requests':>10}{'after requests':>16}"
          f"{'judging':>9}{'stats':>8}{'report':>8}{'imports':>9}")
    for name, row in variants.items():
        ph = row.get("phases", {})
        print(f"{name:<8}{row['pytest_wall_s']:>12.1f}{row['bare_litellm_wall_s']:>14.1f}"
              f"{ph.get('requests', 0):>10.1f}{ph.get('scoring and judging after requests', 0):>16.1f}"
              f"{ph.get('judging (all calls, overlapping requests or not)', 0):>9.1f}"
              f"{ph.get('statistics (build_report)', 0):>8.2f}{ph.get('report (write)', 0):>8.2f}"
              f"{ph.get('imports', 0):>9.2f}")
    for other in [v for v in variants if v != "new" and "new" in variants]:
        print(f"pytest wall {other} / new: {variants[other]['pytest_wall_s'] / variants['new']['pytest_wall_s']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
