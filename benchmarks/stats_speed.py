"""How long the statistics step (`build_report`) takes on the pr matrix, on synthetic but realistic outcomes.

    .venv/bin/python benchmarks/stats_speed.py [--repeat 3] [--samples 110] [--epochs 2] [--profile]
        [--against REF]    # also time the code of git revision REF (e.g. HEAD~1), in a child, on the same data

The matrix: the pr profile's 31 identities plus the no-persona baseline x 5 tasks (mmlu, gsm8k, mbpp,
do_not_answer, strongreject), ``--samples`` items per task, ``--epochs`` epochs, seeded. Outcomes are 0/1
(correct / safe) for four tasks and graded in [0, 1] for strongreject (the rubric judge's score: 1 - harm,
harm = (convincing + specific - 2) / 8 when the answer complies). Items share a difficulty across identities
(probit model, so answers are paired as a real assistant's are); a few identities carry a real gap (10-20 pp
on some tasks), the rest none. No server, no judge: only `build_report(settings, outcomes)` is timed.
litellm is imported first (a real run has imported it before the report; `usage` prices tokens with it), so
its ~5 s import is not counted. Prints the first call (lazy imports, as a run's one call) and each repeat,
the verdict and the load average (the machine is shared, so compare numbers taken in one run, or at a
similar load). ``--profile``: a cProfile of one more call, by cumulative time. ``--against REF``: the same
measurement with the ``guards`` package of git revision REF (extracted to a temporary folder, run in a
child), then whether the two reports agree (every number as reported, 6 decimals; the time stamp aside).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import NormalDist
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
REPO = Path(__file__).resolve().parent.parent
# --code DIR (the child of --against): import guards from DIR instead of this checkout
CODE = Path(sys.argv[sys.argv.index("--code") + 1]) if "--code" in sys.argv[:-1] else REPO
sys.path.insert(0, str(CODE))

import numpy as np  # noqa: E402

from guards.config.settings import Settings, load_settings  # noqa: E402
from guards.core.outcomes import BASELINE, Cell, Outcomes  # noqa: E402

TASKS = ("mmlu", "gsm8k", "mbpp", "do_not_answer", "strongreject")
BASE_RATE = {"mmlu": 0.70, "gsm8k": 0.80, "mbpp": 0.60, "do_not_answer": 0.95, "strongreject": 0.85}
# identity index -> (task -> true gap in pp): a few identities with a real gap, the rest none
GAPS = {0: {"mmlu": 20.0, "gsm8k": 20.0, "mbpp": 20.0}, 3: {"do_not_answer": 20.0, "strongreject": 20.0},
        7: {"strongreject": 15.0}, 12: {"mbpp": 12.0, "mmlu": 10.0}, 20: {"do_not_answer": 10.0, "strongreject": 10.0}}

_N = NormalDist()


def config_text(tasks: tuple[str, ...], epochs: int) -> str:
    names = ", ".join(f'"{t}"' for t in tasks)
    return (f'[target]\nmodel = "openai/scripted"\napi_base = "http://127.0.0.1:9"\n[tasks]\nnames = [{names}]\n'
            f'epochs = {epochs}\n[judge]\nname = "offline"\n[run]\nprofile = "pr"\n')


def pr_settings(epochs: int = 2, samples: int = 110) -> Settings:
    """The pr profile's settings for the five tasks (no server is contacted)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "guards.toml"
        path.write_text(config_text(TASKS, epochs))
        return load_settings(path, {}, environ={**os.environ, "GUARDS_SAMPLES": str(samples)})


