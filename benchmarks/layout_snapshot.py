"""Behaviour snapshot for refactors: run it before and after, then diff the two folders.

Takes, against the scripted loopback assistant with planted biases: the JSON report (time and tool version
dropped), `outcomes.jsonl`, the pytest ids and JUnit verdicts of `pytest suites/`, every `guards <cmd> --help`,
the built wheel's file list, and a warm cache. `--replay DIR` then reruns the gate on DIR's cache with the
server gone and checks that it asked nothing (request keys unchanged).

    python benchmarks/layout_snapshot.py take /tmp/before
    python benchmarks/layout_snapshot.py take /tmp/after --replay /tmp/before
    diff -r /tmp/before/out /tmp/after/out
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ["run", "merge", "plan", "judge", "report", "compare", "drift", "defend", "export-pairs", "init", "data"]


def gate(config: Path, out: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", "--guards-config", str(config),
         f"--junitxml={out / 'junit.xml'}", f"--guards-report={out / 'report.json'}", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def normalise_report(path: Path) -> dict:
    data = json.loads(path.read_text())
    record = data.get("record", {})
    for key in ("time", "tool_version", "started", "finished", "duration_s", "config_sha256"):
        record.pop(key, None)
    record.get("requests", {}).pop("wall_s", None)
    return data


def junit(path: Path) -> list[str]:
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = sorted(child.tag for child in case if child.tag in ("failure", "error", "skipped"))
        rows.append(f"{case.get('classname')}::{case.get('name')} {','.join(kinds) or 'passed'}")
    return sorted(rows)


def take(folder: Path, replay: Path | None) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from guards.testing import Bias, ScriptedAssistant  # noqa: PLC0415

    from gate_helpers import script, write_config  # noqa: PLC0415 - test helper, only here

    out = folder / "out"
    shutil.rmtree(folder, ignore_errors=True)
    out.mkdir(parents=True)
    data_dir = Path(os.environ.get("GUARDS_DATA_DIR", REPO.parent / "shared" / "data"))
    env = {**os.environ, "GUARDS_DATA_DIR": str(data_dir), "OPENAI_API_KEY": "sk-snapshot"}
    config = folder / "thresholds.toml"
    write_config(config, url="http://127.0.0.1:1/v1", identities=["minor", "gay", "man", "asian"],
                 tasks=["mmlu", "gsm8k", "mbpp", "do_not_answer", "strongreject"], samples=12,
                 cache_dir=folder / "cache")
    with ScriptedAssistant() as server:
        text = config.read_text().replace("http://127.0.0.1:1/v1", server.url)
        config.write_text(text)
        server.set_script(script(config, data_dir, biases={"a minor": Bias(accuracy=0.2), "gay": Bias(comply=0.8)}))
        proc = gate(config, out, env)
    (out / "gate.rc").write_text(f"{proc.returncode}\n")
    (out / "report.json").write_text(json.dumps(normalise_report(out / "report.json"), indent=1, sort_keys=True))
    (out / "junit.txt").write_text("\n".join(junit(out / "junit.xml")) + "\n")
    (out / "junit.xml").unlink()
    ids = subprocess.run([sys.executable, "-m", "pytest", "suites/", "--collect-only", "-q", "--guards-config",
                          str(config)], cwd=REPO, env=env, capture_output=True, text=True)
    (out / "ids.txt").write_text("\n".join(line for line in ids.stdout.splitlines() if "::" in line) + "\n")
    for cmd in COMMANDS:
        helped = subprocess.run([sys.executable, "-m", "guards.cli.main" if (REPO / "guards/cli/main.py").exists()
                                 else "guards.cli", cmd, "--help"], cwd=REPO, capture_output=True, text=True,
                                env={**env, "COLUMNS": "100"})
        (out / f"help-{cmd}.txt").write_text(helped.stdout)
    with tempfile.TemporaryDirectory() as wheels:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        wheels, str(REPO)], check=True, capture_output=True)
        wheel = next(Path(wheels).glob("*.whl"))
        names = sorted(n for n in zipfile.ZipFile(wheel).namelist() if not n.endswith(".py")
                       and ".dist-info/RECORD" not in n)
        (folder / "wheel-data-files.txt").write_text("\n".join(names) + "\n")
    if replay is not None:
        cached = folder / "replay"
        shutil.copytree(replay / "cache", folder / "cache-replay")
        cached.mkdir()
        # the old run's own config: its api_base is part of every request key
        text = (replay / "thresholds.toml").read_text().replace(str(replay / "cache"), str(folder / "cache-replay"))
        replay_config = folder / "replay.toml"
        replay_config.write_text(text)
        proc = gate(replay_config, cached, env, "--guards-max-retries=0")
        report = json.loads((cached / "report.json").read_text())
        asked = report["record"]["requests"]
        print("replay of the old cache:", json.dumps(asked), "rc", proc.returncode)
        (folder / "replay.json").write_text(json.dumps(asked))
    print("snapshot in", out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["take"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--replay", type=Path, help="a snapshot folder whose cache must answer every request")
    args = parser.parse_args()
    take(args.folder, args.replay)


if __name__ == "__main__":
    main()
