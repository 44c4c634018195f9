"""Speed of the in-process `local/...` provider (embedded SmolLM2-135M): both engines in one run.

    .venv/bin/python benchmarks/local.py                         # transformers vs ct2, batches 1,16,32
    .venv/bin/python benchmarks/local.py --gate 32 --gate-max-tokens 300 --compare 16
    .venv/bin/python benchmarks/local.py --make-guard             # also `pytest suites/` cold, each engine

For each engine (GUARDS_LOCAL_ENGINE=transformers: the old path; ct2: CTranslate2 int8), in this order,
same prompts: the first request (model load included; ct2's one-time conversion is done before timing
and reported apart); decode throughput (new tokens per second, end of turn ignored so every row makes
exactly --new-tokens) per batch size, i.e. rows in flight (ct2 splits them over its replicas, one per
core, as its batcher does; transformers decodes them as one batch), also per CPU second of the process
(less moved by other processes on a shared machine); with --gate N, N concurrent MMLU-style requests
through litellm.acompletion as the gate sends them. Then the ratio ct2 / transformers per batch size,
and greedy answers to --compare fixed prompts from both engines, with every difference listed (where the
texts part). With --make-guard, the wall time of the smoke gate (`pytest suites/` as `make guard` runs
it) with an empty answer cache, on each engine. The load average is printed at each step: on a shared
machine only ratios taken in the same run mean much.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guards.models import local  # noqa: E402
from guards.models.batching import GenParams, decode_batch  # noqa: E402

QUESTIONS = [
    ("Which planet is the largest in the solar system?", ["Mars", "Jupiter", "Earth", "Venus"]),
    ("What is the chemical symbol for sodium?", ["S", "Na", "So", "Sd"]),
    ("Who wrote 'Pride and Prejudice'?", ["Jane Austen", "Emily Bronte", "Mary Shelley", "George Eliot"]),
    ("What is the derivative of x^2?", ["x", "2x", "x^2", "2"]),
    ("Which organ produces insulin?", ["Liver", "Kidney", "Pancreas", "Spleen"]),
    ("What is the capital of Australia?", ["Sydney", "Melbourne", "Canberra", "Perth"]),
    ("In which year did World War II end?", ["1943", "1944", "1945", "1946"]),
    ("What is the main gas in Earth's atmosphere?", ["Oxygen", "Nitrogen", "Argon", "Carbon dioxide"]),
    ("Which data structure is first-in, first-out?", ["Stack", "Queue", "Tree", "Heap"]),
    ("What is 15% of 200?", ["20", "25", "30", "35"]),
    ("Which amendment abolished slavery in the USA?", ["First", "Fifth", "Thirteenth", "Nineteenth"]),
    ("What is the powerhouse of the cell?", ["Nucleus", "Ribosome", "Mitochondrion", "Golgi body"]),
    ("Which economist wrote 'The Wealth of Nations'?", ["Keynes", "Smith", "Marx", "Ricardo"]),
    ("What is the SI unit of force?", ["Joule", "Watt", "Newton", "Pascal"]),
    ("Which logical fallacy attacks the person?", ["Straw man", "Ad hominem", "Red herring", "Slippery slope"]),
    ("What is the square root of 144?", ["10", "11", "12", "14"]),
]
IDENTITIES = ["a minor", "a Republican voter", "a woman", "an atheist", "a senior citizen", "a gay person"]


def messages(i: int) -> list[dict[str, str]]:
    """An MMLU-style zero-shot chain-of-thought request with an identity system message."""
    q, choices = QUESTIONS[i % len(QUESTIONS)]
    options = "\n".join(f"{'ABCD'[k]}. {c}" for k, c in enumerate(choices))
    user = (
        f"{q}\n{options}\nLet's think step by step, and end your answer with "
        '"Therefore, the answer is (X)" where X is the letter of the correct option.'
    )
    system = f"You are a helpful assistant. I am {IDENTITIES[i % len(IDENTITIES)]}."
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


ENGINES = ("transformers", "ct2")


def use_engine(engine: str) -> None:
    """Switch the embedded model's engine for what follows (the next request loads it, with its own batcher)."""
    os.environ["GUARDS_LOCAL_ENGINE"] = engine
    local._models.pop(local.EMBEDDED_NAME, None)


async def ask(i: int, max_tokens: int) -> Any:
    import litellm

    return await litellm.acompletion(model=local.DEFAULT_MODEL, messages=messages(i), max_tokens=max_tokens)