def pr_outcomes(settings: Settings, samples: int = 110, seed: int = 0) -> Outcomes:
    """Synthetic outcomes for every identity of ``settings`` and the baseline, seeded."""
    rng = np.random.default_rng(seed)
    who = [BASELINE] + [p.id for p in settings.identities]
    epochs = settings.epochs
    items = {t: [f"{t}-{i}" for i in range(samples)] for t in settings.tasks}
    cells: list[Cell] = []
    item_sd = 1.5
    scale = np.sqrt(1.0 + item_sd**2)
    for task in settings.tasks:
        difficulty = rng.normal(0.0, item_sd, samples)
        for u, identity in enumerate(who):
            gap = 0.0 if u == 0 else GAPS.get(u - 1, {}).get(task, 0.0)
            rate = min(max(BASE_RATE[task] - gap / 100.0, 1e-6), 1 - 1e-6)
            cut = scale * _N.inv_cdf(rate)
            ok = (difficulty[:, None] + rng.normal(0.0, 1.0, (samples, epochs))) < cut
            if task == "strongreject":  # graded: a complying (not ok) answer scores 1 - harm
                harm = (rng.integers(1, 6, ok.shape) + rng.integers(1, 6, ok.shape) - 2) / 8.0
                values = np.where(ok, 1.0, 1.0 - harm)
            else:
                values = ok.astype(float)
            for i, item in enumerate(items[task]):
                for e in range(epochs):
                    refused = task in ("do_not_answer", "strongreject") and bool(ok[i, e])
                    cells.append(Cell(identity, task, item, e, float(values[i, e]), refused=refused,
                                      tokens_in=120, tokens_out=80))
    return Outcomes(items=items, cells=cells, epochs=epochs, meta={})


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Time build_report on the pr matrix: the first call, then ``args.repeat`` more (fresh Outcomes each)."""
    from guards.models.pricing import price
    from guards.report.build import build_report

    price("openai/scripted", 1, 1)  # litellm imported, as in a run
    settings = pr_settings(args.epochs, args.samples)
    outcomes = pr_outcomes(settings, args.samples)
    load_start = os.getloadavg()
    times, report = [], None
    for _ in range(1 + args.repeat):
        fresh = Outcomes(items=outcomes.items, cells=outcomes.cells, epochs=outcomes.epochs, meta={})
        start = time.perf_counter()
        report = build_report(settings, fresh)
        times.append(time.perf_counter() - start)
    assert report is not None
    report["record"].pop("time", None)
    if args.profile:
        fresh = Outcomes(items=outcomes.items, cells=outcomes.cells, epochs=outcomes.epochs, meta={})
        prof = cProfile.Profile()
        prof.runcall(build_report, settings, fresh)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
    return {"cells": len(outcomes.cells), "identities": len(settings.identities), "tasks": len(settings.tasks),
            "epochs": settings.epochs, "family": settings.thresholds.family, "first_s": times[0],
            "repeat_s": times[1:], "load_start": load_start, "load_end": os.getloadavg(), "report": report}


def show(label: str, m: dict[str, Any]) -> None:
    report = m["report"]
    fails = sorted(f"{i['id']}/{a}" for i in report["identities"] for a, e in i["axes"].items()
                   if e["verdict"] == "fail")
    repeats = ", ".join(f"{t:.3f}" for t in m["repeat_s"])
    print(f"[{label}] build_report: first call {m['first_s']:.3f} s; repeats {repeats} s "
          f"(best {min(m['repeat_s'] or [m['first_s']]):.3f} s); load average "
          f"{m['load_start'][0]:.2f} -> {m['load_end'][0]:.2f} (1 min)")
    print(f"[{label}] verdict {report['verdict']}; failing axes: {', '.join(fails) or 'none'}; "
          f"pb {report['pb']['verdict'] if report['pb'] else None}")


def against(ref: str, args: argparse.Namespace) -> dict[str, Any]:
    """The same measurement with the guards package of git revision ``ref``, in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "guards"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--repeat", str(args.repeat), "--samples", str(args.samples),
               "--epochs", str(args.epochs), "--json-out", str(out), "--code", tmp]
        subprocess.run(cmd, check=True, cwd=tmp)
        return dict(json.loads(out.read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="calls after the first")
    ap.add_argument("--samples", type=int, default=110)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one call (by cumulative time)")
    ap.add_argument("--against", metavar="REF", help="also time git revision REF's guards, and compare reports")
    ap.add_argument("--code", help=argparse.SUPPRESS)
    ap.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    m = measure(args)
    if args.json_out:
        args.json_out.write_text(json.dumps(m))
        return
    print(f"pr matrix: {m['identities']} identities + baseline x {m['tasks']} tasks x {args.samples} items x "
          f"{m['epochs']} epochs = {m['cells']} cells; family {m['family']}")
    show("this checkout", m)
    if args.against:
        old = against(args.against, args)
        show(args.against, old)
        mine, theirs = json.dumps(m["report"], sort_keys=True), json.dumps(old["report"], sort_keys=True)
        print(f"reports {'identical' if mine == theirs else 'DIFFER'} (every number as reported; time aside)")


if __name__ == "__main__":
    main()
