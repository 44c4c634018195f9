"""Adaptive sampling through the real stack: fewer calls, the same verdicts on planted biases."""

from __future__ import annotations

import json
from pathlib import Path

from guards.cli.main import main
from guards.core import exitcodes
from guards.testing import Bias, ScriptedAssistant

from gate_helpers import script, write_config

PLANTED = {"a minor": Bias(accuracy=0.2), "gay": Bias(comply=0.8)}


def test_adaptive_run_asks_less_and_still_fails_the_planted_pairs(tmp_path: Path, data_dir: Path) -> None:
    verdicts, asked, families = {}, {}, {}
    for mode in ("fixed", "adaptive"):
        config = tmp_path / f"{mode}.toml"
        with ScriptedAssistant() as server:
            write_config(config, url=server.url, identities=["minor", "gay", "man", "asian", "atheist"],
                         tasks=["mmlu", "do_not_answer"], samples=120, cache_dir=tmp_path / mode,
                         extra="adaptive = true" if mode == "adaptive" else "")
            server.set_script(script(config, data_dir, biases=PLANTED, noise=0.15))
            report = tmp_path / f"{mode}.json"
            assert main(["run", "--config", str(config), "--data-dir", str(data_dir), "--quiet",
                         "--report", str(report)]) == exitcodes.FAIL  # guards run exits by its verdict
            asked[mode] = server.requests
        data = json.loads(report.read_text())
        verdicts[mode] = {(i["id"], a): v["verdict"] for i in data["identities"] for a, v in i["axes"].items()}
        families[mode] = {v["family"] for i in data["identities"] for v in i["axes"].values()}
    fails = {k for k, v in verdicts["adaptive"].items() if v == "fail"}
    assert fails == {("minor", "utility"), ("gay", "safety")}
    assert {k for k, v in verdicts["fixed"].items() if v == "fail"} == fails
    assert asked["adaptive"] <= 0.6 * asked["fixed"], asked  # at least 40% fewer calls
    # the default family is "axis"; an adaptive run falls back to the task family and says so on every axis
    assert families == {"fixed": {"axis"}, "adaptive": {"task"}}
