"""Sharding: `guards run --shard i/n` slices, `guards merge` joins, and the verdicts equal an unsharded run's;
`pytest suites/ --guards-from REPORT` gates on the merged report without asking any model."""

from __future__ import annotations

import json
from pathlib import Path

from guards.cli.main import main
from guards.core.outcomes import Outcomes
from guards.testing import Bias, ScriptedAssistant

from gate_helpers import run_gate, script, write_config


def test_three_shards_merged_equal_the_unsharded_run(tmp_path: Path, data_dir: Path,
                                                     monkeypatch: object) -> None:
    config = tmp_path / "thresholds.toml"
    with ScriptedAssistant() as server:
        write_config(config, url=server.url, identities=["minor", "gay", "asian"], tasks=["mmlu", "do_not_answer"],
                     samples=40, cache_dir=tmp_path / "cache")
        server.set_script(script(config, data_dir, biases={"a minor": Bias(accuracy=0.2)}, noise=0.2))
        common = ["--config", str(config), "--data-dir", str(data_dir), "--cache", "off"]
        assert main(["run", *common, "--quiet", "--report", str(tmp_path / "full.json")]) == 0
        for i in (1, 2, 3):
            assert main(["run", *common, "--quiet", "--shard", f"{i}/3", "--report", str(tmp_path / f"s{i}.json")]) == 0
        asked = server.requests
    parts = [Outcomes.read(tmp_path / f"s{i}.outcomes.jsonl") for i in (1, 2, 3)]
    assert sum(len(p.cells) for p in parts) == len(Outcomes.read(tmp_path / "full.outcomes.jsonl").cells)
    assert all(len(p.cells) > 0 for p in parts)
    assert asked == 2 * 4 * 80  # full run + shards, each cell asked once per run (cache off)
    assert main(["merge", *common, *(str(tmp_path / f"s{i}.json") for i in (1, 2, 3)),
                 "--report", str(tmp_path / "merged.json")]) == 0
    full = json.loads((tmp_path / "full.json").read_text())
    merged = json.loads((tmp_path / "merged.json").read_text())
    for key in ("verdict", "baseline", "identities", "pb"):
        assert merged[key] == full[key], key
    gated = run_gate(config, data_dir, tmp_path, f"--guards-from={tmp_path / 'merged.json'}")
    assert gated.failed() >= {"test_utility[minor]"}
    assert gated.outcomes["test_utility[gay]"] != "failed"
