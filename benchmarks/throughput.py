"""Requests per second against a loopback OpenAI-compatible server with a fixed latency, in one run:
a bare thread-pool urllib client, a bare `litellm.acompletion` loop, the gate's model door (through litellm
and through the direct transport), the gate end to end (`pytest suites/`, MMLU and Do-Not-Answer, both
transports) and, where a Python with inspect_ai is found, inspect_ai on the same MMLU requests. Prints rates
and ratios.

    .venv/bin/python benchmarks/throughput.py [--requests 1600] [--latency 0.05] [--concurrency 32]
        [--inspect-python .venv-inspect/bin/python]      # `make bench` sets that venv up

"While running" is the server's view: requests between the first and the last one received; "wall"
divides by the whole process time, start-up, judging and the report included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-key")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from guards.config.settings import load_settings  # noqa: E402
from guards.run.matrix import load_items  # noqa: E402
from guards.testing import Script, ScriptedAssistant, answers_from_items  # noqa: E402


def prompts(data_dir: Path, n: int) -> tuple[list[list[dict[str, str]]], list[str]]:
    """`n` MMLU requests (messages) and their gold letters."""
    settings = load_settings(None, {"data_dir": str(data_dir), "tasks": "mmlu", "samples": n}, environ={})
    items = load_items(settings)["mmlu"]
    messages = [[{"role": "system", "content": f"You are a helpful assistant. I am person {i % 31}."},
                 {"role": "user", "content": item.prompt}] for i, item in enumerate(items)]
    return messages, [item.target or "" for item in items]


def bare_threads(url: str, messages: list[list[dict[str, str]]], concurrency: int) -> float:
    def one(m: list[dict[str, str]]) -> None:
        body = json.dumps({"model": "scripted", "messages": m, "max_tokens": 300}).encode()
        req = urllib.request.Request(f"{url}/chat/completions", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            json.loads(resp.read())

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, messages))
    return len(messages) / (time.perf_counter() - start)


async def _bare_litellm(url: str, messages: list[list[dict[str, str]]], concurrency: int) -> float:
    import litellm

    litellm.suppress_debug_info = True
    sem = asyncio.Semaphore(concurrency)

    async def one(m: list[dict[str, str]]) -> None:
        async with sem:
            await litellm.acompletion(model="openai/scripted", api_base=url, messages=m, max_tokens=300)

    await one(messages[0])  # warm the client
    start = time.perf_counter()
    await asyncio.gather(*(one(m) for m in messages))
    return len(messages) / (time.perf_counter() - start)


async def _door(url: str, messages: list[list[dict[str, str]]], concurrency: int, transport: str = "litellm"
                ) -> float:
    from guards.models.cache import Cache
    from guards.models.client import ModelClient

    with tempfile.TemporaryDirectory() as tmp:
        client = ModelClient("openai/scripted", api_base=url, concurrency=concurrency,
                             params={"max_tokens": 300}, cache=Cache(Path(tmp) / "c.sqlite"), transport=transport)
        await client.chat(messages[0], sample=99)
        start = time.perf_counter()
        await asyncio.gather(*(client.chat(m) for m in messages))
        rate = len(messages) / (time.perf_counter() - start)
        await client.aclose()
        client.cache.close()
    return rate


def _rates(server: ScriptedAssistant, command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(while running, over the wall time) requests per second of one subprocess against `server`."""
    before, server.first_at = server.requests, None
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    sent = server.requests - before
    if sent < 2 or server.first_at is None or server.last_at is None:
        raise SystemExit(f"{command[1:3]} sent {sent} requests:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return (sent - 1) / (server.last_at - server.first_at), sent / wall


def gate(server: ScriptedAssistant, data_dir: Path, samples: int, concurrency: int, transport: str = "litellm"
         ) -> tuple[float, float]:
    """`pytest suites/` on 31 identities + baseline x (MMLU, DNA) with `samples` items each."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "thresholds.toml"
        config.write_text(f'[target]\nmodel = "openai/scripted"\napi_base = "{server.url}"\ntransport = "{transport}"\n'
                          f'[tasks]\nnames = ["mmlu", "do_not_answer"]\n[judge]\nname = "patterns"\n'
                          f'[run]\nprofile = "pr"\nconcurrency = {concurrency}\ncache_dir = "{tmp}/cache"\n')
        env = {**os.environ, "GUARDS_DATA_DIR": str(data_dir), "GUARDS_SAMPLES": str(samples)}
        return _rates(server, [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
                               "--guards-config", str(config)], env)


def inspect_ai(server: ScriptedAssistant, python: str, messages: list[list[dict[str, str]]], answers: list[str],
               concurrency: int) -> tuple[float, float]:
    """The same MMLU requests through inspect_ai (`benchmarks/inspect_peer.py`), in its own Python."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "prompts.json"
        rows.write_text(json.dumps([{"messages": m, "target": a} for m, a in zip(messages, answers, strict=True)]))
        return _rates(server, [python, str(REPO / "benchmarks/inspect_peer.py"), str(rows), server.url,
                               str(concurrency)], {**os.environ, "INSPECT_LOG_DIR": tmp})


def find_inspect(explicit: str | None) -> str | None:
    """A Python that can import inspect_ai: the one given, `.venv-inspect`, or none."""
    for candidate in (explicit, os.environ.get("INSPECT_PYTHON"), str(REPO / ".venv-inspect/bin/python")):
        if candidate and subprocess.run([candidate, "-c", "import inspect_ai"], capture_output=True,
                                        check=False).returncode == 0:
            return candidate
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gate-samples", type=int, default=25, help="items per task for the end-to-end gate run")
    default_data = Path(os.environ.get("GUARDS_DATA_DIR", REPO.parent / "shared/data"))
    parser.add_argument("--data-dir", type=Path, default=default_data)
    parser.add_argument("--inspect-python", help="a Python with inspect_ai (default: $INSPECT_PYTHON, .venv-inspect)")
    args = parser.parse_args()
    messages, letters = prompts(args.data_dir, args.requests)
    settings = load_settings(None, {"data_dir": str(args.data_dir), "tasks": "mmlu,do_not_answer",
                                    "samples": max(args.gate_samples, args.requests)}, environ={})
    answers = answers_from_items(i for its in load_items(settings).values() for i in its)
    inspect_python = find_inspect(args.inspect_python)
    running: dict[str, list[float]] = {name: [] for name in (
        "thread-pool urllib", "bare litellm.acompletion", "gate model door", "gate model door, direct",
        "gate end to end (pytest suites/)", "gate end to end, direct")}
    wall: dict[str, list[float]] = {"gate end to end (pytest suites/)": [], "gate end to end, direct": []}
    if inspect_python:
        running["inspect_ai"], wall["inspect_ai"] = [], []
    with ScriptedAssistant(Script(answers=answers), latency_s=args.latency) as server:
        for _ in range(args.repeats):
            running["thread-pool urllib"].append(bare_threads(server.url, messages, args.concurrency))
            running["bare litellm.acompletion"].append(
                asyncio.run(_bare_litellm(server.url, messages, args.concurrency)))
            running["gate model door"].append(asyncio.run(_door(server.url, messages, args.concurrency)))
            running["gate model door, direct"].append(
                asyncio.run(_door(server.url, messages, args.concurrency, "direct")))
            measured = {"gate end to end (pytest suites/)": gate(server, args.data_dir, args.gate_samples,
                                                                 args.concurrency),
                        "gate end to end, direct": gate(server, args.data_dir, args.gate_samples, args.concurrency,
                                                        "direct")}
            if inspect_python:
                measured["inspect_ai"] = inspect_ai(server, inspect_python, messages, letters, args.concurrency)
            for name, (while_running, over_wall) in measured.items():
                running[name].append(while_running)
                wall[name].append(over_wall)
    ref = statistics.median(running["bare litellm.acompletion"])
    print(f"loopback server, latency {args.latency * 1000:.0f} ms, {args.concurrency} in flight, "
          f"{args.requests} MMLU requests (the gate: 32 x 2 x {args.gate_samples} MMLU + DNA cells); "
          f"medians of {args.repeats} runs; {os.cpu_count()} cores")
    print(f"{'client':<36}{'req/s running':>14}{'vs bare litellm':>17}{'req/s wall':>12}")
    for name, values in running.items():
        med = statistics.median(values)
        over = f"{statistics.median(wall[name]):>12.1f}" if name in wall else f"{'':>12}"
        print(f"{name:<36}{med:>14.1f}{med / ref:>16.2f}x{over}")
    if "inspect_ai" in running:
        peer, peer_wall = statistics.median(running["inspect_ai"]), statistics.median(wall["inspect_ai"])
        for name in ("gate end to end (pytest suites/)", "gate end to end, direct"):
            print(f"{name} vs inspect_ai: {statistics.median(running[name]) / peer:.2f}x while running, "
                  f"{statistics.median(wall[name]) / peer_wall:.2f}x over the wall")
    else:
        print("inspect_ai: not found (pass --inspect-python, or `make bench` to set up .venv-inspect)")


if __name__ == "__main__":
    main()
