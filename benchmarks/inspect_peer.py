"""The peer in `benchmarks/throughput.py`: the same MMLU requests through inspect_ai.

Run with a Python that has inspect_ai (it is not a dependency of persona-guard):

    python benchmarks/inspect_peer.py PROMPTS.json URL CONCURRENCY

PROMPTS.json holds [{"messages": [...], "target": "B"}, ...]. Prints one JSON line: the wall time (start-up
included) and the start-up (imports until the evaluation starts), in seconds.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

START = time.perf_counter()

from inspect_ai import Task  # noqa: E402
from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.dataset import MemoryDataset, Sample  # noqa: E402
from inspect_ai.model import ChatMessageSystem, ChatMessageUser  # noqa: E402
from inspect_ai.scorer import pattern  # noqa: E402
from inspect_ai.solver import generate  # noqa: E402


def main(prompts_path: str, url: str, concurrency: int) -> None:
    with open(prompts_path) as f:
        rows = json.load(f)
    samples = [Sample(input=[ChatMessageSystem(content=r["messages"][0]["content"]),
                             ChatMessageUser(content=r["messages"][1]["content"])],
                      target=r["target"], id=i) for i, r in enumerate(rows)]
    task = Task(dataset=MemoryDataset(samples), solver=generate(), scorer=pattern(r"answer is \(?([A-D])"))
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-key")
    with tempfile.TemporaryDirectory() as logs:
        started = time.perf_counter()
        inspect_eval(task, model="openai/scripted", model_base_url=url, model_args={"responses_api": False},
                     max_connections=concurrency,
                     max_tokens=300, display="none", log_dir=logs, log_samples=False)
    print(json.dumps({"wall_s": time.perf_counter() - START, "startup_s": started - START}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