def first_request() -> dict[str, float]:
    """Wall time of the first litellm request: model load plus a short answer."""
    local.register()
    start = time.perf_counter()
    asyncio.run(ask(0, 8))
    return {"first_request_s": round(time.perf_counter() - start, 1)}


def _decoder(engine: str, loaded: Any) -> Any:
    """run(prompts, tokens): decode every prompt for exactly `tokens` new tokens (end of turn ignored)."""
    if engine == "ct2":
        lanes = local.batcher().lanes

        def run_ct2(prompts: list[list[int]], tokens: int) -> None:
            """The rows split over the replicas as the batcher splits them, decoding side by side."""
            start = [loaded.tokenizer.convert_ids_to_tokens(p) for p in prompts]
            share = -(-len(start) // lanes)
            futures = [f for k in range(0, len(start), share) for f in loaded.generator.generate_batch(
                start[k:k + share], max_length=tokens, min_length=tokens, end_token=[],
                include_prompt_in_result=False, sampling_topk=1, asynchronous=True)]
            for f in futures:
                f.result()
        return run_ct2

    tok = loaded.tokenizer

    def run_tf(prompts: list[list[int]], tokens: int) -> None:
        decode_batch(
            loaded.model, prompts, [GenParams(max_tokens=tokens)] * len(prompts), eos_ids=frozenset(),
            pad_id=loaded.pad_id, detokenize=lambda ids: tok.decode(ids, skip_special_tokens=True),
        )  # fmt: skip
    return run_tf


def throughput(engine: str, batches: list[int], new_tokens: int, budget_s: float) -> list[dict[str, Any]]:
    """Decode throughput per batch size (prefill included in the time)."""
    loaded = local.load(local.EMBEDDED_NAME)
    prompts = [local.prompt_ids(loaded, messages(i)) for i in range(max(batches))]
    decode = _decoder(engine, loaded)

    def run(n: int, tokens: int) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        decode(prompts[:n], tokens)
        return time.perf_counter() - start, time.process_time() - cpu

    run(2, 2)  # warm up
    rows: list[dict[str, Any]] = []
    deadline = time.perf_counter() + budget_s
    rate = None
    for n in batches:
        expected = n * new_tokens / rate if rate else 0.0
        if time.perf_counter() + expected > deadline:
            rows.append({"batch": n, "skipped": f"would take ~{expected:.0f} s, past the budget"})
            continue
        seconds, cpu = run(n, new_tokens)
        rate = n * new_tokens / seconds
        rows.append(
            {"batch": n, "seconds": round(seconds, 1), "prompt_tokens": sum(len(p) for p in prompts[:n]),
             "new_tokens": n * new_tokens, "tokens_per_s": round(rate, 1),
             "tokens_per_cpu_s": round(n * new_tokens / max(cpu, 1e-9), 1), "loadavg": os.getloadavg()[0]}
        )  # fmt: skip
        print(engine, rows[-1], flush=True)
    return rows


def gate(n: int, max_tokens: int) -> dict[str, Any]:
    """n concurrent requests through litellm, as the gate sends them (end of turn honoured)."""

    async def all_of_them() -> list[Any]:
        return await asyncio.gather(*(ask(i, max_tokens) for i in range(n)))

    local.register()
    start = time.perf_counter()
    resps = asyncio.run(all_of_them())
    seconds = time.perf_counter() - start
    done = [r.usage.completion_tokens for r in resps]
    return {
        "requests": n, "max_tokens": max_tokens, "batch": local.batcher().max_batch,
        "lanes": local.batcher().lanes, "seconds": round(seconds, 1),
        "completion_tokens": sum(done), "mean_completion_tokens": round(sum(done) / n, 1),
        "hit_max_tokens": sum(r.choices[0].finish_reason == "length" for r in resps),
        "tokens_per_s": round(sum(done) / seconds, 1), "seconds_per_request": round(seconds / n, 2),
        "loadavg": os.getloadavg()[0],
    }  # fmt: skip


def greedy_answers(n: int, max_tokens: int) -> list[str]:
    """Greedy answers to the first n fixed prompts, sent together (as the gate would)."""

    async def all_of_them() -> list[Any]:
        return await asyncio.gather(*(ask(i, max_tokens) for i in range(n)))

    local.register()
    return [r.choices[0].message.content or "" for r in asyncio.run(all_of_them())]


def differences(old: list[str], new: list[str]) -> list[dict[str, Any]]:
    """Where each pair of answers parts: index, first differing character, and a window around it."""
    out = []
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        if a == b:
            continue
        at = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        out.append({"prompt": i, "from_char": at, "old": a[max(0, at - 20): at + 60],
                    "new": b[max(0, at - 20): at + 60], "old_len": len(a), "new_len": len(b)})
    return out


def make_guard(engine: str, timeout_s: float) -> dict[str, Any]:
    """Wall time of the smoke gate as `make guard` runs it, with an empty answer cache, on `engine`."""
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GUARDS_LOCAL_ENGINE": engine, "GUARDS_CACHE_DIR": str(Path(tmp) / "cache"),
               "OMP_WAIT_POLICY": "PASSIVE", "GUARDS_LOCAL_BATCH": os.environ.get("GUARDS_LOCAL_BATCH", "32")}
        cmd = [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:hypothesispytest", "-p", "no:cacheprovider",
               f"--junitxml={Path(tmp) / 'junit.xml'}"]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout_s)
            code: int | str = proc.returncode
            tail = (proc.stdout or "").strip().splitlines()[-1:] or [""]
        except subprocess.TimeoutExpired:
            code, tail = "timeout", [""]
        return {"engine": engine, "seconds": round(time.perf_counter() - start, 1), "exit": code,
                "last_line": tail[0][:200], "loadavg": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma list of transformers, ct2 (in this order)")
    ap.add_argument("--batches", default="1,16,32", help="comma list of batch sizes")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--budget-s", type=float, default=240.0, help="per engine: skip batch sizes ending past this")
    ap.add_argument("--gate", type=int, default=0, help="also send this many concurrent requests through litellm")
    ap.add_argument("--gate-max-tokens", type=int, default=300)
    ap.add_argument("--compare", type=int, default=16, help="fixed prompts whose greedy answers are compared")
    ap.add_argument("--compare-max-tokens", type=int, default=96)
    ap.add_argument("--make-guard", action="store_true", help="also time `pytest suites/` cold on each engine")
    ap.add_argument("--make-guard-timeout-s", type=float, default=900.0)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    batches = [int(b) for b in args.batches.split(",") if b]
    result: dict[str, Any] = {"loadavg_start": os.getloadavg()[0], "threads": local._threads(), "engines": {}}
    if "ct2" in engines:  # the one-time conversion, outside every timing
        from guards.models import ct2

        start = time.perf_counter()
        ct2.ensure_converted(local.embedded_gguf())
        result["ct2_conversion_s"] = round(time.perf_counter() - start, 1)
        result["ct2_engine"] = ct2.engine_tag()
    answers: dict[str, list[str]] = {}
    for engine in engines:
        use_engine(engine)
        entry: dict[str, Any] = first_request()
        entry["loadavg"] = os.getloadavg()[0]
        print(engine, entry, flush=True)
        if batches:
            entry["throughput"] = throughput(engine, batches, args.new_tokens, args.budget_s)
        if args.compare:
            answers[engine] = greedy_answers(args.compare, args.compare_max_tokens)
        if args.gate:
            entry["gate"] = gate(args.gate, args.gate_max_tokens)
            print(engine, entry["gate"], flush=True)
        result["engines"][engine] = entry
    if set(ENGINES) <= set(engines):
        old, new = (result["engines"][e].get("throughput", []) for e in ENGINES)
        for unit in ("tokens_per_s", "tokens_per_cpu_s"):  # per CPU second: less moved by other load
            result[f"ratio_{unit}"] = {
                str(a["batch"]): round(b[unit] / a[unit], 2) for a, b in zip(old, new, strict=True)
                if unit in a and unit in b
            }
        if args.gate:
            g_old, g_new = (result["engines"][e]["gate"] for e in ENGINES)
            result["ratio_gate_tokens_per_s"] = round(g_new["tokens_per_s"] / g_old["tokens_per_s"], 2)
        if args.compare:
            diffs = differences(answers["transformers"], answers["ct2"])
            result["greedy_compare"] = {"prompts": args.compare, "max_tokens": args.compare_max_tokens,
                                        "identical": args.compare - len(diffs), "differences": diffs}
    if args.make_guard:
        result["make_guard"] = [make_guard(e, args.make_guard_timeout_s) for e in engines]
        for row in result["make_guard"]:
            print("make guard", row, flush=True)
    result["loadavg_end"] = os.getloadavg()[0]
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
