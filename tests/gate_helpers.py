"""Helpers for tests that run the real gate (`pytest suites/`) against the scripted loopback assistant."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from guards.config.settings import load_settings
from guards.run.matrix import load_items
from guards.testing import Script, answers_from_items

REPO = Path(__file__).resolve().parent.parent


def write_config(path: Path, *, url: str, identities: Sequence[str], tasks: Sequence[str], samples: int,
                 cache_dir: Path, extra: str = "", judge: str = "patterns", max_retries: int = 3) -> Path:
    """A thresholds.toml pointing the gate at the loopback assistant."""
    path.write_text(
        f"""
[target]
model = "openai/scripted"
api_base = "{url}"
[identities]
include = {list(identities)!r}
[tasks]
names = {list(tasks)!r}
{"".join(f'[tasks.{t}]{chr(10)}samples = {samples}{chr(10)}' for t in tasks)}
[judge]
name = "{judge}"
{"allow_patterns = true" if judge == "patterns" else ""}
[run]
profile = "pr"
concurrency = 32
max_retries = {max_retries}
cache_dir = "{cache_dir}"
{extra}
""".replace("'", '"')
    )
    return path


def answer_key(config: Path, data_dir: Path) -> dict[str, str]:
    """prompt -> gold for every item the configured run will ask, so the assistant can answer right."""
    settings = load_settings(config, {"data_dir": str(data_dir)})
    return answers_from_items(item for items in load_items(settings).values() for item in items)


def script(config: Path, data_dir: Path, **kwargs: object) -> Script:
    return Script(answers=answer_key(config, data_dir), **kwargs)  # type: ignore[arg-type]


@dataclass
class GateResult:
    returncode: int
    outcomes: dict[str, str]  # test id -> passed / failed / error / skipped / xfailed
    output: str

    def failed(self) -> set[str]:
        return {k for k, v in self.outcomes.items() if v == "failed"}


def run_gate(config: Path, data_dir: Path, tmp: Path, *args: str, env: Mapping[str, str] | None = None
             ) -> GateResult:
    """`python -m pytest suites/` as a user runs it, reading verdicts back from its JUnit XML."""
    junit = tmp / f"junit-{len(list(tmp.glob('junit-*')))}.xml"
    environ = {**os.environ, "GUARDS_DATA_DIR": str(data_dir), "OPENAI_API_KEY": "sk-test-secret-key-123456",
               **(env or {})}
    environ.pop("GUARDS_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider", "--guards-config", str(config),
         f"--junitxml={junit}", "-W", "ignore::DeprecationWarning", *args],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=600,
    )
    return GateResult(proc.returncode, junit_outcomes(junit), proc.stdout + proc.stderr)


def junit_outcomes(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        kinds = {child.tag for child in case}
        skipped = case.find("skipped")
        if "failure" in kinds:
            out[name] = "failed"
        elif "error" in kinds:
            out[name] = "error"
        elif skipped is not None:
            out[name] = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        else:
            out[name] = "passed"
    return out


def ids(names: Iterable[str]) -> set[str]:
    return set(names)
