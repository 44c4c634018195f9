"""Warm reruns: a fully cached rerun of the five-task matrix (responses, judge verdicts and sandbox results
all cached) measured in cells per second after start-up, plus the start-up itself.

    .venv/bin/python benchmarks/rerun.py [--profile pr] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-key")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from guards.config.settings import load_settings  # noqa: E402
from guards.report.build import build_report  # noqa: E402
from guards.run.matrix import load_items  # noqa: E402
from guards.run.runner import collect  # noqa: E402
from guards.testing import Script, ScriptedAssistant, answers_from_items  # noqa: E402


def time_to_first_request(url: str, data_dir: str, tmp: str, transport: str = "litellm") -> float:
    """Seconds from launching `pytest suites/` to the first request reaching the server (imports included)."""
    config = Path(tmp) / "first.toml"
    config.write_text(f'[target]\nmodel = "openai/scripted"\napi_base = "{url}"\ntransport = "{transport}"\n'
                      f'[tasks]\nnames = ["mmlu"]\n'
                      f'[judge]\nname = "patterns"\n[run]\ncache = "off"\n')
    return _first(url, [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
                        "--guards-config", str(config), "--guards-data-dir", data_dir, "--guards-samples", "2"])


def _first(url: str, command: list[str]) -> float:
    import subprocess

    server = _SERVERS[url]
    before = server.requests
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while server.requests == before and proc.poll() is None:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    proc.wait()
    return elapsed


_SERVERS: dict[str, ScriptedAssistant] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="pr")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--judge", default="offline")
    parser.add_argument("--samples", type=int, help="items per task (default: the profile's)")
    parser.add_argument("--data-dir", default=os.environ.get("GUARDS_DATA_DIR", str(REPO.parent / "shared/data")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ScriptedAssistant() as server:
        over = {"model": "openai/scripted", "api_base": server.url, "data_dir": args.data_dir,
                "profile": args.profile, "cache_dir": tmp, "judge": args.judge, "concurrency": 64,
                "samples": args.samples}
        _SERVERS[server.url] = server
        for transport, note in (("litellm", "litellm import included"), ("direct", "the direct transport")):
            firsts = [time_to_first_request(server.url, args.data_dir, tmp, transport) for _ in range(args.repeats)]
            print(f"time to first request (pytest suites/, {note}): "
                  f"{statistics.median(firsts):.2f} s (median of {args.repeats})")
        settings = load_settings(None, over, environ={})
        server.set_script(Script(answers=answers_from_items(i for its in load_items(settings).values() for i in its)))
        start = time.perf_counter()
        outcomes = asyncio.run(collect(settings))
        cold = time.perf_counter() - start
        cells = len(outcomes.cells)
        print(f"profile {args.profile}: {cells} cells; cold run {cold:.1f} s ({cells / cold:.0f} cells/s, "
              f"{server.requests} requests)")
        warm, analysis = [], []
        for _ in range(args.repeats):
            asked = server.requests
            start = time.perf_counter()
            outcomes = asyncio.run(collect(settings))
            mid = time.perf_counter()
            build_report(settings, outcomes)
            end = time.perf_counter()
            assert server.requests == asked, "a warm rerun must not send any request"
            warm.append(cells / (mid - start))
            analysis.append(end - mid)
    print(f"warm rerun: {statistics.median(warm):,.0f} cells/s filling the matrix from the cache "
          f"(median of {args.repeats}); statistics and report {statistics.median(analysis):.2f} s")


if __name__ == "__main__":
    main()
