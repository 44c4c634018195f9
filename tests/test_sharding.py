"""Sharding: `guards run --shard i/n --report R` writes R and its outcomes, `guards merge` joins a whole set (and
refuses a set with a missing or duplicated shard, naming it), and the verdicts equal an unsharded run's;
`pytest suites/ --guards-from REPORT` gates on the merged report without asking any model and refuses a partial
one. Exit codes follow the table (0 pass, 1 fail, 4 usage/config/data, 6 error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guards.cli.main import main
from guards.core.outcomes import Outcomes
from guards.testing import Bias, ScriptedAssistant

from gate_helpers import run_gate, script, write_config


def test_three_shards_merged_equal_the_unsharded_run(tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "thresholds.toml"
    with ScriptedAssistant() as server:
        write_config(config, url=server.url, identities=["minor", "gay", "asian"], tasks=["mmlu", "do_not_answer"],
                     samples=40, cache_dir=tmp_path / "cache")
        server.set_script(script(config, data_dir, biases={"a minor": Bias(accuracy=0.2)}, noise=0.2))
        common = ["--config", str(config), "--data-dir", str(data_dir), "--cache", "off"]
        assert main(["run", *common, "--quiet", "--report", str(tmp_path / "full.json")]) == 1  # fail exits 1
        for i in (1, 2, 3):
            assert main(["run", *common, "--quiet", "--shard", f"{i}/3", "--report", str(tmp_path / f"s{i}.json")]) == 0
        asked = server.requests
    parts = [Outcomes.read(tmp_path / f"s{i}.outcomes.jsonl") for i in (1, 2, 3)]
    assert sum(len(p.cells) for p in parts) == len(Outcomes.read(tmp_path / "full.outcomes.jsonl").cells)
    assert all(len(p.cells) > 0 for p in parts)
    assert asked == 2 * 4 * 80  # full run + shards, each cell asked once per run (cache off)
    for i in (1, 2, 3):  # each shard's report is written, and is marked partial (it can never gate on its own)
        shard_report = json.loads((tmp_path / f"s{i}.json").read_text())
        assert shard_report["record"]["partial"]["shard"] == f"{i}/3"
        assert shard_report["verdict"] in ("fail", "error")
    assert main(["merge", *common, *(str(tmp_path / f"s{i}.json") for i in (1, 2, 3)),
                 "--report", str(tmp_path / "merged.json")]) == 1
    full = json.loads((tmp_path / "full.json").read_text())
    merged = json.loads((tmp_path / "merged.json").read_text())
    for key in ("verdict", "baseline", "identities", "pb"):
        assert merged[key] == full[key], key
    assert "partial" not in merged["record"]
    gated = run_gate(config, data_dir, tmp_path, f"--guards-from={tmp_path / 'merged.json'}")
    assert gated.failed() >= {"test_utility[minor]"}
    assert gated.outcomes["test_utility[gay]"] != "failed"
    assert gated.returncode == 1


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, list[str]]:
    """Shards 1/2 and 2/2 of an unbiased run (it passes when whole)."""
    tmp = tmp_path_factory.mktemp("shards")
    config = tmp / "thresholds.toml"
    with ScriptedAssistant() as server:
        write_config(config, url=server.url, identities=["minor", "asian"], tasks=["mmlu"], samples=30,
                     cache_dir=tmp / "cache")
        server.set_script(script(config, data_dir))
        common = ["--config", str(config), "--data-dir", str(data_dir)]
        for i in (1, 2):
            assert main(["run", *common, "--quiet", "--shard", f"{i}/2", "--report", str(tmp / f"s{i}.json")]) == 0
    return config, common


def test_a_missing_shard_is_refused_by_name(two_shards: tuple[Path, list[str]],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config, common = two_shards
    folder = config.parent
    assert main(["merge", *common, str(folder / "s1.json"), "--report", str(folder / "half.json")]) == 4
    assert "shard(s) 2/2 missing" in capsys.readouterr().err
    assert not (folder / "half.json").exists()


def test_a_duplicated_shard_is_refused_by_name(two_shards: tuple[Path, list[str]],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config, common = two_shards
    folder = config.parent
    assert main(["merge", *common, str(folder / "s1.json"), str(folder / "s1.outcomes.jsonl"),
                 str(folder / "s2.json"), "--report", str(folder / "dup.json")]) == 4
    assert "shard 1/2 given twice" in capsys.readouterr().err


def test_a_partial_merge_never_gates_green(two_shards: tuple[Path, list[str]], data_dir: Path, tmp_path: Path) -> None:
    config, common = two_shards
    folder = config.parent
    half = folder / "half-allowed.json"
    code = main(["merge", *common, str(folder / "s1.json"), "--allow-partial", "--report", str(half)])
    report = json.loads(half.read_text())
    assert report["record"]["partial"]["missing"] == ["2/2"]
    assert report["verdict"] != "pass" and code != 0
    gated = run_gate(config, data_dir, tmp_path, f"--guards-from={half}")
    assert gated.returncode == 4, gated.output
    assert "partial merge" in gated.output and "2/2" in gated.output
    assert not gated.outcomes  # refused before any test ran
    whole = folder / "whole.json"  # the whole set merges and passes
    assert main(["merge", *common, str(folder / "s1.json"), str(folder / "s2.json"), "--report", str(whole)]) == 0
    assert run_gate(config, data_dir, tmp_path, f"--guards-from={whole}").returncode == 0


def test_merge_names_a_shard_file_that_was_never_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["merge", str(tmp_path / "s9.json"), "--report", str(tmp_path / "m.json")]) == 4
    assert "s9.outcomes.jsonl not found" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run"], ["run", "--shard", "3/2", "--report", "x.json"], ["nonsense"],
                                  ["merge", "--no-such-flag"]])
def test_usage_errors_exit_4(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """argparse's own exit 2 and the old config-error 2 both follow the table: 4."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 4


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    assert main([]) == 0
    assert "6 `error` verdict" in capsys.readouterr().out


def test_guards_run_exits_6_when_the_endpoint_is_down(tmp_path: Path, data_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with ScriptedAssistant() as server:
        url = server.url
    config = write_config(tmp_path / "t.toml", url=url, identities=["minor"], tasks=["mmlu"], samples=20,
                          cache_dir=tmp_path / "c", max_retries=1)
    code = main(["run", "--config", str(config), "--data-dir", str(data_dir), "--quiet",
                 "--report", str(tmp_path / "r.json")])
    assert code == 6
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"] == "error"
    assert "endpoint unreachable" in report["record"]["aborted"]
    assert "run aborted" in capsys.readouterr().out
