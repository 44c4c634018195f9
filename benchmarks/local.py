"""Speed of the in-process `local/...` provider on this machine (embedded SmolLM2-135M by default).

    .venv/bin/python benchmarks/local.py                       # batch sizes 1..64, 64 new tokens each
    .venv/bin/python benchmarks/local.py --gate 32 --gate-max-tokens 300 --batches 1,16

Reports: the first request (model load included) through litellm; decode throughput (new tokens
per second, end of turn ignored so every row makes exactly --new-tokens) per batch size and the
speed-up over batch 1; with --gate N, N concurrent MMLU-style requests through litellm.acompletion
as the gate sends them (end of turn honoured, continuous batching). Sizes that would not finish
within --budget-s are skipped and say so.
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

from guards.models import local
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


async def ask(i: int, max_tokens: int) -> Any:
    import litellm

    return await litellm.acompletion(model=local.DEFAULT_MODEL, messages=messages(i), max_tokens=max_tokens)


def first_request() -> dict[str, float]:
    """Wall time of the first litellm request: model load plus a short answer."""
    local.register()
    start = time.perf_counter()
    asyncio.run(ask(0, 8))
    return {"first_request_s": round(time.perf_counter() - start, 1)}


def throughput(batches: list[int], new_tokens: int, budget_s: float) -> list[dict[str, Any]]:
    """Decode throughput per batch size (prefill included in the time, reported apart)."""
    loaded = local.load("smollm2")
    prompts = [local.prompt_ids(loaded, messages(i)) for i in range(max(batches))]
    tok = loaded.tokenizer

    def run(n: int, tokens: int) -> float:
        start = time.perf_counter()
        decode_batch(
            loaded.model, prompts[:n], [GenParams(max_tokens=tokens)] * n, eos_ids=frozenset(),
            pad_id=loaded.pad_id, detokenize=lambda ids: tok.decode(ids, skip_special_tokens=True),
        )  # fmt: skip
        return time.perf_counter() - start

    run(2, 2)  # warm up
    rows: list[dict[str, Any]] = []
    deadline = time.perf_counter() + budget_s
    rate = None
    for n in batches:
        expected = n * new_tokens / rate if rate else 0.0
        if time.perf_counter() + expected > deadline:
            rows.append({"batch": n, "skipped": f"would take ~{expected:.0f} s, past the budget"})
            continue
        seconds = run(n, new_tokens)
        rate = n * new_tokens / seconds
        rows.append(
            {"batch": n, "seconds": round(seconds, 1), "prompt_tokens": sum(len(p) for p in prompts[:n]),
             "new_tokens": n * new_tokens, "tokens_per_s": round(rate, 1)}
        )  # fmt: skip
        print(rows[-1], flush=True)
    base = next((r["tokens_per_s"] for r in rows if r["batch"] == 1 and "tokens_per_s" in r), None)
    for r in rows:
        if base and "tokens_per_s" in r:
            r["speedup_vs_1"] = round(r["tokens_per_s"] / base, 2)
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
        "requests": n, "max_tokens": max_tokens, "batch": local.batcher().max_batch, "seconds": round(seconds, 1),
        "completion_tokens": sum(done), "mean_completion_tokens": round(sum(done) / n, 1),
        "hit_max_tokens": sum(r.choices[0].finish_reason == "length" for r in resps),
        "tokens_per_s": round(sum(done) / seconds, 1), "seconds_per_request": round(seconds / n, 2),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,2,4,8,16,32,64", help="comma list of batch sizes")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--budget-s", type=float, default=300.0, help="skip batch sizes that would end past this")
    ap.add_argument("--gate", type=int, default=0, help="also send this many concurrent requests through litellm")
    ap.add_argument("--gate-max-tokens", type=int, default=300)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    import torch

    result: dict[str, Any] = {"loadavg": os.getloadavg()[0]}
    result.update(first_request())
    result.update(torch_threads=torch.get_num_threads(), invariant=os.environ.get("GUARDS_LOCAL_INVARIANT", "1"))
    print(result, flush=True)
    batches = [int(b) for b in args.batches.split(",") if b]
    if batches:
        result["throughput"] = throughput(batches, args.new_tokens, args.budget_s)
    if args.gate:
        result["gate"] = gate(args.gate, args.gate_max_tokens)
        print(result["gate"], flush=True)
    result["loadavg_end"] = os.getloadavg()[0]
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
